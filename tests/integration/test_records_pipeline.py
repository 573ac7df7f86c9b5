"""Records through the whole pipeline: spanfeed --job records through the
EAL, RX, rings and worker lcores produces, for every capture with checked-in
expected records (tests/data/golden, reviewed against tshark and DeepFlow),
exactly those records (ignoring the per-run `id`);
the record ledger balances and every record reaches the JSON-lines sink.
(Every capture at 2 workers; the multi-connection ones at 1, 2 and 4.)"""
import gzip
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DATA, ROOT, SpanfeedTestCase, run_spanfeed  # noqa: E402

PROTOCOLS = os.path.join(os.path.dirname(os.environ.get("SPANFEED", os.path.join(ROOT, "build", "src", "spanfeed"))),
                         "spanfeed-protocols")

GOLDEN = os.path.join(ROOT, "tests", "data", "golden")
PROTO_DIR = {"mongo": "mongo"}  # golden dir -> capture dir where they differ
# The reference captures' servers listen on non-standard ports: bound through
# the config as an operator would (the same bindings the decoder goldens use).
PORTS_CONFIG = """decode:
  ports:
    mysql: [3306, 20130, 30130, 6033, 2883]
    pgsql: [5432, 8000]
    mongodb: [27017, 3717]
"""
# Every capture runs at 2 workers; these, with many connections, also at 1 and 4.
ALL_WORKER_COUNTS = {"171-mysql.pcap", "memcached-userdata.pcap", "pgsql-all.pcap", "mongo.pcap",
                     "dns-tcp-multi.pcap", "sw8.pcap"}
# Found by payload alone, these lose their first exchange: the capture begins with methods either side
# may send (a basic.cancel and its cancel-ok), which do not tell the client from the server.
SNIFF_MISSES = {"amqp-errors.pcap": ["basic.cancel"]}
# One direction VLAN-tagged, the other not: VLAN out of the flow key.
NO_VLAN = {"binary-in-sql.pcap"}


def golden_files():
    out = []
    for proto in sorted(os.listdir(GOLDEN)):
        for name in sorted(os.listdir(os.path.join(GOLDEN, proto))):
            if name.endswith(".jsonl") or name.endswith(".jsonl.gz"):
                stem = name.split(".jsonl")[0]
                pcap = os.path.join(DATA, PROTO_DIR.get(proto, proto), stem + ".pcap")
                out.append((os.path.join(GOLDEN, proto, name), pcap))
    return out


