"""payload-sum on every bundled capture at 1, 2 and 4 workers equals what
tshark computes for the same file; the ledger balances in every run."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import SpanfeedTestCase, all_captures, run_spanfeed  # noqa: E402
from tshark_oracle import frame_count, payload_sum  # noqa: E402


class PayloadSumVsTshark(SpanfeedTestCase):
    def test_every_capture_every_worker_count(self):
        caps = all_captures()
        self.assertGreaterEqual(len(caps), 70, "bundled captures missing")
        for path in caps:
            ip_packets, ip_bytes = payload_sum(path)
            frames = frame_count(path)
            for workers in (1, 2, 4):
                with self.subTest(capture=os.path.relpath(path), workers=workers):
                    r = run_spanfeed(["--job", "payload-sum", "--pcap", path, "--workers", str(workers), "-q"])
                    self.assertEqual(r.rc, 0, r.stderr)
                    s = r.summary
                    self.assertEqual(s["mode"], "offline")
                    self.assertEqual(s["rx_packets"], frames)
                    self.assertEqual(s["ledger"]["file_packets"], frames)
                    self.assertEqual(s["payload_bytes"], ip_bytes)
                    self.assertEqual(s["ledger"]["rx"]["delivered"], ip_packets)
                    self.assertEqual(s["ledger"]["rx"]["ring_full"], 0)
                    self.assertEqual(len(s["workers"]), workers)
                    self.assertEqual(sum(w["payload_bytes"] for w in s["workers"]), ip_bytes)
                    self.assertEqual(sum(w["packets"] for w in s["workers"]), ip_packets)
                    self.assertLedgerBalanced(s)

    def test_flows_spread_over_workers(self):
        # 171-mysql holds many connections; with 4 workers more than one
        # worker must get traffic (the hash picks workers, it is not constant).
        r = run_spanfeed(["--job", "payload-sum", "--pcap", os.path.join(os.path.dirname(all_captures()[0]), "..",
                                                 "mysql", "171-mysql.pcap"), "-w", "4", "-q"])
        self.assertEqual(r.rc, 0, r.stderr)
        busy = [w for w in r.summary["workers"] if w["packets"] > 0]
        self.assertGreaterEqual(len(busy), 2, r.summary["workers"])

    def test_human_summary_lists_workers_and_total(self):
        path = all_captures()[0]
        _, ip_bytes = payload_sum(path)
        r = run_spanfeed(["--job", "payload-sum", "--pcap", path, "-w", "2"], want_summary=False)
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(r.stdout.count("worker lcore"), 2, r.stdout)
        total = [l for l in r.stdout.splitlines() if l.strip().startswith("total")]
        self.assertEqual(len(total), 1, r.stdout)
        self.assertTrue(total[0].strip().endswith(str(ip_bytes)), total[0])
        self.assertIn("ledger balanced", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
