"""Records to Kafka over the real Kafka protocol: spanfeed-kafka-mock (the
librdkafka mock cluster on loopback) as the broker, kcat as an independent
client reading the topic back. The records in Kafka are exactly the records
of the JSON-lines output of the same run: none lost, none duplicated, every
connection's records under one key in one partition. A broker outage during
an offline run loses nothing; in live mode every record is accounted for."""
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import SPANFEED, SpanfeedTestCase, capture, run_spanfeed, scaled  # noqa: E402

MOCK = os.path.join(os.path.dirname(SPANFEED), "spanfeed-kafka-mock")
CAPTURES = ["redis/redis.pcap", "http/http-mixed.pcap", "dns/dns-tcp-multi.pcap",
            "memcached/memcached.pcap", "dns/nxdomain.pcap"]


class Broker:
    def __init__(self, tmp, topics=("spanfeed",)):
        bs = os.path.join(tmp, "bootstrap")
        args = [MOCK, "--bootstrap-file", bs]
        for t in topics:
            args += ["--topic", t]
        self.p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + scaled(5)  # the mock writes the file once it listens
        while not os.path.exists(bs) and time.monotonic() < deadline:
            time.sleep(0.05)
        with open(bs) as f:
            self.bootstrap = f.read().strip()

    def consume(self, topic, fmt="%k\t%p\t%s\n"):
        out = subprocess.run(["kcat", "-b", self.bootstrap, "-C", "-t", topic, "-o", "beginning",
                              "-e", "-q", "-f", fmt], capture_output=True, text=True, timeout=60)
        rows = []
        for line in out.stdout.splitlines():
            key, part, value = line.split("\t", 2)
            rows.append((key, int(part), json.loads(value)))
        return rows

    def signal(self, sig):
        self.p.send_signal(sig)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(timeout=10)


