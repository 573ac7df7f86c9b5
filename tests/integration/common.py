"""Helpers shared by the integration tests: run the real spanfeed binary
through the EAL (net_pcap vdev, no hugepages) and read its JSON summary."""
import json
import os
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(ROOT, "tests", "data", "pcaps")
SPANFEED = os.environ.get("SPANFEED", os.path.join(ROOT, "build", "src", "spanfeed"))
REWRAP = os.path.join(ROOT, "scripts", "pcap_rewrap.py")
# How much slower than a plain build this spanfeed runs: scripts/tsan.sh sets it for its
# ThreadSanitizer build (5-15x slower). Bounds on wall time and waits for a condition are
# multiplied by it; every other assertion stays exact. 1 in a plain run.
TIME_SCALE = float(os.environ.get("SPANFEED_TEST_TIME_SCALE", "1"))
# Likewise for resident memory (TSan's shadow memory: ~5x): bounds on peak RSS use it.
MEMORY_SCALE = float(os.environ.get("SPANFEED_TEST_MEMORY_SCALE", "1"))


def scaled(seconds):
    """`seconds` of a plain build, for the build under test."""
    return seconds * TIME_SCALE


def scaled_kb(kb):
    """`kb` KiB resident in a plain build, for the build under test."""
    return int(kb * MEMORY_SCALE)


def all_captures():
    out = []
    for d in sorted(os.listdir(DATA)):
        p = os.path.join(DATA, d)
        if os.path.isdir(p):
            out += [os.path.join(p, f) for f in sorted(os.listdir(p)) if f.endswith(".pcap")]
    return out


def capture(rel):
    return os.path.join(DATA, rel)


class Run:
    def __init__(self, rc, stdout, stderr, summary):
        self.rc, self.stdout, self.stderr, self.summary = rc, stdout, stderr, summary


def run_spanfeed(args, timeout=120, want_summary=True):
    with tempfile.TemporaryDirectory() as tmp:
        summary_path = os.path.join(tmp, "summary.json")
        cmd = [SPANFEED] + list(args)
        if "--metrics" not in args:
            cmd += ["--metrics", "off"]  # tests run one after another; keep port 9466 free
        if want_summary:
            cmd += ["--summary-json", summary_path]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=scaled(timeout), cwd=tmp)
        summary = None
        if want_summary and os.path.exists(summary_path):
            with open(summary_path) as f:
                summary = json.load(f)
        return Run(p.returncode, p.stdout, p.stderr, summary)


class SpanfeedTestCase(unittest.TestCase):
    def assertLedgerBalanced(self, s):
        """Checks every equation of the ledger here, not only the binary's verdict."""
        led = s["ledger"]
        rx = led["rx"]
        outcomes = sum(v for k, v in rx.items() if k != "received")
        self.assertEqual(rx["received"], outcomes, led)
        self.assertEqual(rx["delivered"], led["workers"]["received"], led)
        self.assertEqual(led["nic"]["ipackets"], rx["received"], led)
        self.assertEqual(sum(w["received"] for w in s["workers"]), rx["delivered"])
        self.assertEqual(sum(w["order_violations"] for w in s["workers"]), 0)
        self.assertTrue(led["balanced"], led["problems"])
        self.assertEqual(led["problems"], [])
