"""Live capture through net_af_packet: a veth pair whose far end sits in a
network namespace this test creates; the test replays a bundled capture's
frames into the far end over an AF_PACKET socket (what tcpreplay does) while
spanfeed captures the near end in live mode. Then SIGINT: spanfeed drains,
reports and exits 0, and every replayed frame is in its ledger with the same
payload sum tshark computes for the capture. Needs root (CI runs as root)."""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import SPANFEED, SpanfeedTestCase, capture, scaled  # noqa: E402
from tshark_oracle import payload_sum  # noqa: E402

NS = "spanfeed-test"
NEAR, FAR = "sfv0", "sfv1"


def sh(*args, check=True):
    return subprocess.run(list(args), check=check, capture_output=True, text=True)


def read_frames(path):
    with open(path, "rb") as f:
        data = f.read()
    e = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    off, frames = 24, []
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(e + "IIII", data[off:off + 16])
        frames.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return frames


@unittest.skipUnless(os.geteuid() == 0, "needs root for network namespaces")
class LiveAfPacket(SpanfeedTestCase):
    def setUp(self):
        sh("ip", "netns", "del", NS, check=False)
        sh("ip", "link", "del", NEAR, check=False)
        sh("ip", "netns", "add", NS)
        sh("ip", "link", "add", NEAR, "type", "veth", "peer", "name", FAR)
        sh("ip", "link", "set", FAR, "netns", NS)
        # no IPv6 on either end: no router solicitations or MLD in the capture
        sh("sysctl", "-qw", f"net.ipv6.conf.{NEAR}.disable_ipv6=1")
        sh("ip", "netns", "exec", NS, "sysctl", "-qw", f"net.ipv6.conf.{FAR}.disable_ipv6=1")
        sh("ip", "link", "set", NEAR, "up")
        sh("ip", "netns", "exec", NS, "ip", "link", "set", FAR, "up")

    def tearDown(self):
        sh("ip", "netns", "del", NS, check=False)
        sh("ip", "link", "del", NEAR, check=False)

    def test_replayed_frames_all_accounted(self):
        pcap = capture("mysql/171-mysql.pcap")
        frames = read_frames(pcap)
        _, ip_bytes = payload_sum(pcap)
        with tempfile.TemporaryDirectory() as tmp:
            summary = os.path.join(tmp, "s.json")
            p = subprocess.Popen([SPANFEED, "--job", "payload-sum", "--metrics", "off", "--iface", NEAR, "-w", "2", "--summary-json", summary],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(scaled(3))  # EAL up and RX polling
            self.assertIsNone(p.poll(), "spanfeed exited early")
            sender = (
                "import socket,sys,struct,time\n"
                "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n"
                f"s.bind(('{FAR}',0))\n"
                "data=sys.stdin.buffer.read()\n"
                "off=0\n"
                "while off<len(data):\n"
                "  n=struct.unpack('<I',data[off:off+4])[0]; s.send(data[off+4:off+4+n]); off+=4+n\n"
                f"  time.sleep({scaled(0.0002)})\n")  # a slower build polls slower: send slower
            blob = b"".join(struct.pack("<I", len(f)) + f for f in frames)
            subprocess.run(["ip", "netns", "exec", NS, sys.executable, "-c", sender],
                           input=blob, check=True)
            time.sleep(scaled(1))
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=scaled(30))
            self.assertEqual(p.returncode, 0, err)
            with open(summary) as f:
                s = json.load(f)
        self.assertEqual(s["mode"], "live")
        self.assertTrue(s["interrupted"])
        self.assertLedgerBalanced(s)
        nic = s["ledger"]["nic"]
        self.assertEqual(nic["imissed"], 0)
        self.assertEqual(s["rx_packets"], len(frames))
        self.assertEqual(s["ledger"]["rx"]["delivered"], len(frames))
        self.assertEqual(s["payload_bytes"], ip_bytes)


    def test_tcpreplay_records_flushed_on_sigterm(self):
        # tcpreplay into the far end, the records job on the near end, then
        # SIGTERM: every record the capture holds is flushed to the output.
        pcap = capture("mysql/171-mysql.pcap")
        golden = os.path.join(os.path.dirname(os.path.dirname(pcap)), "..", "golden", "mysql",
                              "171-mysql.jsonl")
        with open(golden) as f:
            want = sorted((r["request"].get("command"), r["request"].get("query"), r["status"])
                          for r in map(json.loads, f))
        with tempfile.TemporaryDirectory() as tmp:
            cfg = os.path.join(tmp, "c.yaml")
            with open(cfg, "w") as f:
                f.write("decode:\n  ports:\n    mysql: [3306, 20130]\n")
            out = os.path.join(tmp, "records.jsonl")
            summary = os.path.join(tmp, "s.json")
            p = subprocess.Popen([SPANFEED, "--metrics", "off", "--iface", NEAR, "-w", "2", "-c", cfg,
                                  "--job", "records", "--output", f"jsonl:{out}",
                                  "--summary-json", summary],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(scaled(3))
            self.assertIsNone(p.poll(), "spanfeed exited early")
            pps = str(int(3000 / scaled(1)))  # a slower build polls slower: send slower
            r = subprocess.run(["ip", "netns", "exec", NS, "tcpreplay", "-q", "-i", FAR, "--pps", pps,
                                pcap], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            time.sleep(scaled(1))
            p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=scaled(60))
            self.assertEqual(p.returncode, 0, err)
            with open(summary) as f:
                s = json.load(f)
            with open(out) as f:
                got = [json.loads(l) for l in f]
        self.assertLedgerBalanced(s)
        self.assertEqual(s["rx_packets"], 1040)
        rec = s["ledger"]["records"]
        self.assertEqual(rec["emitted"], len(want))
        self.assertEqual(rec["sinks"][0]["delivered"], len(want))
        self.assertEqual(len(got), len(want))  # flushed before exit
        self.assertEqual(sorted((r["request"].get("command"), r["request"].get("query"), r["status"])
                                for r in got), want)


if __name__ == "__main__":
    unittest.main(verbosity=2)
