#!/usr/bin/env python3
"""Vireo's own back-ends in real QEMU guests, driven by the guest kernel's virtio drivers.

  blk-split / blk-packed   `vireo blk`: the guest O_DIRECT-writes a seeded pattern to /dev/vda and
                           reads it back; the host image's bytes must have the md5 the guest saw.
  net-split / net-packed   `vireo net --port responder=IP`: the guest pings the responder; EVENT_IDX
                           and RING_PACKED are read from the guest's sysfs and checked.
  rng                      `vireo rng`: the guest reads /dev/hwrng through virtio-rng.
  reconnect-split/-packed  `vireo net` is SIGKILLed and restarted while the guest pings (QEMU chardev
                           reconnect=1): replies must resume after the restart, packed ring included.

The vireo binary comes from $VIREO (meson passes build/vireo). Exit: 0 all passed, 1 a check
failed, 77 (SKIP, reason printed) without QEMU or a guest image. Run: test_vm_devices.py [-v]
"""
from __future__ import annotations

import re
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
from vmtest import (OFFSET_MIB, PINGS, SEED, SIZE_MIB, VERBOSE, Peer, Suite, check_blk,  # noqa: E402
                    check_net, run_cases, run_vm, say, vireo_vm)

RESPONDER_IP = "192.0.2.1"
RECONNECT_PINGS = 60


def start(work: Path, vireo: str, tag: str, args: list[str], log_tag: str | None = None) -> tuple[Peer | None, Path]:
    sock = work / f"{tag}.sock"
    log = work / f"{log_tag or tag}.log"
    peer = Peer(f"vireo {args[0]}", [vireo, *args, "--socket-path", str(sock)], log)
    if not peer.wait_socket(sock, 15):
        say(f"vireo {args[0]} did not create {sock}:\n{peer.tail()}")
        peer.stop()
        return None, sock
    return peer, sock


def check_event_idx(suite: Suite, name: str, res: vireo_vm.Result, prefix: str) -> None:
    suite.check(f"{name}: EVENT_IDX negotiated", res.kv.get(f"{prefix}_event_idx") == "1",
                f"features {res.kv.get(f'{prefix}_features_hex', '?')}")


def test_blk(suite: Suite, work: Path, vireo: str, packed: bool) -> list[Peer]:
    name = "blk-packed" if packed else "blk-split"
    img = work / f"{name}.img"
    with open(img, "wb") as f:
        f.truncate(64 << 20)
    peer, sock = start(work, vireo, name, ["blk", "--image", str(img)])
    if peer is None:
        suite.check(f"{name}: vireo blk started", False, "no socket")
        return []
    res = run_vm(suite, name, devices=[vireo_vm.Device("blk", str(sock), packed=packed)], payload="blk",
                 args={"seed": SEED, "size_mib": SIZE_MIB, "offset_mib": OFFSET_MIB})
    if suite.check(f"{name}: guest verdict PASS", res.ok, res.reason or "PASS"):
        check_blk(suite, name, res, img)
        check_event_idx(suite, name, res, "blk")
        suite.check(f"{name}: RING_PACKED {'on' if packed else 'off'}",
                    res.kv.get("blk_packed") == ("1" if packed else "0"),
                    f"features {res.kv.get('blk_features_hex', '?')}")
    return [peer]


def test_net(suite: Suite, work: Path, vireo: str, packed: bool) -> list[Peer]:
    name = "net-packed" if packed else "net-split"
    peer, sock = start(work, vireo, name, ["net", "--port", f"responder={RESPONDER_IP}"])
    if peer is None:
        suite.check(f"{name}: vireo net started", False, "no socket")
        return []
    res = run_vm(suite, name, devices=[vireo_vm.Device("net", str(sock), packed=packed)], payload="net",
                 args={"count": PINGS, "ip": "192.0.2.2/24", "target": RESPONDER_IP})
    if suite.check(f"{name}: guest verdict PASS", res.ok, res.reason or "PASS"):
        check_net(suite, name, res, packed)
        check_event_idx(suite, name, res, "net")
    return [peer]


