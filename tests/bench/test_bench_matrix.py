#!/usr/bin/env python3
"""scripts/bench-matrix.sh (issue #5 item 2) with one short run per cell.

Every cell of the two-process matrix (vireo/vireo, dpdk-device/vireo-driver, vireo-device/
dpdk-driver; each direction; split and packed) must print one JSON line with a median above zero:
a cell that "produced no figure" is a broken script or a broken pairing, not a slow machine.
Exit 77 (meson: skipped) with the reason when dpdk-testpmd or hugepages are missing.
    VIREO_BUILD=<build dir> test_bench_matrix.py SCRIPT
"""
import json
import os
import shutil
import subprocess
import sys

SCRIPT = sys.argv[1]
BUILD = os.environ["VIREO_BUILD"]


def skip(why):
    print(f"SKIPPED: {why}")
    sys.exit(77)


def hugepages():
    try:
        with open("/proc/sys/vm/nr_hugepages") as f:
            n = int(f.read())
    except OSError:
        return False
    return n > 0 and os.path.ismount("/dev/hugepages")


if shutil.which("dpdk-testpmd") is None:
    skip("dpdk-testpmd not found (scripts/setup.sh installs the dpdk package)")
if not hugepages():
    skip("no hugepages mounted on /dev/hugepages (scripts/prepare-host.sh)")

env = dict(os.environ, RUNS="1", SECONDS_PER_RUN="2")
out = subprocess.run(["bash", SCRIPT, BUILD], env=env, capture_output=True, text=True, timeout=280)
print(out.stdout, end="")
print(out.stderr, end="", file=sys.stderr)
cells = [json.loads(l) for l in out.stdout.splitlines() if l.strip()]
failures = []
want = {(dev, drv, d, lay) for dev, drv in (("vireo", "vireo"), ("dpdk", "vireo"), ("vireo", "dpdk"))
        for d in ("driver_to_device", "device_to_driver") for lay in ("split", "packed")}
got = {(c["device"], c["driver"], c["direction"], c["layout"]) for c in cells}
if got != want:
    failures.append(f"cells missing: {sorted(want - got)}, unexpected: {sorted(got - want)}")
for c in cells:
    name = f'{c["device"]} device x {c["driver"]} driver, {c["direction"]}, {c["layout"]}'
    if c.get("median_pps", 0) <= 0:
        failures.append(f"{name}: no figure ({c.get('skipped', 'median 0')})")
    else:
        print(f"ok: {name}: {c['median_pps']:.0f} pps")
for f in failures:
    print("FAIL: " + f)
sys.exit(1 if failures or out.returncode != 0 else 0)
