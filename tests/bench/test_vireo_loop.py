"""vireo bench loopback --peer vireo: the one-core loop of Vireo's net driver and net back-end.

Each case runs the real command for a fraction of a second and checks the JSON line it prints:
the layout and EVENT_IDX it asked for were negotiated, frames moved in both directions, and the
notification counts are those of the mode (no kicks or calls when both ends poll; fewer than
0.01 notifications per packet with EVENT_IDX when the device runs on kicks and keeps polling a
kicked queue while it has work). Throughput figures are not checked: that is what benchmarks do.
"""
import json
import os
import subprocess
import sys
import unittest

VIREO = os.environ["VIREO"]


def loop(layout, event_idx, busy_poll, length=64):
    out = subprocess.run(
        [VIREO, "bench", "loopback", "--layout", layout, "--event-idx", event_idx, "--busy-poll", busy_poll,
         "--len", str(length), "--seconds", "0.4", "--json"],
        capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError("vireo bench loopback failed (%d): %s" % (out.returncode, out.stderr[-2000:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


class VireoLoop(unittest.TestCase):
    def check_moves_both_ways(self, layout, event_idx, busy_poll, length=64):
        r = loop(layout, event_idx, busy_poll, length)
        self.assertEqual(r["impl"], "vireo")
        self.assertEqual(r["layout"], layout, "the ring layout asked for was not negotiated")
        self.assertEqual(r["event_idx"], event_idx == "on", "EVENT_IDX was not negotiated as asked")
        self.assertEqual(r["len"], length)
        self.assertGreater(r["pps_driver_to_device"], 0, "no frame went from the driver to the device")
        self.assertGreater(r["pps_device_to_driver"], 0, "no frame went from the device to the driver")
        self.assertGreater(r["packets"], 0)
        return r

    def test_every_layout_and_event_idx_moves_frames_both_ways(self):
        for layout in ("split", "packed"):
            for ev in ("on", "off"):
                with self.subTest(layout=layout, event_idx=ev):
                    self.check_moves_both_ways(layout, ev, "on")

    def test_full_size_frames(self):
        for layout in ("split", "packed"):
            with self.subTest(layout=layout):
                self.check_moves_both_ways(layout, "on", "on", 1518)

    def test_busy_poll_sends_almost_no_notifications(self):
        for layout in ("split", "packed"):
            with self.subTest(layout=layout):
                r = self.check_moves_both_ways(layout, "on", "on")
                self.assertLess(r["kicks_per_packet"] + r["calls_per_packet"], 0.01,
                                "both ends poll, yet they notified each other")

    def test_kicked_device_under_load_needs_under_one_notification_per_100_packets(self):
        for layout in ("split", "packed"):
            with self.subTest(layout=layout):
                r = self.check_moves_both_ways(layout, "on", "off")
                self.assertLess(r["kicks_per_packet"], 0.01, "the driver kicked a device that was still polling")
                self.assertLess(r["calls_per_packet"], 0.01, "the device called a driver that was still polling")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
