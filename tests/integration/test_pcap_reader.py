"""The two ways to read --pcap give the same run: the mapped reader (records
attached to mbufs, no copy; the default) and net_pcap (libpcap, one copy per
packet) deliver the same packets, timestamps and records for classic pcap,
nanosecond pcap and pcapng; the mapped reader replays a file with more
records than its mbuf pool (--infinite sizes nothing from the file), and
net_pcap's replay from memory sizes the EAL memory for the whole file."""
import os
import struct
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

    def test_net_pcap_infinite_replay_sizes_its_own_memory(self):
        # net_pcap holds the whole file in mbufs: 70,000 full-size frames need a pool of
        # 131,071 mbufs of 2.4 KiB, and without hugepages DPDK gives each its own 4 KiB page
        # (an mbuf never crosses one): the EAL memory must be sized for pages, not bytes.
        frames = 70000
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "full-frames.pcap")
            eth = bytes.fromhex("020000000002020000000001") + b"\x08\x00"
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 1500, 0, 0, 64, 17, 0,
                             bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
            udp = struct.pack("!HHHH", 40000, 9999, 1480, 0)
            frame = eth + ip + udp + bytes(1472)
            record = struct.pack("<IIII", 1, 0, len(frame), len(frame)) + frame
            with open(path, "wb") as f:
                f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
                for _ in range(frames):
                    f.write(record)
            r = run_spanfeed(["--job", "payload-sum", "--pcap", path, "--pcap-reader", "net_pcap",
                              "--infinite", "--duration", "1", "-w", "1", "-q"])
            self.assertEqual(r.rc, 0, r.stderr)
            s = r.summary
            self.assertEqual(s["mode"], "live")
            self.assertGreater(s["rx_packets"], frames)  # it went round at least once
            self.assertLedgerBalanced(s)


if __name__ == "__main__":
    unittest.main(verbosity=2)
