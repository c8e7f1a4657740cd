#!/usr/bin/env python3
"""Restart without loss in a real guest (issue #6, QEMU side).

  blk-restart-split / -packed  The guest's virtio-blk driver O_DIRECT-writes a seeded pattern to
                               /dev/vda, 1 MiB at a time (64 KiB requests), while the host
                               SIGKILLs `vireo blk` and restarts it RESTARTS times (QEMU chardev
                               reconnect=1; QEMU negotiates INFLIGHT_SHMFD, keeps the region and
                               hands it to each new `vireo blk`, which resubmits what the killed one
                               had taken). The guest then reads the range back: its md5, the host
                               image's md5 and the predicted pattern's md5 must all agree, and the
                               guest must see no I/O error.

The vireo binary comes from $VIREO (meson passes build/vireo). Exit: 0 all passed, 1 a check
failed, 77 (SKIP, reason printed) without QEMU or a guest image.
Run: test_vm_blk_restart.py [-v] [blk-restart-split|blk-restart-packed]
"""
from __future__ import annotations

import hashlib
import os
import random
import re
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
from vmtest import VERBOSE, Peer, Suite, run_cases, say, vireo_vm  # noqa: E402

SEED, SIZE_MIB, OFFSET_MIB = 4242, 12, 4
RESTARTS = int(os.environ.get("VIREO_VM_RESTARTS", "4"))

# The guest side: lib.sh's make_pattern / kv / pass / fail / arg; one progress line per MiB so the
# host can kill the back-end while writes are in flight.
PAYLOAD = r"""
_seed=$(arg seed 1); _mib=$(arg size_mib 8); _off=$(arg offset_mib 4)
wait_for /dev/vda 5 || fail "blk: /dev/vda not found (virtio devices: $(list_virtio))"
report_features blk "$(readlink -f /sys/block/vda/device)"
make_pattern "$_seed" "$_mib" > /tmp/pattern || fail "blk: cannot make pattern"
_want=$(md5sum /tmp/pattern | cut -d' ' -f1)
_i=0
while [ "$_i" -lt "$_mib" ]; do
    dd if=/tmp/pattern of=/dev/vda bs=64k count=16 skip=$(( _i * 16 )) seek=$(( (_off + _i) * 16 )) \
        oflag=direct conv=notrunc 2>/tmp/dd.err || fail "blk: write of MiB $_i failed: $(tr '\n' ' ' < /tmp/dd.err)"
    echo "VIREO-BLK-MIB $_i"
    _i=$(( _i + 1 ))
done
sync
_got=$(dd if=/dev/vda bs=1M count="$_mib" skip="$_off" iflag=direct 2>/tmp/dd.err | md5sum | cut -d' ' -f1)
grep -q "^$_mib+0 records in" /tmp/dd.err || fail "blk: O_DIRECT read failed: $(tr '\n' ' ' < /tmp/dd.err)"
kv blk_md5 "$_want"
kv blk_md5_readback "$_got"
[ "$_want" = "$_got" ] || fail "blk: readback md5 $_got != written $_want"
pass
"""


def start_blk(work: Path, vireo: str, name: str, img: Path, n: int) -> Peer | None:
    sock = work / f"{name}.sock"
    peer = Peer("vireo blk", [vireo, "blk", "--image", str(img), "--socket-path", str(sock)],
                work / f"{name}-{n}.log")
    if not peer.wait_socket(sock, 15):
        say(f"vireo blk did not create {sock}:\n{peer.tail()}")
        peer.stop()
        return None
    return peer


def test_restart(suite: Suite, work: Path, vireo: str, packed: bool) -> list[Peer]:
    name = "blk-restart-packed" if packed else "blk-restart-split"
    img = work / f"{name}.img"
    with open(img, "wb") as f:
        f.truncate(32 << 20)
    peer = start_blk(work, vireo, name, img, 0)
    if peer is None:
        suite.check(f"{name}: vireo blk started", False, "no socket")
        return []
    peers = [peer]
    rng = random.Random(SEED + packed)
    device = vireo_vm.Device("blk", str(work / f"{name}.sock"), packed=packed, reconnect=1)
    args = {"seed": SEED, "size_mib": SIZE_MIB, "offset_mib": OFFSET_MIB}
    kills = 0
    with vireo_vm.VM(devices=[device], payload=None, payload_text=PAYLOAD, args=args, timeout=420,
                     echo=VERBOSE) as vm:
        t0 = time.monotonic()
        vm.start()
        for k in range(RESTARTS):
            # Kill during the write of MiB 2k+1: after MiB 2k is reported, at a random moment.
            if vm.wait_for_console(rf"VIREO-BLK-MIB {2 * k}\b", timeout=240) is None:
                break
            time.sleep(rng.uniform(0.0, 0.3))
            peer.stop_hard()
            kills += 1
            say(f"{name}: vireo blk SIGKILLed (#{kills}) during the write of MiB {2 * k + 1}; restarting it")
            time.sleep(rng.uniform(0.0, 0.5))
            peer = start_blk(work, vireo, name, img, kills)
            if peer is None:
                suite.check(f"{name}: vireo blk restarted", False, "no socket")
                return peers
            peers.append(peer)
        res = vm.wait()
        suite.timings.append((name, time.monotonic() - t0, res.boot_s))
    if not suite.check(f"{name}: guest verdict PASS", res.ok, res.reason or "PASS"):
        for line in res.console[-20:]:
            print(f"  guest| {line}")
    # Each new vireo blk logs how many requests the region showed in flight (SET_INFLIGHT_FD).
    resumed = [int(m) for n in range(1, kills + 1) if (work / f"{name}-{n}.log").exists()
               for m in re.findall(r"(\d+) buffers were in flight", (work / f"{name}-{n}.log").read_text(errors="replace"))]
    suite.check(f"{name}: {RESTARTS} SIGKILLs while writing", kills == RESTARTS,
                f"{kills} of {RESTARTS}; {len(resumed)} restarts found requests in flight ({sum(resumed)} in all)")
    want = hashlib.md5(vireo_vm.pattern(SEED, SIZE_MIB)).hexdigest()
    host = vireo_vm.md5_of_range(img, OFFSET_MIB << 20, SIZE_MIB << 20)
    guest = res.kv.get("blk_md5_readback", "")
    suite.check(f"{name}: host image md5 == predicted pattern md5", host == want, f"host {host} predicted {want}")
    suite.check(f"{name}: guest read-back md5 == predicted", guest == want, f"guest {guest or '?'}")
    suite.check(f"{name}: RING_PACKED {'on' if packed else 'off'}", res.kv.get("blk_packed") == ("1" if packed else "0"),
                f"features {res.kv.get('blk_features_hex', '?')}")
    return peers


def main() -> int:
    return run_cases("vireo-vm-restart.", lambda suite, work, vireo: {
        "blk-restart-split": lambda: test_restart(suite, work, vireo, False),
        "blk-restart-packed": lambda: test_restart(suite, work, vireo, True),
    })


if __name__ == "__main__":
    sys.exit(main())