def load(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return [json.loads(l) for l in f if l.strip()]


def canon(records):
    out = []
    for r in records:
        r = dict(r)
        r.pop("id", None)
        out.append(json.dumps(r, sort_keys=True))
    return sorted(out)


class RecordsPipeline(SpanfeedTestCase):
    def test_golden_records_through_the_pipeline(self):
        files = golden_files()
        self.assertGreaterEqual(len(files), 40)
        tmpcfg = tempfile.TemporaryDirectory()
        self.addCleanup(tmpcfg.cleanup)
        cfg = os.path.join(tmpcfg.name, "ports.yaml")
        cfg_novlan = os.path.join(tmpcfg.name, "ports-novlan.yaml")
        with open(cfg, "w") as f:
            f.write(PORTS_CONFIG)
        with open(cfg_novlan, "w") as f:
            f.write(PORTS_CONFIG + "flow:\n  hash_vlan: false\n")
        for golden, pcap in files:
            if not os.path.exists(pcap):
                continue
            want = canon(load(golden))
            counts = (1, 2, 4) if os.path.basename(pcap) in ALL_WORKER_COUNTS else (2,)
            for workers in counts:
                with self.subTest(capture=os.path.relpath(pcap, DATA), workers=workers):
                    with tempfile.TemporaryDirectory() as tmp:
                        out = os.path.join(tmp, "records.jsonl")
                        c = cfg_novlan if os.path.basename(pcap) in NO_VLAN else cfg
                        r = run_spanfeed(["--pcap", pcap, "--job", "records", "-w", str(workers),
                                          "-q", "-c", c, "--output", f"jsonl:{out}"])
                        self.assertEqual(r.rc, 0, r.stderr)
                        got = load(out)
                    s = r.summary
                    self.assertLedgerBalanced(s)
                    rec = s["ledger"]["records"]
                    self.assertEqual(rec["emitted"], len(want))
                    self.assertEqual(rec["dropped"], 0)
                    self.assertEqual(rec["sinks"][0]["delivered"], len(want))
                    self.assertEqual(len({g["id"] for g in got}), len(got), "ids not unique")
                    self.assertEqual(canon(got), want)

    def test_golden_records_by_sniff_alone(self):
        # With no port bound to any protocol, each flow is found by its payload alone, as on a port
        # spanfeed does not know. Most reference captures begin mid-connection (no greeting, no startup
        # message): the records must still be exactly the golden ones.
        names = subprocess.run([PROTOCOLS, "--names"], capture_output=True, text=True, check=True)
        protocols = names.stdout.replace(",", " ").split()
        self.assertIn("pgsql", protocols)
        with tempfile.TemporaryDirectory() as tmp:
            cfg = os.path.join(tmp, "noports.yaml")
            with open(cfg, "w") as f:
                f.write("decode:\n  ports:\n" + "".join(f"    {p}: []\n" for p in protocols))
            cfg_novlan = os.path.join(tmp, "noports-novlan.yaml")
            with open(cfg_novlan, "w") as f:
                f.write(open(cfg).read() + "flow:\n  hash_vlan: false\n")
            checked = 0
            for golden, pcap in golden_files():
                if not os.path.exists(pcap):
                    continue
                with self.subTest(capture=os.path.relpath(pcap, DATA)):
                    out = os.path.join(tmp, os.path.basename(pcap) + ".jsonl")
                    c = cfg_novlan if os.path.basename(pcap) in NO_VLAN else cfg
                    r = run_spanfeed(["--pcap", pcap, "--job", "records", "-w", "1", "-q", "-c", c,
                                      "--output", f"jsonl:{out}"])
                    self.assertEqual(r.rc, 0, r.stderr)
                    self.assertEqual(sum(w["records"]["detect"]["by_port"] for w in r.summary["workers"]), 0)
                    got, want = canon(load(out)), canon(load(golden))
                    missed = SNIFF_MISSES.get(os.path.basename(pcap), [])
                    lost = [w for w in want if w not in got]
                    self.assertEqual(sorted(json.loads(w)["request"]["method"] for w in lost), missed)
                    self.assertEqual(got, [w for w in want if w not in lost])
                    checked += 1
            self.assertGreaterEqual(checked, 40)

    def test_recording_id_and_stdout(self):
        pcap = os.path.join(DATA, "http", "httpv1.pcap")
        r = run_spanfeed(["--pcap", pcap, "--job", "records", "--recording-id", "rec-42"])
        self.assertEqual(r.rc, 0, r.stderr)
        lines = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertEqual(len(lines), 1)  # stdout carries only the records...
        self.assertEqual(lines[0]["recording_id"], "rec-42")
        golden = load(os.path.join(GOLDEN, "http", "httpv1.jsonl"))[0]
        self.assertEqual(lines[0]["request"], golden["request"])
        self.assertEqual(lines[0]["request"]["method"], "POST")
        self.assertIn("ledger balanced", r.stderr)  # ...the summary went to stderr

    def test_jsonl_rotation_keeps_every_record(self):
        pcap = os.path.join(DATA, "memcached", "memcached-userdata.pcap")
        with tempfile.TemporaryDirectory() as tmp:
            cfg = os.path.join(tmp, "c.yaml")
            with open(cfg, "w") as f:
                f.write("jsonl:\n  rotate_mb: 0.5\n  keep: 20\n")
            out = os.path.join(tmp, "rt.jsonl")
            r = run_spanfeed(["--pcap", pcap, "--job", "records", "-q", "-c", cfg,
                              "--output", f"jsonl:{out}"])
            self.assertEqual(r.rc, 0, r.stderr)
            files = sorted(f for f in os.listdir(tmp) if f.startswith("rt.jsonl"))
            sizes = [os.path.getsize(os.path.join(tmp, f)) for f in files]
            records = []
            for f in files:
                records += load(os.path.join(tmp, f))
        self.assertGreater(len(files), 3, files)
        self.assertTrue(all(sz < 0.5 * 1024 * 1024 + 4096 for sz in sizes), sizes)
        self.assertEqual(len(records), 10154)
        self.assertEqual(canon(records), canon(load(os.path.join(GOLDEN, "memcached",
                                                                 "memcached-userdata.jsonl.gz"))))

    def test_a_full_disk_delivers_nothing(self):
        # /dev/full refuses every write: no record may count as delivered (a
        # buffered stream would count what its later flush lost); exit code 4.
        pcap = os.path.join(DATA, "memcached", "memcached-userdata.pcap")
        r = run_spanfeed(["--pcap", pcap, "--job", "records", "-q", "--output", "jsonl:/dev/full"])
        self.assertEqual(r.rc, 4, r.stderr)
        sink = r.summary["ledger"]["records"]["sinks"][0]
        self.assertEqual(sink["records"], 10154)
        self.assertEqual(sink["delivered"], 0)
        self.assertEqual(sink["failed"], 10154)
        self.assertEqual(sink["failure_reasons"], {"write": 10154})


if __name__ == "__main__":
    unittest.main(verbosity=2)
