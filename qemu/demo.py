#!/usr/bin/env python3
"""The Vireo demo: one QEMU guest attached to `vireo blk`, `vireo net` and `vireo rng`.

The guest's own virtio drivers use each device (an O_DIRECT pattern written to /dev/vda and read
back, pings answered by the net back-end's responder port, bytes read from /dev/hwrng); the demo
then prints what the guest saw (devices, negotiated features, bytes moved) and what the back-ends
counted, and cleans up.

  python3 qemu/demo.py [--vireo build/vireo] [--packed] [-v]
Exit 0 when every device worked, 1 otherwise, 77 when QEMU or the guest image is unavailable.
"""
from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))
from vmtest import OFFSET_MIB, SEED, SIZE_MIB, Peer, Suite, check_blk, prepare_guest, say, vireo_vm  # noqa: E402

RESPONDER_IP = "192.0.2.1"
FEATURE_BITS = {28: "INDIRECT_DESC", 29: "EVENT_IDX", 32: "VERSION_1", 34: "RING_PACKED"}


def features_text(kv: dict, prefix: str) -> str:
    bits = kv.get(f"{prefix}_features", "")
    names = [name for bit, name in FEATURE_BITS.items() if len(bits) > bit and bits[bit] == "1"]
    return f"{kv.get(f'{prefix}_features_hex', '?')} ({', '.join(names) or 'none of the ring bits'})"


def start_backends(vireo: str, work: Path) -> dict[str, tuple[Peer, Path]]:
    img = work / "disk.img"
    with open(img, "wb") as f:
        f.truncate(64 << 20)
    cmds = {
        "blk": ["blk", "--image", str(img)],
        "net": ["net", "--port", f"responder={RESPONDER_IP}"],
        "rng": ["rng"],
    }
    started = {}
    for name, args in cmds.items():
        sock = work / f"{name}.sock"
        peer = Peer(f"vireo {name}", [vireo, *args, "--socket-path", str(sock), "--stats", "1"],
                    work / f"{name}.log")
        started[name] = (peer, sock)
        if not peer.wait_socket(sock, 15):
            raise RuntimeError(f"vireo {name} did not start:\n{peer.tail()}")
    return started


def backend_counts(peer: Peer) -> str:
    """The last --stats line per queue the back-end printed."""
    last: dict[str, str] = {}
    for line in peer.log.read_text(errors="replace").splitlines():
        if "queue" in line and ("chains" in line or "kicks" in line):
            key = line.split("queue", 1)[1].split()[0] if "queue" in line else line
            last[key] = line.strip()
    return "\n      ".join(last.values()) or "(no stats line)"


def report(res: vireo_vm.Result, backends: dict[str, tuple[Peer, Path]], took: float) -> None:
    kv = res.kv
    print()
    print("=" * 72)
    print(f"Vireo demo: guest verdict {res.verdict}{' (' + res.reason + ')' if res.reason else ''}"
          f" in {took:.1f} s, accel {res.accel}, boot to /init {res.boot_s} s")
    print(f"guest kernel {kv.get('kernel', '?')}; virtio devices (name:device-id) {kv.get('virtio_devices', '?')}")
    print(f"  blk  /dev/vda: wrote and read back {int(kv.get('blk_bytes_written', 0)) >> 20} MiB with O_DIRECT, "
          f"md5 {kv.get('blk_md5', '?')} (readback {kv.get('blk_md5_readback', '?')})")
    print(f"       features {features_text(kv, 'blk')}")
    print(f"  net  {kv.get('net_ifname', '?')} {kv.get('net_mac', '?')}: {kv.get('net_received', '?')} of "
          f"{kv.get('net_sent', '?')} pings to {RESPONDER_IP} answered; rx {kv.get('net_rx_bytes', '?')} B, "
          f"tx {kv.get('net_tx_bytes', '?')} B")
    print(f"       features {features_text(kv, 'net')}")
    print(f"  rng  {kv.get('rng_bytes', '?')} bytes from {kv.get('rng_rng_current', '?')} "
          f"({kv.get('rng_nonzero_bytes', '?')} non-zero)")
    print(f"       features {features_text(kv, 'rng')}")
    print("back-ends counted:")
    for name, (peer, _) in backends.items():
        print(f"  vireo {name}: {backend_counts(peer)}")
    print("=" * 72)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vireo", default=str(Path(__file__).resolve().parent.parent / "build" / "vireo"))
    ap.add_argument("--packed", action="store_true", help="ask for packed virtqueues (packed=on)")
    ap.add_argument("-v", action="store_true", help="echo the guest console")
    opts = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(128 + s))
    rc = prepare_guest()
    if rc is not None:
        return rc
    work = Path(tempfile.mkdtemp(prefix="vireo-demo."))
    backends: dict[str, tuple[Peer, Path]] = {}
    try:
        backends = start_backends(opts.vireo, work)
        devices = [vireo_vm.Device(name, str(sock), packed=opts.packed and name != "rng")
                   for name, (_, sock) in backends.items()]
        say(f"booting a guest with vireo blk, net and rng ({'packed' if opts.packed else 'split'} rings)")
        t0 = time.monotonic()
        res = vireo_vm.run(devices=devices, payload="demo", timeout=240, echo=opts.v,
                           args={"seed": SEED, "size_mib": SIZE_MIB, "offset_mib": OFFSET_MIB,
                                 "count": 5, "ip": "192.0.2.2/24", "target": RESPONDER_IP})
        took = time.monotonic() - t0
        time.sleep(1.2)  # one more --stats interval, so the counts include the guest's last requests
        report(res, backends, took)
        suite = Suite()
        if res.ok:
            check_blk(suite, "demo", res, work / "disk.img")
        return 0 if res.ok and not suite.failed else 1
    except RuntimeError as e:
        say(f"FAIL: {e}")
        return 1
    finally:
        for peer, _ in backends.values():
            peer.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
