"""Capture filter (--filter, libpcap -> eBPF on the RX lcores): the packets
spanfeed keeps are exactly the packets tcpdump selects from the same file
with the same expression, on several captures and link types; the equivalent
tshark display filter agrees on plain captures; the rest is counted as
filtered and the ledger balances; a bad expression is a usage error."""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REWRAP, SpanfeedTestCase, capture, run_spanfeed  # noqa: E402
from tshark_oracle import frame_count  # noqa: E402

CASES = [  # capture, tcpdump expression, equivalent tshark display filter (or None)
    ("mysql/171-mysql.pcap", "tcp port 41204", "tcp.port == 41204"),
    ("dns/dns-tcp-multi.pcap", "tcp port 3306 or port 53", "tcp.port == 3306 || tcp.port == 53 || udp.port == 53"),
    ("mysql/mysql-error.pcap", "tcp[tcpflags] & tcp-syn != 0", "tcp.flags.syn == 1"),
    ("http/http-mixed.pcap", "greater 1000", "frame.len >= 1000"),
    ("tunnels/vmware-gre-teb.pcap", "proto gre", None),  # tshark -Y also matches inner headers
    ("mongo/mongo.pcap", "dst port 27017 and len > 100", None),
]


def tcpdump_count(path, expr):
    out = subprocess.run(["tcpdump", "-n", "-r", path, expr], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return len(out.stdout.splitlines())


def tshark_count(path, display_filter):
    out = subprocess.run(["tshark", "-n", "-r", path, "-Y", display_filter], capture_output=True,
                         text=True, check=True)
    return len(out.stdout.splitlines())


class CaptureFilter(SpanfeedTestCase):
    def check(self, path, expr):
        want = tcpdump_count(path, expr)
        total = frame_count(path)
        r = run_spanfeed(["--job", "payload-sum", "--pcap", path, "--filter", expr, "-w", "2", "-q"])
        self.assertEqual(r.rc, 0, r.stderr)
        rx = r.summary["ledger"]["rx"]
        kept = rx["received"] - rx["filtered"]
        self.assertEqual(rx["received"], total)
        self.assertEqual(kept, want, f"{path}: {expr}")
        self.assertLedgerBalanced(r.summary)
        return want

    def test_same_packets_as_tcpdump_and_tshark(self):
        for rel, expr, display in CASES:
            with self.subTest(capture=rel, filter=expr):
                kept = self.check(capture(rel), expr)
                self.assertGreater(kept, 0)
                if display:
                    self.assertEqual(kept, tshark_count(capture(rel), display))

    def test_other_link_types(self):
        with tempfile.TemporaryDirectory() as tmp:
            for variant in ("sll", "raw", "null"):
                with self.subTest(variant=variant):
                    out = os.path.join(tmp, variant + ".pcap")
                    subprocess.run([sys.executable, REWRAP, variant, capture("mysql/171-mysql.pcap"),
                                    out], check=True)
                    self.assertEqual(self.check(out, "tcp port 41204"), 184)

    def test_filter_from_config_and_bad_expression(self):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = os.path.join(tmp, "c.yaml")
            with open(cfg, "w") as f:
                f.write("capture:\n  filter: 'tcp port 41204'\n")
            r = run_spanfeed(["--job", "payload-sum", "--pcap", capture("mysql/171-mysql.pcap"), "-c", cfg, "-q"])
            self.assertEqual(r.rc, 0, r.stderr)
            self.assertEqual(r.summary["ledger"]["rx"]["filtered"], 1040 - 184)
        r = run_spanfeed(["--pcap", capture("mysql/171-mysql.pcap"), "--filter", "tcp portt 1"],
                         want_summary=False)
        self.assertEqual(r.rc, 2)
        self.assertIn("filter 'tcp portt 1': can't parse filter expression", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
