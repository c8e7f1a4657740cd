#!/usr/bin/env python3
"""Boot the Vireo test guest in QEMU with vhost-user devices and read its verdict.

Library and CLI, Python 3 standard library only. See qemu/README.md.

CLI:
    qemu/vireo_vm.py --blk /tmp/blk.sock --payload blk --arg seed=7
    qemu/vireo_vm.py --net /tmp/net.sock,packed=on --payload net --arg count=10
    qemu/vireo_vm.py --rng /tmp/rng.sock,reconnect=1 --payload rng --timeout 60
    qemu/vireo_vm.py --blk A.sock --net B.sock --payload multi --json out.json
Exit code: 0 PASS, 1 FAIL (or timeout), 77 SKIP (QEMU or the guest image missing).

Python:
    import vireo_vm
    res = vireo_vm.run(devices=[vireo_vm.Device("blk", "/tmp/blk.sock")],
                       payload="blk", args={"seed": 7}, timeout=120)
    res.verdict, res.reason, res.kv["blk_md5"], res.exit_code, res.boot_s
    # or, to act while the guest runs (e.g. restart a back-end):
    with vireo_vm.VM(devices=[...], payload="net", args={"count": 50}) as vm:
        vm.start()
        vm.wait_for_console(r"PING", timeout=60)
        ...
        res = vm.wait()
"""
from __future__ import annotations

import atexit
import ctypes
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

EXIT_PASS, EXIT_FAIL, EXIT_SKIP = 0, 1, 77

HERE = Path(__file__).resolve().parent
BUILD_GUEST = HERE / "build-guest.sh"
PAYLOAD_DIR = HERE / "payloads"

KV_RE = re.compile(r"VIREO-KV ([A-Za-z0-9_.-]+)=(.*)$")
RESULT_RE = re.compile(r"VIREO-RESULT: (PASS|FAIL)(?: (.*))?$")
BOOT_RE = re.compile(r"VIREO-BOOT:")
ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1bc")
SAFE_CMDLINE_VALUE = re.compile(r"^[A-Za-z0-9._:/,+@%=-]*$")

DEFAULT_MACS = "52:54:00:12:34:{:02x}"


class Skip(Exception):
    """The VM cannot run here (no QEMU, no guest image): exit code 77."""


