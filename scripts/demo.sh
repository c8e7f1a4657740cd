#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine (as root): installs what is missing, builds Vireo and
# the test guest, starts `vireo blk`, `vireo net` and `vireo rng`, boots a QEMU VM attached to all
# three (split rings, then packed rings), has the guest's own virtio drivers use each device, and
# prints what the guest saw and what the back-ends counted. Cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
ninja -C build
rc=0
for layout in split packed; do
  echo "== Vireo demo: one VM, vireo blk + net + rng, $layout virtqueues"
  args=()
  [[ $layout == packed ]] && args+=(--packed)
  python3 qemu/demo.py --vireo build/vireo "${args[@]}" || rc=$?
done
exit $rc
