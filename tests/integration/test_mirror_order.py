"""What a mirror port delivers, through the whole pipeline: for one golden
capture per protocol (tests/data/golden; MIRROR_ALL=1: every one), (a) every frame twice (mirror_gen.py doubled: the
copy 1 us later, TTL one lower) gives exactly the golden records, with exactly
half the packets counted as `duplicate`; (b) consecutive TCP data segments swapped in pairs, across
directions and connections (mirror_gen.py swapped, each packet keeping its
own timestamp) gives exactly the golden records with no hold given up.
Records are compared whole but for the per-run `id`: latency and times come
from packet timestamps, which the generator keeps. Crafted cases check the
hold's time and byte bounds, the retransmission outside the dedup window,
and a late SYN after a close (hostile_gen.py's packet layer)."""
import gzip
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


# One golden capture per protocol, with several connections where there are
# (pcapng and gzip-compressed captures included: mirror_gen reads pcapng).
ONE_PER_PROTOCOL = {"dns-tcp-multi.pcap", "http-mixed.pcap", "memcached.pcap", "mongo.pcap",
                    "171-mysql.pcap", "pgsql-all.pcap", "redis-debug.pcap", "smtp.pcap",
                    "corpus.pcap",  # TLS: 37 connections
                    "h2c.pcap", "grpc.pcap", "corpus-slice.pcap",  # HTTP/2, gRPC, Kafka
                    "amqp-errors.pcap", "amqp-start.pcap", "mqtt-mixed.pcap",
                    "memcached-binary.pcap", "memcached-udp.pcap"}


# Captures that hold mirror copies of their own (duplicate outcomes without doubling).
HAS_COPIES = {"http2/h2c.pcap": 9}