def cache_root() -> Path:
    root = os.environ.get("VIREO_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "vireo"


def log(msg: str) -> None:
    print(f"vireo_vm: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Devices
# --------------------------------------------------------------------------
@dataclass
class Device:
    """A vhost-user device whose back-end listens on `socket` (QEMU connects as client).

    kind: "blk" (vhost-user-blk-pci), "net" (-netdev vhost-user + virtio-net-pci,
    vectors=0), "rng" (vhost-user-rng-pci).
    packed: ask for VIRTIO_F_RING_PACKED (QEMU drops it silently if the back-end
    does not offer it: check the guest's feature bits).
    reconnect: seconds for the chardev's reconnect= (QEMU waits for the back-end
    and reconnects after it restarts); None = connect once, fail if absent.
    mac: net only (default 52:54:00:12:34:<index>).
    props: extra -device properties, e.g. {"num-queues": "2"}.
    """

    kind: str
    socket: str
    packed: bool = False
    reconnect: int | None = None
    mac: str | None = None
    props: dict = field(default_factory=dict)

    KINDS = ("blk", "net", "rng")

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"unknown device kind {self.kind!r} (want one of {self.KINDS})")

    @classmethod
    def parse(cls, kind: str, spec: str) -> "Device":
        """Parse 'SOCK[,packed=on][,reconnect=1][,mac=..][,prop=val...]'."""
        parts = spec.split(",")
        dev = cls(kind, parts[0])
        for p in parts[1:]:
            key, _, val = p.partition("=")
            if key == "packed":
                dev.packed = val in ("on", "1", "true", "yes", "")
            elif key == "reconnect":
                dev.reconnect = int(val or "1")
            elif key == "mac":
                dev.mac = val
            elif key:
                dev.props[key] = val
        if not dev.socket:
            raise ValueError(f"--{kind}: missing socket path in {spec!r}")
        return dev

    def qemu_args(self, index: int) -> list[str]:
        path = str(self.socket).replace(",", ",,")
        chardev = f"socket,id=vu{index},path={path}"
        if self.reconnect:
            chardev += f",reconnect={self.reconnect}"
        props = dict(self.props)
        if self.packed:
            props["packed"] = "on"
        extra = "".join(f",{k}={v}" for k, v in props.items())
        if self.kind == "blk":
            return ["-chardev", chardev, "-device", f"vhost-user-blk-pci,chardev=vu{index},id=blk{index}{extra}"]
        if self.kind == "rng":
            return ["-chardev", chardev, "-device", f"vhost-user-rng-pci,chardev=vu{index},id=rng{index}{extra}"]
        # net: vectors=0 (INTx) because QEMU 7.2 + TCG + vhost-user-net + MSI-X
        # segfaults when the guest sets DRIVER_OK; romfile= skips the iPXE ROM.
        mac = self.mac or DEFAULT_MACS.format(0x56 + index)
        props.setdefault("vectors", "0")
        props.setdefault("romfile", "")
        extra = "".join(f",{k}={v}" for k, v in props.items())
        return ["-chardev", chardev, "-netdev", f"vhost-user,id=net{index},chardev=vu{index}",
                "-device", f"virtio-net-pci,netdev=net{index},id=nic{index},mac={mac}{extra}"]


# --------------------------------------------------------------------------
# Guest image and accelerator
# --------------------------------------------------------------------------
@dataclass
class GuestImage:
    directory: Path
    kernel: Path
    initrd: Path

    @classmethod
    def find(cls, guest_dir: str | os.PathLike | None = None, build: bool = False) -> "GuestImage":
        """Locate the cached guest (VIREO_GUEST_DIR, else $VIREO_CACHE/guest/current).
        With build=True run build-guest.sh first (a no-op when cached)."""
        if build:
            proc = subprocess.run(["sh", str(BUILD_GUEST), "--print-dir"], stdout=subprocess.PIPE, text=True)
            if proc.returncode == EXIT_SKIP:
                raise Skip("build-guest.sh could not build the guest here (see its message)")
            if proc.returncode != 0:
                raise RuntimeError(f"build-guest.sh failed with exit code {proc.returncode}")
            if guest_dir is None and proc.stdout.strip():
                guest_dir = proc.stdout.strip().splitlines()[-1]
        d = Path(guest_dir or os.environ.get("VIREO_GUEST_DIR") or cache_root() / "guest" / "current")
        kernel, initrd = d / "vmlinuz", d / "initramfs.cpio.gz"
        if not (kernel.is_file() and initrd.is_file()):
            raise Skip(f"no guest image in {d} (run qemu/build-guest.sh, or pass --build)")
        img = cls(d.resolve(), kernel.resolve(), initrd.resolve())
        if not img.is_current():
            log(f"warning: the guest image in {img.directory} was not built from the current qemu/guest "
                "and qemu/payloads sources: run qemu/build-guest.sh (or pass --build)")
        return img

    def is_current(self) -> bool:
        """Does the image's stamp match the sources (same hash as build-guest.sh)?"""
        try:
            stamp = (self.directory / "stamp").read_text().strip()
            h = hashlib.md5()
            for p in [BUILD_GUEST, HERE / "guest" / "init", HERE / "guest" / "lib.sh",
                      *sorted(PAYLOAD_DIR.glob("*.sh"))]:
                h.update(p.read_bytes())
            h.update((self.directory.name + "\n").encode())
            return h.hexdigest() == stamp
        except OSError:
            return True  # an image without a stamp or sources: nothing to compare


def find_qemu(qemu: str | None = None) -> str:
    exe = qemu or os.environ.get("VIREO_QEMU") or "qemu-system-x86_64"
    path = shutil.which(exe)
    if not path:
        raise Skip(f"{exe} not found (apt-get install qemu-system-x86)")
    return path


def _cpu_has_vt() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return bool(re.search(r"^flags\s*:.*\b(vmx|svm)\b", flags, re.M))


def detect_accel(qemu: str, image: GuestImage, requested: str | None = None) -> tuple[str, str]:
    """Return (accel, why). 'auto' uses KVM only if a probe boot under KVM
    reached /init in time (result cached per host kernel, QEMU and guest)."""
    requested = requested or os.environ.get("VIREO_ACCEL") or "auto"
    if requested in ("tcg", "kvm"):
        return requested, f"{requested} requested"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg", "TCG: /dev/kvm is not usable"
    force_probe = os.environ.get("VIREO_KVM_PROBE") == "force"
    if not _cpu_has_vt() and not force_probe:
        return "tcg", ("TCG: /dev/kvm exists but the CPU shows no vmx/svm flag "
                       "(nested virtualisation without VT-x: KVM guests hang here)")
    qemu_ver = subprocess.run([qemu, "--version"], stdout=subprocess.PIPE, text=True).stdout.split("\n")[0]
    key = hashlib.md5(f"{os.uname().release}|{qemu_ver}|{image.kernel}|{image.kernel.stat().st_mtime}"
                      .encode()).hexdigest()
    cache = cache_root() / "kvm-probe.json"
    try:
        cached = json.loads(cache.read_text())
        if cached.get("key") == key:
            return cached["accel"], cached["why"] + " (cached probe)"
    except (OSError, ValueError, KeyError):
        pass
    t0 = time.monotonic()
    res = VM(payload="probe", timeout=int(os.environ.get("VIREO_KVM_PROBE_TIMEOUT", "25")),
             accel="kvm", qemu=qemu, guest_dir=image.directory).run()
    took = time.monotonic() - t0
    if res.verdict == "PASS":
        accel, why = "kvm", f"KVM: probe boot passed in {took:.1f} s"
    else:
        accel, why = "tcg", f"TCG: KVM probe boot failed ({res.reason}) after {took:.1f} s"
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"key": key, "accel": accel, "why": why}))
    except OSError:
        pass
    return accel, why


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------
@dataclass
class Result:
    verdict: str                      # "PASS", "FAIL" or "SKIP"
    reason: str = ""
    kv: dict = field(default_factory=dict)
    accel: str = ""
    accel_why: str = ""
    boot_s: float | None = None       # host: QEMU start -> guest /init ("VIREO-BOOT")
    duration_s: float | None = None   # host: QEMU start -> QEMU gone
    qemu_rc: int | None = None
    timed_out: bool = False
    console: list = field(default_factory=list)
    qemu_stderr: str = ""
    command: list = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return {"PASS": EXIT_PASS, "SKIP": EXIT_SKIP}.get(self.verdict, EXIT_FAIL)

    @property
    def ok(self) -> bool:
        return self.verdict == "PASS"

    def __bool__(self) -> bool:
        return self.ok

    def to_dict(self, console: bool = False) -> dict:
        d = {k: getattr(self, k) for k in ("verdict", "reason", "kv", "accel", "accel_why", "boot_s",
                                            "duration_s", "qemu_rc", "timed_out", "command")}
        d["exit_code"] = self.exit_code
        if console:
            d["console"] = self.console
            d["qemu_stderr"] = self.qemu_stderr
        return d


