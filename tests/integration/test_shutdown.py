"""Nothing hangs, nothing vanishes: capture files with no readable record end
by themselves; a damaged or short-snaplen file says so; an offline run waits
for a Kafka broker that is down (visibly) instead of purging, and every wait
ends on the second signal (SIGINT or SIGTERM) with a summary, every record
accounted for and a non-zero exit code. Each run is bounded by `timeout`."""
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
from common import SPANFEED, SpanfeedTestCase, capture, run_spanfeed, scaled  # noqa: E402
from test_kafka_export import Broker  # noqa: E402

EXIT_DAMAGED = 3
EXIT_UNDELIVERED = 4
PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def read_pcap(path):
    """(snaplen, [(ts_sec, ts_usec, orig_len, data)]) of a little-endian pcap."""
    with open(path, "rb") as f:
        raw = f.read()
    snaplen = struct.unpack_from("<I", raw, 16)[0]
    recs, off = [], 24
    while off + 16 <= len(raw):
        sec, usec, incl, orig = struct.unpack_from("<IIII", raw, off)
        recs.append((sec, usec, orig, raw[off + 16:off + 16 + incl]))
        off += 16 + incl
    return snaplen, recs


def write_pcap(path, recs, snaplen=65535):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1))
        for sec, usec, orig, data in recs:
            data = data[:snaplen]
            f.write(struct.pack("<IIII", sec, usec, len(data), orig) + data)


