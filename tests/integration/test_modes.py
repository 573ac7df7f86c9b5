"""Run modes and shutdown: live mode never blocks RX (a full ring is a
counted drop and the ledger still balances); SIGINT/SIGTERM stop RX, drain
the rings, print the summary and exit 0; --duration ends a run."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import SPANFEED, SpanfeedTestCase, capture, run_spanfeed, scaled  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

BIG = "memcached/memcached-userdata.pcap"  # 20421 frames
BIG_FRAMES = 20421


class Modes(SpanfeedTestCase):
    def test_live_mode_small_rings_account_for_every_packet(self):
        r = run_spanfeed(["--job", "payload-sum", "--pcap", capture(BIG), "--mode", "live", "--ring-size", "32",
                          "--burst", "32", "-w", "4", "-q"])
        self.assertEqual(r.rc, 0, r.stderr)
        s = r.summary
        self.assertEqual(s["mode"], "live")
        self.assertLedgerBalanced(s)
        led = s["ledger"]
        # net_pcap loses a packet it read when the pool is empty: the NIC
        # counters must say so, so that file = received + rx_nombuf + ierrors.
        nic = led["nic"]
        self.assertEqual(BIG_FRAMES, nic["ipackets"] + nic["rx_nombuf"] + nic["ierrors"], led)
        rx = led["rx"]
        self.assertEqual(rx["received"], rx["delivered"] + rx["ring_full"] + rx["non_ip"] +
                         rx["truncated"] + rx["malformed"])

    def _run_and_signal(self, sig, extra):
        with tempfile.TemporaryDirectory() as tmp:
            summary = os.path.join(tmp, "s.json")
            p = subprocess.Popen([SPANFEED, "--job", "payload-sum", "--metrics", "off", "--pcap", capture(BIG), "--summary-json", summary] +
                                 extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(scaled(2.0))  # an infinite replay: two seconds of it (a slow build replays slower)
            p.send_signal(sig)
            out, err = p.communicate(timeout=scaled(30))
            self.assertEqual(p.returncode, 0, err)
            with open(summary) as f:
                return out, json.load(f)

    def test_sigint_on_infinite_replay_drains_and_reports(self):
        out, s = self._run_and_signal(signal.SIGINT, ["--infinite", "-w", "2"])
        self.assertTrue(s["interrupted"])
        self.assertEqual(s["mode"], "live")
        self.assertGreater(s["rx_packets"], BIG_FRAMES)  # it really replayed
        self.assertLedgerBalanced(s)
        self.assertIn("ledger balanced", out)

    def test_sigterm_in_offline_mode_is_clean(self):
        out, s = self._run_and_signal(signal.SIGTERM, ["--infinite", "--mode", "offline", "-w", "3"])
        self.assertTrue(s["interrupted"])
        self.assertEqual(s["ledger"]["rx"]["ring_full"], 0)  # offline never drops
        self.assertLedgerBalanced(s)

    def test_raw_eal_devices_two_ports_two_rx_lcores(self):
        # The --eal path a PCI NIC takes: devices come from raw EAL arguments,
        # not from --pcap. Two net_pcap ports, each polled by its own RX lcore.
        a, b = capture("mysql/171-mysql.pcap"), capture("redis/redis-debug.pcap")
        from tshark_oracle import payload_sum
        (_, bytes_a), (_, bytes_b) = payload_sum(a), payload_sum(b)
        r = run_spanfeed(["--job", "payload-sum", "--eal", f"--vdev net_pcap0,rx_pcap={a} --vdev net_pcap1,rx_pcap={b}",
                          "--rx-lcores", "2", "-w", "2", "--duration", "2", "-q"])
        self.assertEqual(r.rc, 0, r.stderr)
        s = r.summary
        self.assertEqual(s["mode"], "live")
        self.assertEqual(len(s["nics"]), 2)
        self.assertEqual(len(s["rx_lcores"]), 2)
        self.assertEqual(sorted(n["ipackets"] for n in s["nics"]), [10, 1040])
        self.assertEqual(s["rx_packets"], 1050)
        self.assertEqual(s["payload_bytes"], bytes_a + bytes_b)
        self.assertEqual(sorted(x["received"] for x in s["rx_lcores"]), [10, 1040])
        self.assertLedgerBalanced(s)

    def test_duration_ends_run(self):
        r = run_spanfeed(["--job", "payload-sum", "--pcap", capture(BIG), "--infinite", "--duration", "1", "-w", "2", "-q"])
        self.assertEqual(r.rc, 0, r.stderr)
        s = r.summary
        self.assertTrue(s["interrupted"])
        self.assertGreaterEqual(s["elapsed_s"], 1.0)
        self.assertLess(s["elapsed_s"], scaled(10.0))
        self.assertLedgerBalanced(s)


if __name__ == "__main__":
    unittest.main(verbosity=2)