# --------------------------------------------------------------------------
# The VM
# --------------------------------------------------------------------------
_live_vms: "set[VM]" = set()


@atexit.register
def _kill_live_vms() -> None:
    for vm in list(_live_vms):
        vm.stop()


def _set_pdeathsig() -> None:
    """Child side (preexec): have the kernel SIGKILL QEMU if we die."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort
        pass


def _sweep_stale_tmpdirs() -> None:
    """Remove temp dirs left by launchers that were SIGKILLed (name holds the pid)."""
    for d in Path(tempfile.gettempdir()).glob("vireo-vm.*.*"):
        try:
            pid = int(d.name.split(".")[1])
            os.kill(pid, 0)
        except (ValueError, IndexError):
            continue
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            pass


def wait_for_socket(path: str | os.PathLike, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    """Poll until `path` is a Unix socket; False on timeout or if `proc` exited."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                return True
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


class VM:
    """One QEMU run of the test guest. Use as a context manager (stop() always runs)."""

    def __init__(self, devices=(), payload: str | None = "probe", args: dict | None = None,
                 payload_file: str | os.PathLike | None = None, payload_text: str | None = None,
                 timeout: float = 180, mem: str = "512M", smp: int = 1,
                 guest_dir: str | os.PathLike | None = None, build: bool = False,
                 accel: str | None = None, qemu: str | None = None, log_path: str | os.PathLike | None = None,
                 echo: bool = False, extra_qemu_args=(), append: str = "", socket_wait: float = 15.0,
                 verdict_grace: float = 20.0):
        self.devices = list(devices)
        self.payload, self.payload_file, self.payload_text = payload, payload_file, payload_text
        self.args = {str(k): str(v) for k, v in (args or {}).items()}
        self.timeout, self.mem, self.smp = timeout, mem, smp
        self.guest_dir, self.build, self.accel = guest_dir, build, accel
        self.qemu = qemu
        self.log_path = Path(log_path) if log_path else None
        self.echo = echo
        self.extra_qemu_args = list(extra_qemu_args)
        self.append = append
        self.socket_wait = socket_wait
        self.verdict_grace = verdict_grace
        self.proc: subprocess.Popen | None = None
        self.tmpdir: Path | None = None
        self.accel_why = ""
        self.command: list[str] = []
        self._lines: list[str] = []
        self._kv: dict = {}
        self._verdict: tuple[str, str] | None = None
        self._t_start = self._t_boot = self._t_end = self._t_verdict = None
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None
        self._logf = None

    # -- context manager ----------------------------------------------------
    def __enter__(self) -> "VM":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- building the command line -------------------------------------------
    def _kernel_cmdline(self, fw_args: list[str]) -> str:
        words = ["console=ttyS0", "quiet", "panic=-1"]
        if self.payload_file or self.payload_text:
            words.append("vireo.test=fw_cfg")
        elif self.payload:
            words.append(f"vireo.test={self.payload}")
        for k, v in self.args.items():
            if not re.match(r"^[A-Za-z0-9_.-]+$", k):
                raise ValueError(f"bad payload argument name {k!r}")
            if SAFE_CMDLINE_VALUE.match(v):
                words.append(f"vireo.{k}={v}")
            else:  # spaces, quotes...: hand it over through fw_cfg instead
                fw_args.append(f"{k}={v}")
        if self.append:
            words.append(self.append)
        return " ".join(words)

    def build_command(self, image: GuestImage, qemu: str, accel: str) -> list[str]:
        assert self.tmpdir is not None
        fw_args: list[str] = []
        cmd = [qemu, "-name", "vireo-guest",
               "-accel", accel, "-cpu", "max" if accel == "tcg" else "host",
               "-smp", str(self.smp), "-m", self.mem,
               "-object", f"memory-backend-memfd,id=mem,size={self.mem},share=on", "-numa", "node,memdev=mem",
               "-kernel", str(image.kernel), "-initrd", str(image.initrd),
               "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio", "-monitor", "none",
               "-append", self._kernel_cmdline(fw_args)]
        payload_file = self.payload_file
        if self.payload_text is not None:
            payload_file = self.tmpdir / "payload.sh"
            Path(payload_file).write_text(self.payload_text)
        if payload_file:
            cmd += ["-fw_cfg", f"name=opt/vireo/payload,file={str(payload_file).replace(',', ',,')}"]
        if fw_args:
            argfile = self.tmpdir / "args"
            argfile.write_text("\n".join(fw_args) + "\n")
            cmd += ["-fw_cfg", f"name=opt/vireo/args,file={argfile}"]
        for i, dev in enumerate(self.devices):
            cmd += dev.qemu_args(i)
        return cmd + self.extra_qemu_args

    # -- running --------------------------------------------------------------
    def start(self) -> None:
        """Start QEMU. Raises Skip when QEMU or the guest image is missing, and
        RuntimeError when a back-end socket does not appear in time."""
        qemu = find_qemu(self.qemu)
        image = GuestImage.find(self.guest_dir, self.build)
        if self.accel in (None, "auto"):
            self.accel, self.accel_why = detect_accel(qemu, image, self.accel)
        else:
            self.accel_why = f"{self.accel} requested"
        if self.payload_file and not Path(self.payload_file).is_file():
            raise ValueError(f"payload file {self.payload_file} not found")
        if (self.payload and not (self.payload_file or self.payload_text)
                and not (PAYLOAD_DIR / f"{self.payload}.sh").is_file()):
            raise ValueError(f"unknown built-in payload {self.payload!r} "
                             f"(have: {', '.join(sorted(p.stem for p in PAYLOAD_DIR.glob('*.sh')))})")
        for dev in self.devices:
            if not dev.reconnect and not wait_for_socket(dev.socket, self.socket_wait):
                raise RuntimeError(f"{dev.kind} back-end socket {dev.socket} did not appear "
                                   f"within {self.socket_wait:.0f} s")
        _sweep_stale_tmpdirs()
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"vireo-vm.{os.getpid()}."))
        _live_vms.add(self)
        self.command = self.build_command(image, qemu, self.accel)
        log_path = self.log_path or self.tmpdir / "console.log"
        self._logf = open(log_path, "w", encoding="utf-8", errors="replace")
        self._stderr_path = self.tmpdir / "qemu.stderr"
        self._t_start = time.monotonic()
        with open(self._stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=err, start_new_session=True, preexec_fn=_set_pdeathsig)
        self._reader = threading.Thread(target=self._read_console, name="vireo-vm-console", daemon=True)
        self._reader.start()

    def _read_console(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            line = ANSI_RE.sub("", raw.decode("utf-8", "replace")).replace("\r", "").rstrip("\n")
            if self._logf:
                self._logf.write(line + "\n")
                self._logf.flush()
            if self.echo:
                print(f"guest| {line}", file=sys.stderr, flush=True)
            with self._cond:
                self._lines.append(line)
                if BOOT_RE.search(line) and self._t_boot is None:
                    self._t_boot = time.monotonic()
                m = KV_RE.search(line)
                if m:
                    self._kv[m.group(1)] = m.group(2)
                m = RESULT_RE.search(line)
                if m and self._verdict is None:
                    self._verdict = (m.group(1), m.group(2) or "")
                    self._t_verdict = time.monotonic()
                self._cond.notify_all()
        with self._cond:
            self._t_end = time.monotonic()
            self._cond.notify_all()

    def wait_for_console(self, pattern: str, timeout: float) -> re.Match | None:
        """Block until a console line matches `pattern` (regex); None on timeout or exit."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self._lines[seen:]:
                    m = rx.search(line)
                    if m:
                        return m
                seen = len(self._lines)
                left = end - time.monotonic()
                if left <= 0 or self._t_end is not None:
                    return None
                self._cond.wait(min(left, 0.5))

    def wait(self, timeout: float | None = None) -> Result:
        """Wait for the guest's verdict and QEMU's exit, then stop and clean up."""
        assert self.proc is not None, "start() first"
        timeout = self.timeout if timeout is None else timeout
        deadline = self._t_start + timeout
        timed_out = False
        with self._cond:
            while self._t_end is None:
                now = time.monotonic()
                if self._t_verdict is not None:
                    # The guest powers off right after its verdict; don't wait forever.
                    deadline = min(deadline, self._t_verdict + self.verdict_grace)
                if now >= deadline:
                    timed_out = self._verdict is None
                    break
                self._cond.wait(min(deadline - now, 0.5))
        return self._finish(timed_out)

    def _finish(self, timed_out: bool) -> Result:
        self.stop(keep_tmp=True)
        stderr = ""
        try:
            stderr = self._stderr_path.read_text(errors="replace")
        except (OSError, AttributeError):
            pass
        res = Result(verdict="FAIL", kv=dict(self._kv), accel=self.accel or "", accel_why=self.accel_why,
                     qemu_rc=self.proc.returncode if self.proc else None, timed_out=timed_out,
                     console=list(self._lines), qemu_stderr=stderr, command=list(self.command))
        if self._t_start is not None:
            if self._t_boot is not None:
                res.boot_s = round(self._t_boot - self._t_start, 2)
            res.duration_s = round((self._t_end or time.monotonic()) - self._t_start, 2)
        if self._verdict is not None:
            res.verdict, res.reason = self._verdict
        elif timed_out:
            res.reason = (f"timeout after {self.timeout:.0f} s without a verdict"
                          + ("" if self._t_boot else " (guest never reached /init)"))
        else:
            last = stderr.strip().splitlines()[-1:] or ["no output"]
            res.reason = f"QEMU exited (rc={res.qemu_rc}) before a verdict: {last[0]}"
        self._cleanup_tmp()
        return res

    def run(self) -> Result:
        """start() + wait(); Skip and start errors become a Result too."""
        try:
            try:
                self.start()
            except Skip as e:
                return Result(verdict="SKIP", reason=str(e))
            except (RuntimeError, ValueError, OSError) as e:
                return Result(verdict="FAIL", reason=str(e), accel=self.accel or "", accel_why=self.accel_why)
            return self.wait()
        finally:
            self.stop()

    def stop(self, keep_tmp: bool = False) -> None:
        """Kill QEMU (whole process group) if running; remove temp files."""
        p = self.proc
        if p is not None and p.poll() is None:
            for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    p.wait(grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if p is not None:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if self._reader is not None:
            self._reader.join(5)
        if p is not None and p.stdout is not None:
            p.stdout.close()
        if self._logf is not None:
            self._logf.close()
            self._logf = None
        if not keep_tmp:
            self._cleanup_tmp()
        _live_vms.discard(self)

    def _cleanup_tmp(self) -> None:
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None


def run(**kwargs) -> Result:
    """Convenience: VM(**kwargs).run()."""
    return VM(**kwargs).run()


# --------------------------------------------------------------------------
# Helpers for tests
# --------------------------------------------------------------------------
def pattern(seed: int, mib: int) -> bytes:
    """The bytes the guest's blk payload writes (guest/lib.sh make_pattern)."""
    m = 1 << 31
    seed %= m
    x = (seed * 69069 + 12345) % m
    out = []
    for line in range(mib * 16384):
        a = (x * 69069 + 1) % m
        b = (a * 69069 + 1) % m
        c = (b * 69069 + 1) % m
        x = (c * 69069 + 1) % m
        out.append("%08x: %08x %08x %08x %08x %08x %08x\n" % (line, a, b, c, x, (a + line) % m, (b + seed) % m))
    return "".join(out).encode()


def md5_of_range(path: str | os.PathLike, offset: int, length: int) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        f.seek(offset)
        left = length
        while left > 0:
            chunk = f.read(min(left, 1 << 20))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


if __name__ == "__main__":  # the CLI lives in vm_cli.py
    sys.path.insert(0, str(HERE))
    from vm_cli import main
    sys.exit(main())
