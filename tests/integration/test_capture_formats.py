"""Capture files as users have them: every supported link type and file
format, produced from the Ethernet reference captures by pcap_rewrap.py and
checked against tshark reading the same variant file."""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REWRAP, SpanfeedTestCase, capture, run_spanfeed  # noqa: E402
from tshark_oracle import frame_count, payload_sum  # noqa: E402

SOURCES = ["http/sw8.pcap", "dns/dns-tcp-multi.pcap", "mysql/171-mysql.pcap",
           "tunnels/vmware-gre-teb.pcap", "redis/redis.pcap"]
VARIANTS = {  # variant -> link_type spanfeed must report
    "sll": "linux_sll", "sll2": "linux_sll2", "null": "null", "loop": "loop",
    "raw": "raw", "be": "ethernet", "nsec": "ethernet", "pcapng": "ethernet",
}


class CaptureFormats(SpanfeedTestCase):
    def test_variants_match_tshark(self):
        with tempfile.TemporaryDirectory() as tmp:
            for src in SOURCES:
                _, eth_bytes = payload_sum(capture(src))
                for variant, link in VARIANTS.items():
                    with self.subTest(source=src, variant=variant):
                        out = os.path.join(tmp, f"{variant}-{os.path.basename(src)}")
                        subprocess.run([sys.executable, REWRAP, variant, capture(src), out],
                                       check=True)
                        ip_packets, ip_bytes = payload_sum(out)
                        self.assertGreater(ip_packets, 0)
                        if variant in ("sll", "sll2", "be", "nsec", "pcapng"):
                            # same frames, other framing: same payload
                            self.assertEqual(ip_bytes, eth_bytes)
                        r = run_spanfeed(["--job", "payload-sum", "--pcap", out, "-w", "2", "-q"])
                        self.assertEqual(r.rc, 0, r.stderr)
                        s = r.summary
                        self.assertEqual(s["link_type"], link)
                        self.assertEqual(s["rx_packets"], frame_count(out))
                        self.assertEqual(s["payload_bytes"], ip_bytes)
                        self.assertEqual(s["ledger"]["rx"]["delivered"], ip_packets)
                        self.assertLedgerBalanced(s)

    def test_unsupported_link_type_is_named(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "wifi.pcap")
            subprocess.run([sys.executable, REWRAP, "dlt=105", capture("http/httpv1.pcap"), out],
                           check=True)
            r = run_spanfeed(["--pcap", out], want_summary=False)
            self.assertEqual(r.rc, 2)
            self.assertIn(out, r.stderr)
            self.assertIn("link type IEEE802_11 (105) is not supported", r.stderr)

    def test_not_a_capture_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            bogus = os.path.join(tmp, "notes.txt")
            with open(bogus, "w") as f:
                f.write("this is not a capture\n" * 10)
            r = run_spanfeed(["--pcap", bogus], want_summary=False)
            self.assertEqual(r.rc, 2)
            self.assertIn(f"'{bogus}' is not a capture file", r.stderr)

    def test_swapped_header_file_is_read_whole(self):
        r = run_spanfeed(["--job", "payload-sum", "--pcap", capture("memcached/memcached-userdata.pcap"), "-q"])
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertIn("wrong byte order", r.stderr)
        self.assertEqual(r.summary["rx_packets"], 20421)
        self.assertLedgerBalanced(r.summary)


if __name__ == "__main__":
    unittest.main(verbosity=2)