def dns_pcap(path, pairs):
    """`pairs` DNS query/response exchanges over UDP (one record each)."""
    def frame(src, dst, sp, dp, payload):
        udp = struct.pack("!HHHH", sp, dp, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                         bytes(src), bytes(dst))
        s = sum(struct.unpack("!10H", ip))
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        ip = ip[:10] + struct.pack("!H", ~s & 0xFFFF) + ip[12:]
        return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + udp
    q = b"\x07example\x03com\x00\x00\x01\x00\x01"
    cli, srv = [10, 0, 0, 1], [10, 0, 0, 53]
    recs, t = [], 1_700_000_000 * 1_000_000
    for i in range(pairs):
        qid, sp = i & 0xFFFF, 20000 + i % 20000
        query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q
        resp = struct.pack("!HHHHHH", qid, 0x8183, 1, 0, 0, 0) + q
        for pkt in (frame(cli, srv, sp, 53, query), frame(srv, cli, 53, sp, resp)):
            t += 10
            recs.append((t // 1_000_000, t % 1_000_000, len(pkt), pkt))
    write_pcap(path, recs)


def load(path):
    with open(path) as f:
        return json.load(f)


class CaptureFileEnds(SpanfeedTestCase):
    def run_file(self, path, *extra):
        t0 = time.monotonic()
        r = run_spanfeed(["--pcap", path, "-q", *extra], timeout=30)  # scaled by run_spanfeed
        return r, time.monotonic() - t0

    def test_header_only_file_is_an_empty_run(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "empty.pcap")
            with open(path, "wb") as f:
                f.write(PCAP_HEADER)
            r, wall = self.run_file(path)
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertLess(wall, scaled(15))
        s = r.summary
        self.assertEqual(s["rx_packets"], 0)
        self.assertFalse(s["capture_file"]["damaged"])
        self.assertEqual(s["capture_file"]["records_read"], 0)
        self.assertLedgerBalanced(s)

    def test_garbage_after_header_ends_damaged(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "garbage.pcap")
            with open(path, "wb") as f:
                f.write(PCAP_HEADER + bytes(range(256)) * 8)
            r, wall = self.run_file(path, "--job", "records", "--output", "jsonl:-")
        self.assertEqual(r.rc, EXIT_DAMAGED, r.stderr)
        self.assertLess(wall, scaled(15))
        self.assertIn("is damaged: read stopped after 0 record(s): invalid packet capture length",
                      r.stderr)
        cf = r.summary["capture_file"]
        self.assertTrue(cf["damaged"])
        self.assertEqual(cf["records_read"], 0)
        self.assertIn("invalid packet capture length", cf["read_error"])
        self.assertEqual(r.summary["rx_packets"], 0)
        self.assertLedgerBalanced(r.summary)

    def test_garbage_after_records_reads_them_then_reports(self):
        src = capture("redis/redis.pcap")
        _, recs = read_pcap(src)
        clean = run_spanfeed(["--pcap", src, "-q"], timeout=30)
        self.assertEqual(clean.rc, 0, clean.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "tail.pcap")
            with open(src, "rb") as f, open(path, "wb") as out:
                out.write(f.read() + b"\xff" * 40)
            r, wall = self.run_file(path)
        self.assertEqual(r.rc, EXIT_DAMAGED, r.stderr)
        self.assertLess(wall, scaled(15))
        self.assertIn(f"read stopped after {len(recs)} record(s)", r.stderr)
        self.assertEqual(r.summary["capture_file"]["records_read"], len(recs))
        self.assertEqual(r.summary["rx_packets"], len(recs))
        self.assertEqual(r.summary["payload_bytes"], clean.summary["payload_bytes"])
        self.assertLedgerBalanced(r.summary)

    def large_file(self, path, tail=b""):
        """redis.pcap's records, then non-IP frames of 200,000 bytes up to 64 MiB (a file
        that large is counted as it is read, not before), then `tail`. Returns the counts."""
        _, recs = read_pcap(capture("redis/redis.pcap"))
        sec, usec = recs[-1][0], recs[-1][1]
        frame = b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x88\xb5" + bytes(200_000 - 14)
        pad = struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame
        with open(capture("redis/redis.pcap"), "rb") as f:
            body = f.read()
        header = body[:16] + struct.pack("<I", 262144) + body[20:24]
        n_pad = (64 * 2**20 - len(body)) // len(pad) + 1
        with open(path, "wb") as f:
            f.write(header + body[24:])
            for _ in range(n_pad):
                f.write(pad)
            f.write(tail)
        return len(recs), n_pad

    def records_of(self, path, *extra):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "r.jsonl")
            r, _ = self.run_file(path, "--job", "records", "--output", f"jsonl:{out}", "--log-level", "info",
                                 *extra)
            with open(out) as f:
                return r, sorted(f.read().splitlines())

    def test_large_file_counted_as_read_gives_the_same_run(self):
        clean, clean_records = self.records_of(capture("redis/redis.pcap"))
        self.assertEqual(clean.rc, 0, clean.stderr)
        self.assertNotIn("counted as they are read", clean.stderr)  # a small file is counted first
        self.assertGreater(len(clean_records), 0)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "large.pcap")
            n, n_pad = self.large_file(path)
            r, records = self.records_of(path)
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertIn("records counted as they are read", r.stderr)
        self.assertNotIn("damaged", r.stderr)
        cf = r.summary["capture_file"]
        self.assertFalse(cf["damaged"])
        self.assertEqual(cf["records_read"], n + n_pad)
        self.assertEqual(r.summary["rx_packets"], n + n_pad)
        self.assertEqual(r.summary["ledger"]["rx"]["non_ip"], clean.summary["ledger"]["rx"]["non_ip"] + n_pad)
        self.assertEqual(r.summary["payload_bytes"], clean.summary["payload_bytes"])
        self.assertEqual(records, clean_records)
        self.assertLedgerBalanced(r.summary)

    def test_large_file_cut_off_or_garbage_tail_is_damaged(self):
        for name, cut, tail, error in (
                ("cut-off", 1000, b"", "truncated dump file"),
                ("garbage", 0, b"\xff" * 40, "invalid packet capture length")):
            with self.subTest(name), tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "large.pcap")
                n, n_pad = self.large_file(path, tail)
                if cut:
                    os.truncate(path, os.path.getsize(path) - cut)
                whole = n + n_pad - (1 if cut else 0)
                r, _ = self.records_of(path)
                self.assertEqual(r.rc, EXIT_DAMAGED, r.stderr)
                self.assertIn("records counted as they are read", r.stderr)
                self.assertIn(f"is damaged: read stopped after {whole} record(s): {error}", r.stderr)
                cf = r.summary["capture_file"]
                self.assertTrue(cf["damaged"])
                self.assertIn(error, cf["read_error"])
                self.assertEqual(cf["records_read"], whole)
                self.assertEqual(r.summary["rx_packets"], whole)
                self.assertLedgerBalanced(r.summary)

    def test_short_snaplen_is_said_plainly(self):
        _, recs = read_pcap(capture("http/http-mixed.pcap"))
        cut = sum(1 for _, _, orig, data in recs if min(len(data), orig) > 64)
        self.assertGreater(cut, 0)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "snap64.pcap")
            write_pcap(path, recs, snaplen=64)
            r, wall = self.run_file(path, "--job", "records", "--output", "jsonl:-")
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertLess(wall, scaled(15))
        self.assertIn("captured with snaplen 64", r.stderr)
        self.assertIn(f"({cut} of {len(recs)} record(s) are shorter than on the wire)", r.stderr)
        s = r.summary
        self.assertEqual(s["capture_snaplen"], 64)
        self.assertEqual(s["capture_file"]["truncated_by_snaplen"], cut)
        self.assertEqual(s["rx_packets"], len(recs))
        self.assertLedgerBalanced(s)


