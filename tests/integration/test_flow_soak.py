"""Flow table and reassembly under a SYN flood, through the whole pipeline.

A generated capture: one real TCP connection with data, a UDP flow that
goes quiet, then 20,000 SYNs from distinct sources (no payload), and one
more packet of the real connection 40 s later. With a 1,024-flow table per worker the flood fills the table and
the rest is refused and counted; the real connection's bytes still arrive;
memory stays within the configured caps; the quiet UDP flow is closed by its
30 s idle timeout measured in capture time."""
import json
import os
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import SpanfeedTestCase, run_spanfeed  # noqa: E402

FLOOD = 20000
CAPACITY = 1024


def ip_checksum(hdr):
    s = sum(struct.unpack("!10H", hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(src, dst, proto, l4):
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, proto, 0,
                      bytes(src), bytes(dst))
    iph = iph[:10] + struct.pack("!H", ip_checksum(iph)) + iph[12:]
    return b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00" + iph + l4


def tcp(sp, dp, seq, ack, flags, payload=b""):
    return struct.pack("!HHIIBBHHH", sp, dp, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload


def udp(sp, dp, payload):
    return struct.pack("!HHHH", sp, dp, 8 + len(payload), 0) + payload


def write_pcap(path, records):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts_us, fr in records:
            f.write(struct.pack("<IIII", ts_us // 1_000_000, ts_us % 1_000_000, len(fr), len(fr)))
            f.write(fr)


def build(path):
    cli, srv = [10, 0, 0, 1], [10, 0, 0, 2]
    t = 1_700_000_000 * 1_000_000
    recs = []
    # the real connection: handshake, request, response
    recs += [(t, frame(cli, srv, 6, tcp(40000, 80, 1000, 0, 0x02))),
             (t + 10, frame(srv, cli, 6, tcp(80, 40000, 5000, 1001, 0x12))),
             (t + 20, frame(cli, srv, 6, tcp(40000, 80, 1001, 5001, 0x10))),
             (t + 30, frame(cli, srv, 6, tcp(40000, 80, 1001, 5001, 0x18, b"GET / HTTP/1.1\r\n\r\n"))),
             (t + 40, frame(cli, [10, 0, 0, 53], 17, udp(5353, 53, b"q" * 20)))]
    # the flood: 20,000 SYNs from distinct sources, 5 us apart
    for i in range(FLOOD):
        src = [172, 16, (i >> 8) & 0xFF, i & 0xFF]
        recs.append((t + 100 + 5 * i, frame(src, srv, 6, tcp(1024 + i % 60000, 80, i, 0, 0x02))))
    t2 = t + 100 + 5 * FLOOD + 100
    recs.append((t2, frame(srv, cli, 6, tcp(80, 40000, 5001, 1019, 0x18, b"HTTP/1.1 200 OK\r\n\r\n"))))
    # silence for 40 s of capture time, then one more packet
    recs.append((t2 + 40_000_000, frame(cli, srv, 6, tcp(40000, 80, 1019, 5020, 0x10))))
    write_pcap(path, recs)
    return len(recs)


class FlowSoak(SpanfeedTestCase):
    def test_syn_flood_refused_real_connection_survives(self):
        with tempfile.TemporaryDirectory() as tmp:
            pcap = os.path.join(tmp, "flood.pcap")
            n = build(pcap)
            cfg = os.path.join(tmp, "cfg.yaml")
            with open(cfg, "w") as f:
                f.write(f"flow:\n  capacity: {CAPACITY}\nreassembly:\n  memory_mb: 1\n")
            out = os.path.join(tmp, "flows.jsonl")
            r = run_spanfeed(["--pcap", pcap, "-c", cfg, "--job", "flows", "--flows-out", out,
                              "-w", "1", "-q"])
            self.assertEqual(r.rc, 0, r.stderr)
            with open(out) as f:
                flows = [json.loads(l) for l in f]
        s = r.summary
        self.assertEqual(s["rx_packets"], n)
        self.assertLedgerBalanced(s)
        ra = s["workers"][0]["reassembly"]
        self.assertEqual(ra["segments"], n)
        self.assertEqual(ra["segments"], sum(ra["outcomes"].values()))
        # the table held CAPACITY flows: the real one, the UDP one and the first
        # 1,022 SYNs; nothing was idle long enough to evict, so the rest was refused
        admitted_syns = CAPACITY - 2
        self.assertEqual(ra["table"]["active_high_water"], CAPACITY)
        self.assertEqual(ra["table"]["refused"], FLOOD - admitted_syns)
        self.assertEqual(ra["outcomes"]["flow_refused"], FLOOD - admitted_syns)
        self.assertEqual(ra["table"]["evicted_live"], 0)
        self.assertEqual(ra["flows_created"], CAPACITY)
        self.assertEqual(ra["flows_created"], sum(ra["closed"].values()))
        # 40 s later in capture time: the half-open SYNs (20 s) and the quiet UDP
        # flow (30 s) have timed out; the real connection (300 s) is shut down at the end
        self.assertEqual(ra["closed"]["idle_timeout"], admitted_syns + 1)
        self.assertEqual(ra["closed"]["shutdown"], 1)
        self.assertEqual([f["close"] for f in flows if f["proto"] == "udp"], ["idle_timeout"])
        # memory within the cap: 1 MiB of 2 KiB chunks
        self.assertLessEqual(ra["chunks_high_water"], 512)
        real = [f for f in flows if f["client"]["port"] == 40000]
        self.assertEqual(len(real), 1)
        self.assertEqual(real[0]["c2s"]["bytes"], 18)
        self.assertEqual(real[0]["s2c"]["bytes"], 19)
        self.assertEqual(real[0]["c2s"]["gaps"] + real[0]["s2c"]["gaps"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
