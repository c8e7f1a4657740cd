#!/usr/bin/env python3
"""`vireo net --port dpdk:DEVARGS`: packets between a Vireo driver and a DPDK ethdev (vdevs).

  ring-*   --port dpdk:net_ring0 (DPDK's ring PMD: what is sent on the port comes back on it):
           `vireo driver net --mode pingpong` sends 20000 sequence-numbered, checksummed frames
           through the guest TX ring, DPDK's TX/RX burst and the guest RX ring; none may be lost,
           corrupted or duplicated (split and packed rings).
  pcap-tx  --port dpdk:net_pcap0,rx_pcap=EMPTY,tx_pcap=OUT: the driver transmits 500 frames of 128
           bytes; OUT must then hold exactly those 500 frames (read back with the pcap format).
  sigterm  the device exits 0 on SIGTERM after closing the ethdev.

Exit 77 (meson: skipped) with the reason when vireo was built without libdpdk or a PMD is missing.
    test_dpdk_port.py VIREO DPDK_FOUND(true|false)
"""
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time

VIREO = sys.argv[1]
failures = []


def skip(why):
    print(f"SKIPPED: {why}")
    sys.exit(77)


def check(ok, what):
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        failures.append(what)


def start_net(work, tag, devargs):
    sock = os.path.join(work, tag + ".sock")
    log = open(os.path.join(work, tag + ".log"), "w+")
    p = subprocess.Popen([VIREO, "net", "--socket-path", sock, "--port", "dpdk:" + devargs],
                         stdout=log, stderr=subprocess.STDOUT)
    for _ in range(500):  # EAL start-up takes a moment
        if os.path.exists(sock) or p.poll() is not None:
            break
        time.sleep(0.02)
    return p, sock, log


def stop(p, log, tag):
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    log.seek(0)
    text = log.read()
    check(rc == 0, f"{tag}: vireo net exited {rc} on SIGTERM" + ("" if rc == 0 else "\n" + text[-2000:]))
    return text


def driver(sock, *args):
    return subprocess.run([VIREO, "driver", "net", "--socket-path", sock, *args],
                          capture_output=True, text=True, timeout=120)


def pcap_frames(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return None
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    frames, off = [], 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        frames.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return frames


def main():
    if sys.argv[2] != "true":
        skip("vireo was built without libdpdk (install libdpdk-dev; meson option -Ddpdk=enabled)")
    with tempfile.TemporaryDirectory(prefix="vireo-dpdk-port-") as work:
        for layout in ("split", "packed"):
            tag = "ring-" + layout
            p, sock, log = start_net(work, tag, "net_ring0")
            if p.poll() is not None:
                log.seek(0)
                text = log.read()
                if "has no ethdev named" in text or "EAL initialisation failed" in text:
                    skip("DPDK cannot create net_ring0 here: " + text.strip().splitlines()[-1])
                check(False, f"{tag}: vireo net did not start:\n{text[-2000:]}")
                continue
            r = driver(sock, "--mode", "pingpong", "--count", "20000", "--layout", layout)
            check(r.returncode == 0 and "received 20000 lost 0 corrupt 0 duplicates 0" in r.stdout,
                  f"{tag}: {r.stdout.strip()} {r.stderr.strip()[-500:]}")
            stop(p, log, tag)

        empty = os.path.join(work, "empty.pcap")
        with open(empty, "wb") as f:  # a pcap header and no packet: nothing for the guest
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        out = os.path.join(work, "out.pcap")
        p, sock, log = start_net(work, "pcap", f"net_pcap0,rx_pcap={empty},tx_pcap={out}")
        if p.poll() is not None:
            log.seek(0)
            text = log.read()
            check(False, "pcap: vireo net did not start: " + text[-1000:])
        else:
            r = driver(sock, "--mode", "tx", "--count", "500", "--len", "128")
            check(r.returncode == 0, f"pcap-tx: driver: {r.stdout.strip()} {r.stderr.strip()[-500:]}")
            time.sleep(0.5)  # the busy-polling worker drains the guest's TX ring
            stop(p, log, "pcap")
            frames = pcap_frames(out) or []
            check(len(frames) == 500 and all(len(f) == 128 for f in frames),
                  f"pcap-tx: {out} holds {len(frames)} frames of lengths {sorted(set(len(f) for f in frames))} "
                  "(want 500 of 128 bytes)")
    if failures:
        print(f"{len(failures)} failed")
        sys.exit(1)
    print("PASSED")


if __name__ == "__main__":
    main()