def test_rng(suite: Suite, work: Path, vireo: str) -> list[Peer]:
    peer, sock = start(work, vireo, "rng", ["rng"])
    if peer is None:
        suite.check("rng: vireo rng started", False, "no socket")
        return []
    res = run_vm(suite, "rng", devices=[vireo_vm.Device("rng", str(sock))], payload="rng",
                 args={"rng_bytes": 4096})
    if suite.check("rng: guest verdict PASS", res.ok, res.reason or "PASS"):
        suite.check("rng: 4096 bytes from virtio_rng", res.kv.get("rng_bytes") == "4096"
                    and res.kv.get("rng_rng_current", "").startswith("virtio_rng"),
                    f"{res.kv.get('rng_bytes', '?')} bytes, {res.kv.get('rng_nonzero_bytes', '?')} non-zero, "
                    f"from {res.kv.get('rng_rng_current', '?')}")
    return [peer]


def ping_seqs(console: list[str]) -> list[int]:
    """icmp_seq numbers of the echo replies the guest's busybox ping printed."""
    return [int(m.group(1)) for line in console for m in [re.search(r"seq=(\d+)", line)] if m]


def test_reconnect(suite: Suite, work: Path, vireo: str, packed: bool) -> list[Peer]:
    name = "reconnect-packed" if packed else "reconnect-split"
    args = ["net", "--port", f"responder={RESPONDER_IP}"]
    peer, sock = start(work, vireo, name, args)
    if peer is None:
        suite.check(f"{name}: vireo net started", False, "no socket")
        return []
    peers = [peer]
    device = vireo_vm.Device("net", str(sock), packed=packed, reconnect=1)
    # The guest needs only a few replies to pass; the checks below look at which ones came back.
    pargs = {"count": RECONNECT_PINGS, "interval": 0.2, "min_recv": 1, "ip": "192.0.2.2/24",
             "target": RESPONDER_IP}
    with vireo_vm.VM(devices=[device], payload="net", args=pargs, timeout=240, echo=VERBOSE) as vm:
        t0 = time.monotonic()
        vm.start()
        if vm.wait_for_console(r"seq=5\b", timeout=150) is None:
            res = vm.wait()
            suite.check(f"{name}: replies before the kill", False,
                        f"no reply to icmp_seq 5 ({res.verdict} {res.reason})")
            return peers
        peer.stop_hard()
        say(f"{name}: vireo net killed with SIGKILL after icmp_seq 5; restarting it")
        peer, sock = start(work, vireo, name, args, log_tag=name + "-restarted")
        if peer is None:
            suite.check(f"{name}: vireo net restarted", False, "no socket")
            return peers
        peers.append(peer)
        res = vm.wait()
        suite.timings.append((name, time.monotonic() - t0, res.boot_s))
    seqs = ping_seqs(res.console)
    after = [s for s in seqs if s > 10]
    suite.check(f"{name}: replies before the kill", any(s <= 5 for s in seqs), f"icmp_seq {seqs[:8]}")
    suite.check(f"{name}: replies resume after the restart", len(after) >= 20,
                f"{len(after)} replies with icmp_seq > 10 of {RECONNECT_PINGS} pings "
                f"({res.kv.get('net_received', '?')} received in all)")
    suite.check(f"{name}: RING_PACKED {'on' if packed else 'off'}", res.kv.get("net_packed") == ("1" if packed else "0"),
                f"features {res.kv.get('net_features_hex', '?')}")
    return peers


def main() -> int:
    return run_cases("vireo-vm.", lambda suite, work, vireo: {
        "blk-split": lambda: test_blk(suite, work, vireo, False),
        "blk-packed": lambda: test_blk(suite, work, vireo, True),
        "net-split": lambda: test_net(suite, work, vireo, False),
        "net-packed": lambda: test_net(suite, work, vireo, True),
        "rng": lambda: test_rng(suite, work, vireo),
        "reconnect-split": lambda: test_reconnect(suite, work, vireo, False),
        "reconnect-packed": lambda: test_reconnect(suite, work, vireo, True),
    })


if __name__ == "__main__":
    sys.exit(main())
