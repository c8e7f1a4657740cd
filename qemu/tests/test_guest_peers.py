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

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import vireo_vm  # noqa: E402

VERBOSE = "-v" in sys.argv[1:]
SEED, SIZE_MIB, OFFSET_MIB = 20241, 4, 8
PINGS = 10


def say(msg: str) -> None:
    print(f"test_guest_peers: {msg}", flush=True)


class Peer:
    """A back-end process in its own process group; stop() is idempotent."""

    def __init__(self, name: str, cmd: list[str], log: Path, keep_stdin_open: bool = False):
        self.name, self.cmd, self.log = name, cmd, log
        self._logf = open(log, "wb")
        # dpdk-testpmd without -i waits on stdin ("Press enter to exit"): an
        # open pipe keeps it running, closing it ends it cleanly.
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if keep_stdin_open else subprocess.DEVNULL,
                                     stdout=self._logf, stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=vireo_vm._set_pdeathsig)

    def wait_socket(self, path: Path, timeout: float) -> bool:
        return vireo_vm.wait_for_socket(path, timeout, self.proc)

    def tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        p = self.proc
        if p.stdin is not None and not p.stdin.closed:
            try:
                p.stdin.close()
            except OSError:
                pass
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if p.poll() is not None:
                break
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                break
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self._logf.close()


class Suite:
    def __init__(self) -> None:
        self.passed: list[str] = []
        self.failed: list[str] = []
        self.skipped: list[str] = []
        self.timings: list[tuple[str, float, float | None]] = []

    def check(self, name: str, cond: bool, detail: str) -> bool:
        (self.passed if cond else self.failed).append(name)
        say(f"{'ok  ' if cond else 'FAIL'} {name}: {detail}")
        return cond

    def skip(self, name: str, why: str) -> None:
        self.skipped.append(name)
        say(f"SKIP {name}: {why}")


def run_vm(suite: Suite, name: str, **kw) -> vireo_vm.Result:
    t0 = time.monotonic()
    res = vireo_vm.run(timeout=150, echo=VERBOSE, **kw)
    took = time.monotonic() - t0
    suite.timings.append((name, took, res.boot_s))
    say(f"{name}: guest verdict {res.verdict}{' (' + res.reason + ')' if res.reason else ''} "
        f"in {took:.1f} s (boot to /init {res.boot_s} s, accel {res.accel})")
    if res.verdict == "FAIL" and not VERBOSE:
        for line in res.console[-30:]:
            print(f"  guest| {line}")
        if res.qemu_stderr.strip():
            print("  qemu stderr: " + res.qemu_stderr.strip()[-1500:])
    return res


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


def check_blk(suite: Suite, name: str, res: vireo_vm.Result, img: Path, prefix: str = "blk") -> None:
    kv = res.kv
    want = hashlib.md5(vireo_vm.pattern(SEED, SIZE_MIB)).hexdigest()
    host = vireo_vm.md5_of_range(img, OFFSET_MIB << 20, SIZE_MIB << 20)
    guest = kv.get(f"{prefix}_md5", "")
    suite.check(f"{name}: guest md5 == host image md5", guest != "" and guest == host,
                f"guest {guest or '?'} host {host} (bytes {OFFSET_MIB} MiB..{OFFSET_MIB + SIZE_MIB} MiB)")
    suite.check(f"{name}: pattern md5 as predicted", guest == want, f"guest {guest or '?'} predicted {want}")
    suite.check(f"{name}: VERSION_1 negotiated", kv.get(f"{prefix}_version_1") == "1",
                f"features {kv.get(f'{prefix}_features_hex', '?')}")


def check_net(suite: Suite, name: str, res: vireo_vm.Result, packed: bool) -> None:
    kv = res.kv
    suite.check(f"{name}: pings answered", kv.get("net_received") == str(PINGS),
                f"{kv.get('net_received', '?')} of {PINGS} (ping took {kv.get('net_ping_s', '?')} s)")
    suite.check(f"{name}: RING_PACKED {'on' if packed else 'off'}", kv.get("net_packed") == ("1" if packed else "0"),
                f"features {kv.get('net_features_hex', '?')} (bit 34 = {kv.get('net_packed', '?')}, "
                f"EVENT_IDX bit 29 = {kv.get('net_event_idx', '?')})")


def main() -> int:
    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)

    t_all = time.monotonic()
    try:
        vireo_vm.find_qemu()
    except vireo_vm.Skip as e:
        say(f"SKIP: {e}")
        return 77
    t0 = time.monotonic()
    build = subprocess.run(["sh", str(vireo_vm.BUILD_GUEST)])
    say(f"build-guest.sh: exit {build.returncode} in {time.monotonic() - t0:.1f} s")
    if build.returncode == 77:
        say("SKIP: the guest image cannot be built here (see build-guest.sh's message)")
        return 77
    if build.returncode != 0:
        say("FAIL: build-guest.sh failed")
        return 1

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

    say("timings: " + ", ".join(f"{n} {t:.1f} s (boot {b} s)" for n, t, b in suite.timings)
        + f"; total {time.monotonic() - t_all:.1f} s")
    print(f"{len(suite.passed)} passed, {len(suite.failed)} failed, {len(suite.skipped)} skipped")
    if suite.failed:
        return 1
    if not suite.passed:
        say("SKIP: no peer back-end available (qemu-storage-daemon, dpdk-testpmd)")
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
