#!/usr/bin/env python3
"""vireo net and its front-ends in separate processes, over a real vhost-user socket.

  driver-*        `vireo driver net --mode pingpong` against `vireo net --port loopback`: split and
                  packed, EVENT_IDX on and off, 1 and 4 queue pairs; every frame carries a sequence
                  number and checksum, and none may be lost, corrupted or duplicated.
  restart-*       `vireo net` is SIGKILLed under traffic and started again; the driver reconnects
                  and frames flow again (split and packed).
  dpdk-*          (with --dpdk) DPDK's virtio-user PMD in dpdk-testpmd against `vireo net --port
                  loopback`: testpmd sends a first burst and forwards whatever comes back, so frames
                  circle through both rings; both sides' counters must move (split and packed).

The vireo binary comes from $VIREO (meson passes build/vireo). The last line is
"N passed, N failed, N skipped"; exit 0, 1 on a failure, 77 when nothing could run.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "qemu" / "tests"))
from vmtest import Peer, Suite, say  # noqa: E402  (process and tally helpers; no VM needed)

VIREO = os.environ.get("VIREO") or str(Path(__file__).resolve().parents[2] / "build" / "vireo")
FRAMES = 20000


def start_net(work: Path, tag: str, extra: list[str] | None = None, log_tag: str | None = None) -> tuple[Peer, Path]:
    sock = work / f"{tag}.sock"
    peer = Peer("vireo net", [VIREO, "net", "--socket-path", str(sock), "--port", "loopback",
                              "--stats", "1", *(extra or [])], work / f"{log_tag or tag}.log")
    if not peer.wait_socket(sock, 15):
        raise RuntimeError(f"vireo net did not listen on {sock}:\n{peer.tail()}")
    return peer, sock


def drive(sock: Path, layout: str, event_idx: str, queues: int, *args: str, timeout: float = 120) -> dict:
    cmd = [VIREO, "driver", "net", "--socket-path", str(sock), "--layout", layout, "--event-idx", event_idx,
           "--queues", str(queues), "--mode", "pingpong", "--json", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            result = json.loads(line)
            result["exit"] = out.returncode
            return result
    return {"exit": out.returncode, "error": (out.stderr or out.stdout).strip()[-800:]}


def test_driver(suite: Suite, work: Path) -> None:
    for queues in (1, 4):
        net, sock = start_net(work, f"driver-q{queues}", ["--queues", str(queues)])
        try:
            for layout in ("split", "packed"):
                for ev in ("on", "off"):
                    name = f"driver-{layout}-event-idx-{ev}-{queues}q"
                    r = drive(sock, layout, ev, queues, "--count", str(FRAMES))
                    ok = (r.get("exit") == 0 and r.get("received") == FRAMES and r.get("lost") == 0
                          and r.get("corrupt") == 0 and r.get("duplicates") == 0
                          and r.get("layout") == layout and r.get("event_idx") == (ev == "on"))
                    suite.check(name, ok, f"{r.get('received', '?')}/{FRAMES} frames back, lost {r.get('lost', '?')}, "
                                          f"corrupt {r.get('corrupt', '?')}, {r.get('pps', '?')} pps"
                                          + (f"; {r['error']}" if "error" in r else ""))
        finally:
            net.stop()


def frames_since(log: Path) -> int:
    """Chains the restarted back-end completed, from its last --stats lines (all queues)."""
    last: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines():
        m = re.search(r"queue (\d+): (?:chains|packets|requests|buffers) (\d+)", line)
        if m:
            last[m.group(1)] = int(m.group(2))
    return sum(last.values())


def test_restart(suite: Suite, work: Path) -> None:
    for layout in ("split", "packed"):
        name = f"restart-{layout}"
        net, sock = start_net(work, name)
        cmd = [VIREO, "driver", "net", "--socket-path", str(sock), "--layout", layout, "--mode", "pingpong",
               "--seconds", "8", "--connect-timeout", "20", "--json"]
        drv = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(2)
            net.stop_hard()
            time.sleep(0.5)
            net, sock = start_net(work, name, log_tag=f"{name}-restarted")
            out, err = drv.communicate(timeout=90)
            time.sleep(1.2)  # one more --stats line from the restarted back-end
            r = next((json.loads(line) for line in reversed(out.splitlines()) if line.startswith("{")), {})
            served = frames_since(work / f"{name}-restarted.log")
            ok = r.get("reconnects", 0) >= 1 and r.get("corrupt", 1) == 0 and served > 0
            suite.check(name, ok, f"driver reconnected {r.get('reconnects', '?')} time(s), corrupt "
                                  f"{r.get('corrupt', '?')}, {r.get('received', '?')} frames back in all; the "
                                  f"restarted back-end served {served} chains" + ("" if r else f"; {err[-500:]}"))
        finally:
            if drv.poll() is None:
                drv.kill()
                drv.wait()
            net.stop()


def testpmd_counts(text: str) -> tuple[int, int]:
    rx = [int(x) for x in re.findall(r"RX-packets:\s*(\d+)", text)]
    tx = [int(x) for x in re.findall(r"TX-packets:\s*(\d+)", text)]
    return (max(rx) if rx else 0, max(tx) if tx else 0)


def test_dpdk(suite: Suite, work: Path) -> None:
    pmd = shutil.which("dpdk-testpmd")
    if pmd is None:
        for layout in ("split", "packed"):
            suite.skip(f"dpdk-{layout}", "dpdk-testpmd not found (apt-get install dpdk-dev)")
        return
    free = int(Path("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages").read_text() or 0) \
        if Path("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages").exists() else 0
    if free < 128 or not os.path.ismount("/dev/hugepages"):
        for layout in ("split", "packed"):
            suite.skip(f"dpdk-{layout}", f"virtio-user needs hugetlbfs on /dev/hugepages with >= 128 free 2 MiB "
                                         f"pages ({free} free; run scripts/prepare-host.sh as root)")
        return
    for packed in (0, 1):
        name = f"dpdk-{'packed' if packed else 'split'}"
        net, sock = start_net(work, name)
        prefix = f"vireo-{os.getpid()}-{name}"
        cmd = [pmd, "-l", "0,1", "--no-pci", "--single-file-segments", "-m", "256", f"--file-prefix={prefix}",
               "--vdev", f"net_virtio_user0,path={sock},packed_vq={packed},queue_size=256",
               "--", "--forward-mode=io", "--tx-first", "--auto-start", "--total-num-mbufs=16384",
               "--txd=256", "--rxd=256"]
        try:
            p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 start_new_session=True)
            time.sleep(6)
            out, _ = p.communicate(input="\n", timeout=60)  # "Press enter to exit": prints the stats
            rx, tx = testpmd_counts(out)
            served = frames_since(work / f"{name}.log")
            negotiated = re.search(r"packed", out) is not None
            suite.check(name, rx > 1000 and tx > 1000 and served > 1000,
                        f"testpmd RX {rx} TX {tx} packets, vireo net completed {served} chains"
                        + ("" if rx else "; testpmd said: " + out.strip()[-600:]))
            del negotiated
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            suite.check(name, False, "dpdk-testpmd did not exit")
        finally:
            net.stop()
            shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
            for f in Path("/dev/hugepages").glob(f"{prefix}*"):
                f.unlink(missing_ok=True)


def main() -> int:
    if not os.access(VIREO, os.X_OK):
        say(f"SKIP: {VIREO} is not built")
        return 77
    suite = Suite()
    work = Path(tempfile.mkdtemp(prefix="vireo-net."))
    try:
        if "--dpdk" in sys.argv[1:]:
            test_dpdk(suite, work)
        else:
            test_driver(suite, work)
            test_restart(suite, work)
    except RuntimeError as e:
        suite.check("back-end start", False, str(e))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(suite.passed)} passed, {len(suite.failed)} failed, {len(suite.skipped)} skipped")
    if suite.failed:
        return 1
    return 0 if suite.passed else 77


if __name__ == "__main__":
    sys.exit(main())