def capture_file(pcap, tmp):
    """The capture itself, or NAME.pcap.gz inflated into tmp (as the decoder goldens keep some)."""
    if os.path.exists(pcap) or not os.path.exists(pcap + ".gz"):
        return pcap
    out = os.path.join(tmp, os.path.basename(pcap))
    with gzip.open(pcap + ".gz", "rb") as src, open(out, "wb") as dst:
        dst.write(src.read())
    return out


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
        # The golden captures run with the shipped ACK hold (reassembly.ack_hold_ms
        # default 10); the crafted case states its 10 ms, which its timings assume.
        with open(cls.cfg, "w") as f:
            f.write(PORTS_CONFIG)
        with open(cls.cfg_novlan, "w") as f:
            f.write(PORTS_CONFIG + "flow:\n  hash_vlan: false\n")
        cls.cfg_hold10 = os.path.join(cls.tmp.name, "hold10.yaml")
        with open(cls.cfg_hold10, "w") as f:
            f.write(PORTS_CONFIG + "reassembly:\n  ack_hold_ms: 10\n")

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
        files = [(g, p) for g, p in golden_files() if os.path.exists(p) or os.path.exists(p + ".gz")]
        self.assertGreaterEqual(len(files), 70)
        if not os.environ.get("MIRROR_ALL"):  # one capture per protocol, the richest (MIRROR_ALL=1: all)
            files = [(g, p) for g, p in files if os.path.basename(p) in ONE_PER_PROTOCOL]
            self.assertEqual(len(files), len(ONE_PER_PROTOCOL))
        held = 0
        for golden, pcap in files:
            want = canon(load(golden))
            name = os.path.relpath(pcap, DATA)
            cfg = self.cfg_novlan if os.path.basename(pcap) in NO_VLAN else self.cfg
            endian, header, linktype, nanos, pkts = mirror_gen.read_pcap(capture_file(pcap, self.tmp.name))
            # Copies the capture itself holds (h2c.pcap has 9) count on top of the doubled ones.
            own = 0
            if name in HAS_COPIES:
                got, s = self.run_records(capture_file(pcap, self.tmp.name), cfg)
                self.assertEqual(canon(got), want)
                own = outcomes(s)["duplicate"]
                self.assertEqual(own, HAS_COPIES[name])
            with self.subTest(capture=name, variant="doubled"):
                path = os.path.join(self.tmp.name, "doubled.pcap")
                mirror_gen.write_pcap(path, endian, header, mirror_gen.doubled(pkts, linktype, nanos))
                got, s = self.run_records(path, cfg)
                self.assertEqual(canon(got), want)
                # Every packet a worker got came twice: exactly half are copies.
                received = s["ledger"]["workers"]["received"]
                self.assertEqual(outcomes(s)["duplicate"] * 2, received + 2 * own)
            with self.subTest(capture=name, variant="swapped"):
                path = os.path.join(self.tmp.name, "swapped.pcap")
                out, pairs = mirror_gen.swapped(pkts, linktype)
                mirror_gen.write_pcap(path, endian, header, out)
                got, s = self.run_records(path, cfg)
                self.assertEqual(canon(got), want)
                self.assertEqual(reassembly_counter(s, "ack_hold_timeouts"), 0)
                self.assertEqual(reassembly_counter(s, "ack_hold_overflows"), 0)
                self.assertEqual(outcomes(s)["duplicate"], own)
                held += reassembly_counter(s, "ack_held_segments")
        self.assertGreater(held, 0)

    def test_dns_answers_captured_before_their_queries(self):
        """A mirror merging a port's two directions can deliver a fast resolver's answer before the query
        it answers. Through the pipeline (two workers): the answer waits up to 10 ms for its query, and
        the pair is one record flagged reordered, without a latency; an answer no query follows in time is
        unmatched, and a query that comes too late is a timeout of its own."""
        cap = hg.Capture()
        cli, srv = hg.CLIENT_IP, hg.SERVER_IP

        def dgram(cport, payload, from_client, dt):
            s, d = (cli, srv) if from_client else (srv, cli)
            sp, dp = (cport, 53) if from_client else (53, cport)
            cap.add(hg.eth(hg.ipv4(s, d, 17, hg.udp_dgram(s, d, sp, dp, payload))), dt=dt)

        q = {i: hg.dns_query(i, hg.dns_name(f"h{i}.example")) for i in (1, 2, 3, 4)}
        a = {i: hg.dns_response(i, hg.dns_name(f"h{i}.example"), [(b"\xc0\x0c", 1, bytes([10, 0, 0, i]))])
             for i in (1, 2, 3, 4)}
        dgram(40101, a[1], False, 0.001)   # answer first, its query 20 us later
        dgram(40101, q[1], True, 0.00002)
        dgram(40102, q[2], True, 0.001)    # in order, 1 ms apart
        dgram(40102, a[2], False, 0.001)
        dgram(40103, a[3], False, 0.001)   # an answer alone
        dgram(40104, a[4], False, 0.001)   # its query 20 ms later: too late to be paired
        dgram(40104, q[4], True, 0.02)
        path = os.path.join(self.tmp.name, "dns-reordered.pcap")
        with open(path, "wb") as f:
            f.write(cap.to_bytes())
        got, s = self.run_records(path, self.cfg, workers=2)
        by_port = {}
        for r in got:
            by_port.setdefault(r["client"]["port"], []).append(r)
        self.assertEqual([(r["status"], r["flags"], r["latency_us"], r["request"]["qname"],
                           r["response"]["answers"][0]["data"]) for r in by_port[40101]],
                         [("ok", ["reordered"], None, "h1.example", "10.0.0.1")])
        self.assertEqual([(r["status"], r["flags"], r["latency_us"]) for r in by_port[40102]], [("ok", [], 1000)])
        self.assertEqual([(r["status"], r["request"]) for r in by_port[40103]], [("unmatched", None)])
        self.assertEqual(sorted(r["status"] for r in by_port[40104]), ["timeout", "unmatched"])
        self.assertEqual(len(got), 5)
        self.assertEqual(sum(w["records"]["reordered_pairs"] for w in s["workers"]), 1)
        self.assertEqual(sum(w["records"]["unmatched"] for w in s["workers"]), 2)

    def test_crafted_bounds_late_syn_and_retransmission(self):
        cap = hg.Capture()
        req, resp = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        # A: the request never reaches the capture; the response acks it.
        a = hg.Tcp(cap, 40001, 80).handshake()
        a.nxt[True] += len(req)
        a.send(False, resp)
        a.pkt(True, hg.FIN | hg.ACK, dt=0.02)  # 20 ms later: the 10 ms hold has run out
        a.nxt[True] += 1
        a.pkt(False, hg.FIN | hg.ACK)
        a.nxt[False] += 1
        a.pkt(True, hg.ACK)
        # B: a clean exchange, closed, then its SYN again and a late copy of its request.
        b = hg.Tcp(cap, 40002, 80).handshake().exchange(req, resp).close()
        b.pkt(True, hg.SYN, seq=b.isn_c, ack=0, dt=0.01)
        b.pkt(True, hg.PSH | hg.ACK, req, seq=b.isn_c + 1, ack=b.isn_s + 1)
        # C: the request retransmitted identically 5 ms later: not a mirror copy.
        c = hg.Tcp(cap, 40003, 80).handshake()
        c.pkt(True, hg.PSH | hg.ACK, req)
        c.pkt(True, hg.PSH | hg.ACK, req, dt=0.005)
        c.nxt[True] += len(req)
        c.pkt(False, hg.ACK)
        c.send(False, resp).close()
        # D: request lost, a 70 KB response right after: the 64 KiB byte bound gives up.
        d = hg.Tcp(cap, 40004, 80).handshake()
        d.nxt[True] += len(req)
        big = b"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" + b"x" * 70000
        for i in range(0, len(big), 1460):
            d.pkt(False, hg.PSH | hg.ACK, big[i:i + 1460], dt=0.0001)
            d.nxt[False] += len(big[i:i + 1460])
        d.pkt(True, hg.ACK)
        d.close()
        path = os.path.join(self.tmp.name, "crafted.pcap")
        with open(path, "wb") as f:
            f.write(cap.to_bytes())
        got, s = self.run_records(path, self.cfg_hold10)
        o = outcomes(s)
        self.assertEqual(o["late"], 1)
        self.assertEqual(o["after_close"], 1 + 1 + 1 + 1 + 1)  # four final ACKs and B's late request
        self.assertEqual(o["duplicate"], 0)
        self.assertEqual(o["retransmission"], 1)
        self.assertEqual(reassembly_counter(s, "ack_hold_timeouts"), 1)
        self.assertEqual(reassembly_counter(s, "ack_hold_overflows"), 1)
        gaps = s["workers"][0]["reassembly"]["gaps"]["ack_past_hole"]
        self.assertEqual(gaps, {"events": 2, "bytes": 2 * len(req)})
        ok = [r for r in got if r["status"] == "ok"]
        self.assertEqual(len(ok), 2)  # B and C; A and D lost their requests
        self.assertEqual(s["workers"][0]["reassembly"]["flows_created"], 4)  # no phantom flow for B

if __name__ == "__main__":
    unittest.main()
