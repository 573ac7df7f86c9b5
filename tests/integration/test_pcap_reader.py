"""The two ways to read --pcap give the same run: the mapped reader (records
attached to mbufs, no copy; the default) and net_pcap (libpcap, one copy per
packet) deliver the same packets, timestamps and records for classic pcap,
nanosecond pcap and pcapng; the mapped reader replays a file with more
records than its mbuf pool (--infinite sizes nothing from the file)."""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REWRAP, SpanfeedTestCase, capture, run_spanfeed  # noqa: E402

SOURCES = ["http/sw8.pcap", "mysql/171-mysql.pcap"]
VARIANTS = ["nsec", "pcapng", "be"]
BIG = "memcached/memcached-userdata.pcap"  # 20421 frames
BIG_FRAMES = 20421


class PcapReader(SpanfeedTestCase):
    def records(self, pcap, reader, tmp):
        out = os.path.join(tmp, f"{reader}.jsonl")
        r = run_spanfeed(["--pcap", pcap, "--pcap-reader", reader, "-w", "2", "-q",
                          "--output", f"jsonl:{out}"])
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertLedgerBalanced(r.summary)
        with open(out) as f:
            lines = sorted(f.read().splitlines())
        return r.summary, lines

    def test_mmap_and_net_pcap_give_the_same_records(self):
        with tempfile.TemporaryDirectory() as tmp:
            files = [capture(s) for s in SOURCES]
            for src in SOURCES:
                for v in VARIANTS:
                    out = os.path.join(tmp, f"{v}-{os.path.basename(src)}")
                    subprocess.run([sys.executable, REWRAP, v, capture(src), out], check=True)
                    files.append(out)
            for f in files:
                with self.subTest(capture=os.path.basename(f)):
                    sm, rm = self.records(f, "mmap", tmp)
                    sn, rn = self.records(f, "net_pcap", tmp)
                    self.assertGreater(len(rm), 0)
                    self.assertEqual(rm, rn)
                    self.assertEqual(sm["rx_packets"], sn["rx_packets"])
                    self.assertEqual(sm["nics"][0]["ibytes"], sn["nics"][0]["ibytes"])
                    self.assertTrue(sm["nics"][0]["name"].startswith("file:"))

    def test_infinite_replay_needs_no_pool_for_the_file(self):
        # 4095 mbufs for a 20421-record file: net_pcap would need them all.
        r = run_spanfeed(["--job", "payload-sum", "--pcap", capture(BIG), "--infinite",
                          "--duration", "1.5", "--mempool-size", "4095", "-w", "1", "-q"])
        self.assertEqual(r.rc, 0, r.stderr)
        s = r.summary
        self.assertEqual(s["mode"], "live")
        self.assertGreater(s["rx_packets"], BIG_FRAMES)  # it went round at least once
        self.assertLedgerBalanced(s)


if __name__ == "__main__":
    unittest.main(verbosity=2)