class KafkaWaits(SpanfeedTestCase):
    """Offline runs against spanfeed-kafka-mock with its brokers down. The sleeps let a run
    reach the state a step needs; a slower build (SPANFEED_TEST_TIME_SCALE) sleeps longer."""

    def start(self, tmp, broker, pcap, props, extra=()):
        cfg = os.path.join(tmp, "c.yaml")
        with open(cfg, "w") as f:
            f.write("kafka:\n  flush_timeout_s: 1\n" + ("  properties:\n" if props else ""))
            for k, v in props.items():
                f.write(f"    {k}: '{v}'\n")
        self.summary = os.path.join(tmp, "s.json")
        return subprocess.Popen(["timeout", "-s", "KILL", str(scaled(60)), SPANFEED, "--metrics", "off",
                                 "--pcap", pcap, "--job", "records", "-q", "-c", cfg,
                                 "--summary-json", self.summary, "--output",
                                 f"kafka:{broker.bootstrap}/spanfeed", *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def signal(self, p, sig):
        # `timeout` runs spanfeed as its child: signal spanfeed itself.
        out = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True)
        for pid in out.stdout.split():
            os.kill(int(pid), sig)

    def assertAccounted(self, s):
        self.assertLedgerBalanced(s)
        rec = s["ledger"]["records"]
        self.assertEqual(rec["emitted"], rec["batched"] + rec["dropped"])
        for sk in rec["sinks"]:
            self.assertEqual(sk["records"], rec["batched"], sk)
            self.assertEqual(sk["delivered"] + sk["failed"] + sk["dropped"], sk["records"], sk)
            self.assertEqual(sum(sk["failure_reasons"].values()), sk["failed"], sk)
            self.assertEqual(sk["queued"], 0, sk)

    def test_outage_longer_than_flush_timeout_waits_then_delivers(self):
        with tempfile.TemporaryDirectory() as tmp:
            broker = Broker(tmp)
            try:
                broker.signal(signal.SIGUSR1)  # every broker down
                time.sleep(scaled(0.3))
                p = self.start(tmp, broker, capture("redis/redis.pcap"), {})
                time.sleep(scaled(4))  # the file is done; 4x flush_timeout_s of outage
                self.assertIsNone(p.poll(), "spanfeed gave up while the broker was down")
                broker.signal(signal.SIGUSR2)  # back up
                out, err = p.communicate(timeout=scaled(40))
                s = load(self.summary)
                rows = broker.consume("spanfeed")
            finally:
                broker.stop()
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("waiting for the broker", err)
        sk = s["sinks"][0]
        self.assertEqual((sk["records"], sk["delivered"], sk["failed"]), (10, 10, 0))
        self.assertGreaterEqual(sk["broker_wait_s"], 2)
        self.assertFalse(sk["waiting_for_broker"])
        self.assertAccounted(s)
        self.assertEqual(len(rows), 10)

    def test_first_signal_flushes_for_the_timeout_then_fails_the_rest(self):
        with tempfile.TemporaryDirectory() as tmp:
            broker = Broker(tmp)
            try:
                broker.signal(signal.SIGUSR1)
                time.sleep(scaled(0.3))
                p = self.start(tmp, broker, capture("redis/redis.pcap"), {})
                time.sleep(scaled(2.5))
                self.assertIsNone(p.poll())
                t0 = time.monotonic()
                self.signal(p, signal.SIGINT)
                out, err = p.communicate(timeout=scaled(30))
                stop_s = time.monotonic() - t0
                s = load(self.summary)
            finally:
                broker.stop()
        self.assertEqual(p.returncode, EXIT_UNDELIVERED, err)
        self.assertGreaterEqual(stop_s, 0.9)  # flush_timeout_s: 1
        self.assertLess(stop_s, scaled(8))
        self.assertTrue(s["interrupted"])
        sk = s["sinks"][0]
        self.assertEqual((sk["records"], sk["delivered"], sk["failed"]), (10, 0, 10))
        self.assertAccounted(s)

    def test_full_producer_queue_second_signal_abandons(self):
        # librdkafka's queue holds one message: the exporter waits for room.
        for second in (signal.SIGINT, signal.SIGTERM):
            with self.subTest(second=second.name), tempfile.TemporaryDirectory() as tmp:
                broker = Broker(tmp)
                try:
                    broker.signal(signal.SIGUSR1)
                    time.sleep(scaled(0.3))
                    p = self.start(tmp, broker, capture("redis/redis.pcap"),
                                   {"queue.buffering.max.messages": 1}, ["-w", "1"])
                    time.sleep(scaled(2))
                    self.signal(p, signal.SIGINT)  # drains: still waiting for the broker
                    time.sleep(scaled(1.5))
                    self.assertIsNone(p.poll(), "the first signal must drain, not give up")
                    t0 = time.monotonic()
                    self.signal(p, second)
                    out, err = p.communicate(timeout=scaled(30))
                    stop_s = time.monotonic() - t0
                    s = load(self.summary)
                finally:
                    broker.stop()
                self.assertEqual(p.returncode, EXIT_UNDELIVERED, err)
                self.assertLess(stop_s, scaled(5))
                sk = s["sinks"][0]
                self.assertEqual((sk["records"], sk["delivered"], sk["failed"]), (10, 0, 10))
                self.assertGreater(sk["failure_reasons"].get("abandoned", 0), 0, sk)
                self.assertAccounted(s)

    def test_workers_waiting_for_batches_end_on_second_signal(self):
        # 6,000 records on one worker: every export batch is in flight behind a
        # stuck producer, the worker waits for one, RX waits for ring space.
        with tempfile.TemporaryDirectory() as tmp:
            pcap = os.path.join(tmp, "dns.pcap")
            dns_pcap(pcap, 6000)
            broker = Broker(tmp)
            try:
                broker.signal(signal.SIGUSR1)
                time.sleep(scaled(0.3))
                p = self.start(tmp, broker, pcap, {"queue.buffering.max.messages": 1},
                               ["-w", "1", "--ring-size", "1024"])
                time.sleep(scaled(3))
                self.signal(p, signal.SIGINT)
                time.sleep(scaled(1))
                self.assertIsNone(p.poll(), "the first signal must drain, not give up")
                t0 = time.monotonic()
                self.signal(p, signal.SIGINT)
                out, err = p.communicate(timeout=scaled(30))
                stop_s = time.monotonic() - t0
                s = load(self.summary)
            finally:
                broker.stop()
        self.assertEqual(p.returncode, EXIT_UNDELIVERED, err)
        self.assertLess(stop_s, scaled(5))
        self.assertTrue(s["interrupted"])
        rec = s["ledger"]["records"]
        sk = s["sinks"][0]
        # What the second signal abandoned is counted where it was waiting:
        # records with no free batch at the worker (dropped_abandoned), and
        # records the sink had not produced yet (failed, reason "abandoned").
        # Which of the two holds how many is a race (the sink hands batches
        # back as it fails them, and a waiting worker may take one first);
        # together they are every record emitted but not yet with librdkafka.
        abandoned = rec["dropped_abandoned"] + sk["failure_reasons"].get("abandoned", 0)
        self.assertGreater(abandoned, 0, s)
        self.assertEqual(rec["dropped"], rec["dropped_abandoned"], rec)
        self.assertEqual(rec["emitted"], rec["batched"] + rec["dropped"], rec)
        self.assertEqual(sk["failed"], sk["records"], sk)
        purged = sum(n for why, n in sk["failure_reasons"].items() if why.startswith("_PURGE"))
        self.assertEqual(rec["emitted"], abandoned + purged, s)
        # RX stopped early, on its ring or mempool wait (at most 16 x 256 records
        # are in batches, 1,024 packets in the ring): the file was not read out
        self.assertLess(s["rx_packets"], 12000)
        self.assertEqual(sk["delivered"], 0)
        self.assertAccounted(s)


class GelfWaits(SpanfeedTestCase):
    def test_tcp_retries_end_on_second_signal(self):
        # Nobody listens: offline, each record is retried for gelf.retry_s (60 s).
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # bound, never listening: connections are refused
            with tempfile.TemporaryDirectory() as tmp:
                cfg = os.path.join(tmp, "c.yaml")
                with open(cfg, "w") as f:
                    f.write("gelf:\n  retry_s: 60\n")
                summary = os.path.join(tmp, "s.json")
                p = subprocess.Popen(["timeout", "-s", "KILL", str(scaled(60)), SPANFEED, "--metrics", "off",
                                      "--pcap", capture("redis/redis.pcap"), "--job", "records",
                                      "-q", "-c", cfg, "--summary-json", summary,
                                      "--output", f"gelf-tcp:127.0.0.1:{port}"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                time.sleep(scaled(2))
                KafkaWaits.signal(self, p, signal.SIGINT)
                time.sleep(scaled(1))
                self.assertIsNone(p.poll(), "the first signal must drain, not give up")
                t0 = time.monotonic()
                KafkaWaits.signal(self, p, signal.SIGINT)
                out, err = p.communicate(timeout=scaled(30))
                stop_s = time.monotonic() - t0
                s = load(summary)
        self.assertEqual(p.returncode, EXIT_UNDELIVERED, err)
        self.assertLess(stop_s, scaled(5))
        sk = s["sinks"][0]
        self.assertEqual((sk["records"], sk["delivered"], sk["failed"]), (10, 0, 10))
        self.assertEqual(sk["failure_reasons"], {"abandoned": 10})
        KafkaWaits.assertAccounted(self, s)


if __name__ == "__main__":
    unittest.main(verbosity=2)
