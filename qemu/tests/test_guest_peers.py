#!/usr/bin/env python3
"""Prove the test guest and launcher against vhost-user back-ends that exist today.

  blk         guest O_DIRECT-writes a seeded pattern to a qemu-storage-daemon
              vhost-user-blk export; the host image's bytes must have the md5
              the guest reported (and the one vireo_vm.pattern() predicts).
  net-split   guest pings through dpdk-testpmd (net_vhost, icmpecho), split ring.
  net-packed  the same with packed=on; RING_PACKED (bit 34) must be negotiated.
  multi       blk + net (packed) + QEMU's built-in virtio-rng-pci in one guest,
              "multi" payload (the project demo's shape).

Exit: 0 all passed, 1 a check failed, 77 (meson SKIP) when QEMU, the guest
image or every peer is missing; a missing peer alone skips its own parts.
Python 3 standard library only. Run: python3 qemu/tests/test_guest_peers.py [-v]
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
from vmtest import (OFFSET_MIB, SEED, SIZE_MIB, PINGS, VERBOSE, Peer, Suite, check_blk,  # noqa: E402,F401
                    check_net, exit_on_signals, finish, prepare_guest, run_vm, say, vireo_vm)
import time  # noqa: E402


def start_qsd(work: Path, tag: str) -> tuple[Peer | None, Path, Path]:
    img, sock = work / f"{tag}.img", work / f"{tag}.sock"
    with open(img, "wb") as f:
        f.truncate(64 << 20)
    peer = Peer("qemu-storage-daemon", [
        "qemu-storage-daemon",
        "--blockdev", f"driver=file,node-name=file0,filename={img}",
        "--export", f"type=vhost-user-blk,id=exp0,node-name=file0,addr.type=unix,addr.path={sock},writable=on",
    ], work / f"{tag}.qsd.log")
    if not peer.wait_socket(sock, 15):
        say(f"qemu-storage-daemon did not create {sock}:\n{peer.tail()}")
        peer.stop()
        return None, img, sock
    return peer, img, sock


def start_testpmd(work: Path, tag: str, prefixes: list[str]) -> tuple[Peer | None, Path]:
    sock = work / f"{tag}.sock"
    prefix = f"vireo-{os.getpid()}-{tag}"
    prefixes.append(prefix)
    peer = Peer("dpdk-testpmd", [
        "dpdk-testpmd", "-l", "0,1", "--no-pci", "--no-huge", "-m", "256", f"--file-prefix={prefix}",
        "--vdev", f"net_vhost0,iface={sock}",
        "--", "--forward-mode=icmpecho", "--total-num-mbufs=16384",
    ], work / f"{tag}.testpmd.log", keep_stdin_open=True)
    if not peer.wait_socket(sock, 30):
        say(f"dpdk-testpmd did not create {sock}:\n{peer.tail()}")
        peer.stop()
        return None, sock
    return peer, sock


def main() -> int:
    exit_on_signals()
    t_all = time.monotonic()
    rc = prepare_guest()
    if rc is not None:
        return rc

    have_qsd = shutil.which("qemu-storage-daemon") is not None
    have_pmd = shutil.which("dpdk-testpmd") is not None
    suite = Suite()
    work = Path(tempfile.mkdtemp(prefix="vireo-peers."))
    peers: list[Peer] = []
    prefixes: list[str] = []
    blk_args = {"seed": SEED, "size_mib": SIZE_MIB, "offset_mib": OFFSET_MIB}
    net_args = {"count": PINGS, "ip": "192.0.2.2/24", "target": "192.0.2.1"}
    try:
        # ---- blk: qemu-storage-daemon --------------------------------------
        if not have_qsd:
            suite.skip("blk", "qemu-storage-daemon not found (apt-get install qemu-utils)")
        else:
            qsd, img, sock = start_qsd(work, "blk")
            if qsd is None:
                suite.check("blk: qemu-storage-daemon started", False, "no socket")
            else:
                peers.append(qsd)
                res = run_vm(suite, "blk", devices=[vireo_vm.Device("blk", str(sock))], payload="blk",
                             args=blk_args)
                if suite.check("blk: guest verdict PASS", res.ok, res.reason or "PASS"):
                    check_blk(suite, "blk", res, img)
                qsd.stop()

        # ---- net: dpdk-testpmd icmpecho, split then packed ---------------------
        if not have_pmd:
            suite.skip("net-split", "dpdk-testpmd not found (apt-get install dpdk-dev)")
            suite.skip("net-packed", "dpdk-testpmd not found (apt-get install dpdk-dev)")
        else:
            for packed in (False, True):
                name = "net-packed" if packed else "net-split"
                pmd, sock = start_testpmd(work, name, prefixes)
                if pmd is None:
                    suite.check(f"{name}: dpdk-testpmd started", False, "no socket")
                    continue
                peers.append(pmd)
                res = run_vm(suite, name, devices=[vireo_vm.Device("net", str(sock), packed=packed)],
                             payload="net", args=net_args)
                if suite.check(f"{name}: guest verdict PASS", res.ok, res.reason or "PASS"):
                    check_net(suite, name, res, packed)
                pmd.stop()
                if VERBOSE:
                    print(pmd.tail(12))

        # ---- multi: every device in one guest -----------------------------------
        if have_qsd and have_pmd:
            qsd, img, bsock = start_qsd(work, "multi-blk")
            pmd, nsock = start_testpmd(work, "multi-net", prefixes)
            peers += [p for p in (qsd, pmd) if p]
            if qsd and pmd:
                res = run_vm(suite, "multi",
                             devices=[vireo_vm.Device("blk", str(bsock)), vireo_vm.Device("net", str(nsock), packed=True)],
                             extra_qemu_args=["-device", "virtio-rng-pci"],
                             payload="multi", args={**blk_args, **net_args})
                if suite.check("multi: guest verdict PASS", res.ok, res.reason or "PASS"):
                    suite.check("multi: blk, net and rng all tested", res.kv.get("tested") == "blk,net,rng",
                                f"tested={res.kv.get('tested', '?')}")
                    check_blk(suite, "multi", res, img)
                    check_net(suite, "multi", res, packed=True)
                    suite.check("multi: rng bytes", res.kv.get("rng_bytes") == "4096",
                                f"{res.kv.get('rng_bytes', '?')} bytes from {res.kv.get('rng_rng_current', '?')}")
            else:
                suite.check("multi: peers started", False, "a peer did not start")
        else:
            suite.skip("multi", "needs both qemu-storage-daemon and dpdk-testpmd")
    finally:
        for p in peers:
            p.stop()
        for prefix in prefixes:
            shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)

    return finish(suite, t_all, "no peer back-end available (qemu-storage-daemon, dpdk-testpmd)")

if __name__ == "__main__":
    sys.exit(main())