class KafkaExport(SpanfeedTestCase):
    def assertSinkLedger(self, s, delivered_all=True):
        self.assertLedgerBalanced(s)
        rec = s["ledger"]["records"]
        self.assertEqual(rec["emitted"], rec["batched"] + rec["dropped"])
        for sk in rec["sinks"]:
            self.assertEqual(sk["records"], rec["batched"], sk)
            self.assertEqual(sk["delivered"] + sk["failed"] + sk["dropped"], sk["records"], sk)
            self.assertEqual(sk["queued"], 0, sk)
            if delivered_all:
                self.assertEqual(sk["delivered"], sk["records"], sk)

    def test_kafka_equals_jsonl_none_lost_none_duplicated(self):
        with tempfile.TemporaryDirectory() as tmp:
            broker = Broker(tmp)
            try:
                expected = []
                for rel in CAPTURES:
                    jl = os.path.join(tmp, os.path.basename(rel) + ".jsonl")
                    r = run_spanfeed(["--pcap", capture(rel), "--job", "records", "-w", "2", "-q",
                                      "--output", f"kafka:{broker.bootstrap}/spanfeed",
                                      "--output", f"jsonl:{jl}"])
                    self.assertEqual(r.rc, 0, r.stderr)
                    self.assertSinkLedger(r.summary)
                    with open(jl) as f:
                        lines = [json.loads(l) for l in f]
                    self.assertGreater(len(lines), 0, rel)
                    self.assertEqual(len(lines), r.summary["ledger"]["records"]["emitted"])
                    expected += lines
                rows = broker.consume("spanfeed")
            finally:
                broker.stop()
        got = [v for _, _, v in rows]
        self.assertEqual(len(got), len(expected))
        ids = [v["id"] + v["ts"] for v in got]
        self.assertEqual(len(set(ids)), len(ids), "duplicates in Kafka")
        canon = lambda v: json.dumps(v, sort_keys=True)
        self.assertEqual(sorted(map(canon, got)), sorted(map(canon, expected)))
        # one key and one partition per connection
        by_conn = collections.defaultdict(set)
        for key, part, v in rows:
            conn = (v["client"]["ip"], v["client"]["port"], v["server"]["ip"], v["server"]["port"])
            by_conn[conn].add((key, part))
        for conn, kp in by_conn.items():
            self.assertEqual(len(kp), 1, conn)

    def test_two_exporter_threads_keep_each_connections_order(self):
        # export.threads 2 with 2 workers: one producer per thread; every
        # record delivered once, each connection in one partition, in the
        # order the JSON-lines file (shared by both threads) has it.
        with tempfile.TemporaryDirectory() as tmp:
            conf = os.path.join(tmp, "threads.yaml")
            with open(conf, "w") as f:
                f.write("export:\n  threads: 2\n")
            broker = Broker(tmp)
            try:
                jl = os.path.join(tmp, "out.jsonl")
                r = run_spanfeed(["-c", conf, "--pcap", capture("memcached/memcached-binary.pcap"), "--job", "records",
                                  "-w", "2", "-q", "--output", f"kafka:{broker.bootstrap}/spanfeed",
                                  "--output", f"jsonl:{jl}"])
                self.assertEqual(r.rc, 0, r.stderr)
                self.assertSinkLedger(r.summary)
                rows = broker.consume("spanfeed")
            finally:
                broker.stop()
            with open(jl) as f:
                lines = [json.loads(l) for l in f]
        self.assertEqual(len(lines), r.summary["ledger"]["records"]["emitted"])
        self.assertEqual(len(rows), len(lines))
        conn = lambda v: (v["client"]["ip"], v["client"]["port"], v["server"]["ip"], v["server"]["port"])
        in_file = collections.defaultdict(list)
        for v in lines:
            in_file[conn(v)].append(v["id"])
        in_kafka = collections.defaultdict(list)
        parts = collections.defaultdict(set)
        for key, part, v in rows:
            in_kafka[conn(v)].append(v["id"])
            parts[conn(v)].add(part)
        self.assertGreater(len(in_file), 1)
        self.assertEqual(dict(in_kafka), dict(in_file))
        for c, p in parts.items():
            self.assertEqual(len(p), 1, c)

    def test_topic_per_protocol(self):
        with tempfile.TemporaryDirectory() as tmp:
            broker = Broker(tmp, topics=("sf.redis", "sf.http"))
            try:
                for rel in ("redis/redis.pcap", "http/http-mixed.pcap"):
                    r = run_spanfeed(["--pcap", capture(rel), "--job", "records", "-q",
                                      "--output", f"kafka:{broker.bootstrap}/sf.{{protocol}}"])
                    self.assertEqual(r.rc, 0, r.stderr)
                    self.assertSinkLedger(r.summary)
                redis = broker.consume("sf.redis")
                http = broker.consume("sf.http")
            finally:
                broker.stop()
        self.assertEqual({v["protocol"] for _, _, v in redis}, {"redis"})
        self.assertEqual({v["protocol"] for _, _, v in http}, {"http"})
        self.assertEqual(len(redis), 10)

    def test_message_headers(self):
        # every message carries protocol, content-type and schema_version headers (kcat %h)
        with tempfile.TemporaryDirectory() as tmp:
            broker = Broker(tmp)
            try:
                r = run_spanfeed(["--pcap", capture("redis/redis.pcap"), "--job", "records", "-q",
                                  "--output", f"kafka:{broker.bootstrap}/spanfeed"])
                self.assertEqual(r.rc, 0, r.stderr)
                out = subprocess.run(["kcat", "-b", broker.bootstrap, "-C", "-t", "spanfeed", "-o", "beginning",
                                      "-e", "-q", "-f", "%h\t%s\n"], capture_output=True, text=True, timeout=60)
            finally:
                broker.stop()
        lines = out.stdout.splitlines()
        self.assertEqual(len(lines), 10)
        headers = {line.split("\t", 1)[0] for line in lines}
        self.assertEqual(headers, {"protocol=redis,content-type=application/json,schema_version=1.0"})
        # the record itself carries the same version, as its first field
        for line in lines:
            payload = line.split("\t", 1)[1]
            self.assertTrue(payload.startswith('{"schema_version":"1.0",'), payload[:40])
            self.assertEqual(json.loads(payload)["protocol"], "redis")

    def test_recycled_headers_match_each_record(self):
        # The sink reuses a delivered message's header list for the next record
        # of the same protocol. With one message in flight at a time every list
        # is reused, across a capture of several protocols: each message's
        # protocol header is still its record's protocol, nothing is lost.
        with tempfile.TemporaryDirectory() as tmp:
            merged = os.path.join(tmp, "mixed.pcap")
            subprocess.run(["mergecap", "-F", "pcap", "-w", merged] + [capture(c) for c in CAPTURES[:4]],
                           check=True)
            cfg = os.path.join(tmp, "c.yaml")
            with open(cfg, "w") as f:
                f.write("kafka:\n  properties:\n    queue.buffering.max.messages: '1'\n    linger.ms: '0'\n")
            broker = Broker(tmp)
            try:
                jl = os.path.join(tmp, "r.jsonl")
                r = run_spanfeed(["--pcap", merged, "-c", cfg, "--job", "records", "-q",
                                  "--output", f"kafka:{broker.bootstrap}/spanfeed", "--output", f"jsonl:{jl}"])
                self.assertEqual(r.rc, 0, r.stderr)
                out = subprocess.run(["kcat", "-b", broker.bootstrap, "-C", "-t", "spanfeed", "-o", "beginning",
                                      "-e", "-q", "-f", "%h\t%s\n"], capture_output=True, text=True, timeout=60)
            finally:
                broker.stop()
            with open(jl) as f:
                expected = sorted(l.rstrip("\n") for l in f)
        self.assertSinkLedger(r.summary)
        lines = out.stdout.splitlines()
        self.assertEqual(sorted(line.split("\t", 1)[1] for line in lines), expected)
        protocols = collections.Counter()
        for line in lines:
            headers, payload = line.split("\t", 1)
            proto = json.loads(payload)["protocol"]
            protocols[proto] += 1
            self.assertEqual(headers, f"protocol={proto},content-type=application/json,schema_version=1.0")
        self.assertGreaterEqual(len(protocols), 3, protocols)
        self.assertGreater(max(protocols.values()), 1, protocols)  # a protocol reused its lists

    def test_offline_outage_loses_nothing(self):
        with tempfile.TemporaryDirectory() as tmp:
            broker = Broker(tmp)
            try:
                broker.signal(signal.SIGUSR1)  # every broker down
                time.sleep(0.3)
                summary = os.path.join(tmp, "s.json")
                p = subprocess.Popen([SPANFEED, "--metrics", "off", "--pcap", capture("redis/redis.pcap"), "--job",
                                      "records", "-q", "--summary-json", summary, "--output",
                                      f"kafka:{broker.bootstrap}/spanfeed"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                time.sleep(3)  # spanfeed is done with the file and waits on the broker
                self.assertIsNone(p.poll(), "spanfeed gave up while the broker was down")
                broker.signal(signal.SIGUSR2)  # back up
                out, err = p.communicate(timeout=60)
                self.assertEqual(p.returncode, 0, err)
                with open(summary) as f:
                    s = json.load(f)
                rows = broker.consume("spanfeed")
            finally:
                broker.stop()
        self.assertSinkLedger(s, delivered_all=True)
        self.assertEqual(len(rows), 10)

    def test_live_outage_every_record_accounted(self):
        with tempfile.TemporaryDirectory() as tmp:
            broker = Broker(tmp)
            try:
                broker.signal(signal.SIGUSR1)
                time.sleep(0.3)
                cfg = os.path.join(tmp, "c.yaml")
                with open(cfg, "w") as f:
                    f.write("kafka:\n  properties:\n    message.timeout.ms: '1500'\n"
                            "  flush_timeout_s: 3\n")
                r = run_spanfeed(["--pcap", capture("redis/redis.pcap"), "--mode", "live", "-c", cfg,
                                  "--job", "records", "-q", "--output",
                                  f"kafka:{broker.bootstrap}/spanfeed"], timeout=60)
            finally:
                broker.stop()
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertSinkLedger(r.summary, delivered_all=False)
        sk = r.summary["ledger"]["records"]["sinks"][0]
        self.assertEqual(sk["records"], 10)
        self.assertEqual(sk["delivered"], 0)
        self.assertEqual(sk["failed"], 10)
        self.assertEqual(sum(sk["failure_reasons"].values()), 10)

    def test_bad_kafka_property_is_a_clear_error(self):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = os.path.join(tmp, "c.yaml")
            with open(cfg, "w") as f:
                f.write("kafka:\n  properties:\n    no.such.property: '1'\n")
            r = run_spanfeed(["--pcap", capture("redis/redis.pcap"), "-c", cfg, "--job", "records",
                              "--output", "kafka:127.0.0.1:1/t"], want_summary=False)
        self.assertEqual(r.rc, 2)  # a configuration error, found before the EAL starts
        self.assertIn("kafka.properties: kafka property no.such.property=1", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
