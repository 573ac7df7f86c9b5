"""Records through the whole pipeline: spanfeed --job records through the
EAL, RX, rings and worker lcores produces, for every capture with checked-in
expected records (tests/data/golden, reviewed against tshark and DeepFlow),
exactly those records (ignoring the per-run `id`), at 1, 2 and 4 workers;
the record ledger balances and every record reaches the JSON-lines sink."""
import gzip
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DATA, ROOT, SpanfeedTestCase, run_spanfeed  # noqa: E402

GOLDEN = os.path.join(ROOT, "tests", "data", "golden")
PROTO_DIR = {"mongo": "mongo"}  # golden dir -> capture dir where they differ


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
        self.assertGreaterEqual(len(files), 15)
        for golden, pcap in files:
            if not os.path.exists(pcap):
                continue
            want = canon(load(golden))
            for workers in (1, 2, 4):
                with self.subTest(capture=os.path.relpath(pcap, DATA), workers=workers):
                    with tempfile.TemporaryDirectory() as tmp:
                        out = os.path.join(tmp, "records.jsonl")
                        r = run_spanfeed(["--pcap", pcap, "--job", "records", "-w", str(workers),
                                          "-q", "--output", f"jsonl:{out}"])
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
