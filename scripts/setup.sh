#!/usr/bin/env bash
# Installs what Vireo needs on Debian 12 (as root) and configures the build directory.
# Idempotent: packages already present are not reinstalled; an existing build dir is reused.
#   scripts/setup.sh [BUILD_DIR] [meson options...]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  meson ninja-build pkg-config g++ make             # build (make: examples/ against the installed library)
  libgtest-dev libgmock-dev                         # tests
  liburing-dev                                      # virtio-blk I/O
  dpdk dpdk-dev libdpdk-dev                         # interop peer (dpdk-testpmd is in dpdk-dev) + anchor
  qemu-system-x86 qemu-utils busybox-static         # VM tests (guest kernel fetched by qemu/build-guest.sh)
  clang libclang-rt-14-dev                          # fuzzing (libFuzzer) and sanitizer runtimes
  valgrind python3                                  # instruction counts; QEMU launcher
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

build=${1:-build}
shift || true
if [[ ! -f "$build/build.ninja" ]]; then
  meson setup "$build" "$@"
fi
