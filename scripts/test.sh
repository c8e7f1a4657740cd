#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root): installs what is missing, builds,
# and runs every suite (unit, stress, loopback, dpdk, qemu), then the sanitizer builds
# (ASan+UBSan: the whole suite; TSan: the multi-threaded tests), then the libFuzzer targets for
# FUZZ_SECONDS each (clang; suite fuzz, see docs/TESTING.md). Ends with one summary line
# "N passed, N failed, N skipped" over all of them and exits non-zero on any failure.
#   scripts/test.sh            everything
#   QUICK=1 scripts/test.sh    the plain build only (no sanitizer builds)
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-$(nproc)}

scripts/setup.sh build || exit 1
[[ -x scripts/prepare-host.sh ]] && scripts/prepare-host.sh

total_pass=0 total_fail=0 total_skip=0
run_suite() {  # run_suite BUILD_DIR LABEL [meson test args...]; BUILD_ALL=0 builds only what the tests need
  local dir=$1 label=$2
  shift 2
  echo "=== $label ($dir) ==="
  if [[ ${BUILD_ALL:-1} == 1 ]]; then
    ninja -C "$dir" -j "$jobs" || { total_fail=$((total_fail + 1)); echo "$label: build FAILED"; return; }
  fi
  meson test -C "$dir" --print-errorlogs --num-processes 1 "$@"
  local counts
  counts=$(python3 scripts/test_counts.py "$dir/meson-logs/testlog.json")
  read -r p f s <<<"$counts"
  total_pass=$((total_pass + p)) total_fail=$((total_fail + f)) total_skip=$((total_skip + s))
  echo "$label: $p passed, $f failed, $s skipped"
}

run_suite build "plain build"
if [[ -z "${QUICK:-}" ]]; then
  scripts/setup.sh build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dqemu_tests=disabled -Ddpdk_tests=disabled >/dev/null
  # The stress test exchanges 10M buffers per layout in the plain build; 200k under sanitizers.
  VIREO_STRESS_BUFFERS=200000 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_suite build-asan "ASan+UBSan" --no-suite qemu --no-suite dpdk
  scripts/setup.sh build-tsan -Db_sanitize=thread -Db_lundef=false -Dqemu_tests=disabled -Ddpdk_tests=disabled >/dev/null
  # meson test builds just the multi-threaded tests' targets.
  BUILD_ALL=0 VIREO_STRESS_BUFFERS=200000 TSAN_OPTIONS=halt_on_error=1 run_suite build-tsan "TSan" --suite threads
  # libFuzzer targets (clang, ASan+UBSan): each runs FUZZ_SECONDS (20) over its seed corpus.
  if command -v clang++ >/dev/null; then
    CXX=clang++ scripts/setup.sh build-fuzz -Dfuzz=enabled -Dqemu_tests=disabled -Ddpdk_tests=disabled >/dev/null
    BUILD_ALL=0 FUZZ_SECONDS=${FUZZ_SECONDS:-20} run_suite build-fuzz "fuzz" --suite fuzz
  else
    echo "=== fuzz: SKIPPED: clang++ not found (scripts/setup.sh installs clang and libclang-rt-14-dev) ==="
    total_skip=$((total_skip + 1))
  fi
fi

echo
echo "all suites: $total_pass passed, $total_fail failed, $total_skip skipped"
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[[ $total_fail -eq 0 ]]
