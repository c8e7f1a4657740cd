"""Shared pieces of the VM tests: back-end processes, a pass/fail/skip tally, one guest run,
and the checks of the blk and net payloads' verdicts. Python 3 standard library only."""
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
NAME = Path(sys.argv[0]).stem


def say(msg: str) -> None:
    print(f"{NAME}: {msg}", flush=True)


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

    def stop_hard(self) -> None:
        """SIGKILL, as a crash would: no clean close of the socket or the rings."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

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



def prepare_guest() -> int | None:
    """Finds QEMU and builds (or reuses) the guest image: None when ready, else an exit code
    (77 = SKIP with the reason printed, 1 = failure)."""
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
    return None


def exit_on_signals() -> None:
    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)


def finish(suite: Suite, t_all: float, nothing_ran: str) -> int:
    say("timings: " + ", ".join(f"{n} {t:.1f} s (boot {b} s)" for n, t, b in suite.timings)
        + f"; total {time.monotonic() - t_all:.1f} s")
    print(f"{len(suite.passed)} passed, {len(suite.failed)} failed, {len(suite.skipped)} skipped")
    if suite.failed:
        return 1
    if not suite.passed:
        say(f"SKIP: {nothing_ran}")
        return 77
    return 0


def vireo_bin() -> str | None:
    path = os.environ.get("VIREO") or str(Path(__file__).resolve().parents[2] / "build" / "vireo")
    return path if os.access(path, os.X_OK) else None


def run_cases(prefix: str, make_cases) -> int:
    """The main() of a VM test of Vireo's back-ends: SKIPs without the vireo binary or QEMU, runs
    the cases named on the command line (all by default) in order, and stops every back-end a
    case started. make_cases(suite, work, vireo) returns {case name: callable returning Peers}."""
    exit_on_signals()
    t_all = time.monotonic()
    vireo = vireo_bin()
    if vireo is None:
        say("SKIP: the vireo binary is missing (build it: ninja -C build)")
        return 77
    rc = prepare_guest()
    if rc is not None:
        return rc
    suite = Suite()
    work = Path(tempfile.mkdtemp(prefix=prefix))
    peers: list[Peer] = []
    only = [a for a in sys.argv[1:] if not a.startswith("-")]
    try:
        for case, run in make_cases(suite, work, vireo).items():
            if only and case not in only:
                continue
            started = run()
            peers += started
            for p in started:
                p.stop()
    finally:
        for p in peers:
            p.stop()
        shutil.rmtree(work, ignore_errors=True)
    return finish(suite, t_all, "no case ran")
