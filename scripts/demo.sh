#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine (as root): installs what is missing, builds, and runs
# the ring benchmark on both layouts with EVENT_IDX on and off.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
ninja -C build
echo "== vireo bench ring: one thread, then two threads (2 s each)"
for threads in 1 2; do
  for layout in split packed; do
    for ev in on off; do
      build/vireo bench ring --layout "$layout" --event-idx "$ev" --threads "$threads" --seconds 2
    done
  done
done
