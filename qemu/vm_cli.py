#!/usr/bin/env python3
"""The command line of qemu/vireo_vm.py (run either file): boot the Vireo test guest with
vhost-user devices and report its verdict. Exit: 0 PASS, 1 FAIL, 77 SKIP. See qemu/README.md."""
from __future__ import annotations

import argparse
import json
import re
import signal
import sys
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
from vireo_vm import VM, Device, Result, Skip, log  # noqa: E402


def _parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="vireo_vm.py",
        description="Boot the Vireo test guest with vhost-user devices and report its verdict. "
                    "Exit: 0 PASS, 1 FAIL, 77 SKIP.",
        epilog="Device spec: SOCK[,packed=on][,reconnect=SECS][,mac=MAC (net)][,PROP=VAL (extra -device "
               "property)]. Extra QEMU argv elements: --qemu-arg=-device --qemu-arg=virtio-rng-pci.")
    ap.add_argument("--blk", action="append", default=[], metavar="SPEC", help="vhost-user-blk-pci back-end socket")
    ap.add_argument("--net", action="append", default=[], metavar="SPEC", help="vhost-user net back-end socket")
    ap.add_argument("--rng", action="append", default=[], metavar="SPEC", help="vhost-user-rng-pci back-end socket")
    ap.add_argument("--payload", "-p", default="probe",
                    help="built-in payload name (blk, net, rng, multi, demo, probe) or a path to a "
                         "busybox sh script (passed through fw_cfg)")
    ap.add_argument("--arg", "-a", action="append", default=[], metavar="KEY=VALUE",
                    help="payload argument (guest: vireo.KEY=VALUE)")
    ap.add_argument("--timeout", "-t", type=float, default=180, help="seconds (default 180)")
    ap.add_argument("--mem", default="512M")
    ap.add_argument("--smp", type=int, default=1)
    ap.add_argument("--accel", choices=("auto", "tcg", "kvm"), default=None,
                    help="default auto: KVM only if a probe boot works (env VIREO_ACCEL)")
    ap.add_argument("--guest", metavar="DIR", help="guest dir (default $VIREO_CACHE/guest/current)")
    ap.add_argument("--build", action="store_true", help="run build-guest.sh first (no-op when cached)")
    ap.add_argument("--qemu", help="QEMU binary (default qemu-system-x86_64, env VIREO_QEMU)")
    ap.add_argument("--qemu-arg", action="append", default=[], metavar="ARG", help="extra QEMU argv element")
    ap.add_argument("--append", default="", help="extra kernel command line words")
    ap.add_argument("--socket-wait", type=float, default=15.0,
                    help="seconds to wait for back-end sockets to appear (devices without reconnect)")
    ap.add_argument("--log", metavar="FILE", help="keep the guest console log here")
    ap.add_argument("--json", metavar="FILE", help="write the result as JSON here ('-' = stdout)")
    ap.add_argument("--console", "-v", action="store_true", help="echo the guest console to stderr")
    ap.add_argument("--print-command", action="store_true", help="print the QEMU command line")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    opts = _parse_args(argv)

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)

    try:
        devices = ([Device.parse("blk", s) for s in opts.blk] + [Device.parse("net", s) for s in opts.net]
                   + [Device.parse("rng", s) for s in opts.rng])
        args = {}
        for a in opts.arg:
            k, sep, v = a.partition("=")
            if not sep:
                raise ValueError(f"--arg {a!r}: want KEY=VALUE")
            args[k] = v
    except ValueError as e:
        log(f"error: {e}")
        return 2
    payload, payload_file = opts.payload, None
    if "/" in payload or payload.endswith(".sh"):
        payload, payload_file = None, payload

    vm = VM(devices=devices, payload=payload, payload_file=payload_file, args=args, timeout=opts.timeout,
            mem=opts.mem, smp=opts.smp, guest_dir=opts.guest, build=opts.build, accel=opts.accel,
            qemu=opts.qemu, log_path=opts.log, echo=opts.console, extra_qemu_args=opts.qemu_arg,
            append=opts.append, socket_wait=opts.socket_wait)
    try:
        try:
            vm.start()
        except Skip as e:
            res = Result(verdict="SKIP", reason=str(e))
        except (RuntimeError, ValueError, OSError) as e:
            res = Result(verdict="FAIL", reason=str(e), accel=vm.accel or "", accel_why=vm.accel_why)
        else:
            log(f"accel: {vm.accel_why}")
            if opts.print_command:
                log("qemu command: " + " ".join(_shell_quote(c) for c in vm.command))
            res = vm.wait()
    finally:
        vm.stop()

    for k, v in res.kv.items():
        print(f"{k}={v}")
    if res.verdict == "FAIL" and not opts.console and res.console:
        log("last guest console lines:")
        for line in res.console[-25:]:
            print(f"guest| {line}", file=sys.stderr)
    if res.verdict == "FAIL" and res.qemu_stderr.strip():
        log("QEMU stderr: " + res.qemu_stderr.strip()[-2000:])
    times = ""
    if res.duration_s is not None:
        times = f" in {res.duration_s:.1f} s" + (f" (boot to /init {res.boot_s:.1f} s)" if res.boot_s else "")
    log(f"{res.verdict}{times}{': ' + res.reason if res.reason else ''}")
    if opts.json:
        text = json.dumps(res.to_dict(), indent=2)
        if opts.json == "-":
            print(text)
        else:
            Path(opts.json).write_text(text + "\n")
    return res.exit_code


def _shell_quote(s: str) -> str:
    return s if re.match(r"^[A-Za-z0-9_./:=,+@%-]+$", s) else "'" + s.replace("'", "'\\''") + "'"


if __name__ == "__main__":
    sys.exit(main())
