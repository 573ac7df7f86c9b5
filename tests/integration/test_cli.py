"""Command line and configuration: help, bad arguments and bad config give a
clear message and a non-zero exit (never a DPDK panic dump); a config file
can say everything the command line can."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, SPANFEED, SpanfeedTestCase, capture, run_spanfeed  # noqa: E402


def no_panic(testcase, r):
    for marker in ("PANIC", "Backtrace", "Segmentation", "terminate called"):
        testcase.assertNotIn(marker, r.stderr + r.stdout)


class Cli(SpanfeedTestCase):
    def test_help_explains_every_option(self):
        p = subprocess.run([SPANFEED, "--help"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        for opt in ("--pcap", "--iface", "--eal", "--workers", "--rx-lcores", "--ring-size",
                    "--burst", "--mempool-size", "--job", "--summary-json", "--config",
                    "--mode", "--duration", "--infinite", "--cpus"):
            self.assertIn(opt, p.stdout)

    def test_usage_errors_exit_2_with_message(self):
        cases = [
            ([], "no capture source"),
            (["--pcap", "/nonexistent/trace.pcap"], "cannot open capture file '/nonexistent/trace.pcap'"),
            (["--pcap", capture("http/httpv1.pcap"), "--ring-size", "1000"], "power of two"),
            (["--pcap", capture("http/httpv1.pcap"), "--workers", "0"], "--workers"),
            (["--pcap", capture("http/httpv1.pcap"), "--job", "count"], "--job"),
            (["--pcap", capture("http/httpv1.pcap"), "--iface", "lo"], "not both"),
            (["--infinite", "--iface", "lo"], "--infinite replays a capture file"),
            (["--pcap", capture("http/httpv1.pcap"), "--cpus", "0,x"], "'x' is not a CPU"),
            (["--bogus"], "bogus"),
        ]
        for args, msg in cases:
            with self.subTest(args=args):
                r = run_spanfeed(args, want_summary=False)
                self.assertEqual(r.rc, 2, r.stderr)
                self.assertIn(msg, r.stderr)
                no_panic(self, r)

    def test_runtime_errors_exit_1_without_panic(self):
        cases = [
            (["--pcap", capture("http/httpv1.pcap"), "--rx-lcores", "2"], "at most 1 RX queue"),
            (["--pcap", capture("http/httpv1.pcap"), "--eal", "--no-such-eal-flag"],
             "EAL initialisation failed"),
            (["--pcap", capture("http/httpv1.pcap"), "--eal", "-l 0-1"], "need 4 lcores"),
        ]
        for args, msg in cases:
            with self.subTest(args=args):
                r = run_spanfeed(args, want_summary=False)
                self.assertEqual(r.rc, 1, r.stderr)
                self.assertIn(msg, r.stderr)
                no_panic(self, r)

    def test_config_file_says_it_all(self):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = os.path.join(tmp, "spanfeed.yaml")
            summary = os.path.join(tmp, "out.json")
            with open(cfg, "w") as f:
                f.write(f"""
capture:
  pcap: {capture('mysql/171-mysql.pcap')}
lcores:
  workers: 3
rings:
  size: 256
  burst: 16
job: payload-sum
summary_json: {summary}
""")
            p = subprocess.run([SPANFEED, "-c", cfg, "-q", "--metrics", "off"], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            import json
            with open(summary) as f:
                s = json.load(f)
            self.assertEqual(len(s["workers"]), 3)
            self.assertEqual(s["rx_packets"], 1040)
            self.assertLedgerBalanced(s)
            # the command line overrides the file
            r = run_spanfeed(["-c", cfg, "-w", "1", "-q"])
            self.assertEqual(r.rc, 0, r.stderr)
            self.assertEqual(len(r.summary["workers"]), 1)

    def test_bad_config_file_names_key(self):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = os.path.join(tmp, "bad.yaml")
            with open(cfg, "w") as f:
                f.write(f"capture:\n  pcap: {capture('http/httpv1.pcap')}\nrings:\n  sise: 64\n")
            r = run_spanfeed(["-c", cfg], want_summary=False)
            self.assertEqual(r.rc, 2)
            self.assertIn(f"{cfg}:4: 'rings.sise': unknown key", r.stderr)

    def test_shipped_config_is_valid(self):
        conf = os.path.join(ROOT, "conf", "spanfeed.yaml")
        r = run_spanfeed(["-c", conf, "--pcap", capture("http/httpv1.pcap"), "-q"])
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertLedgerBalanced(r.summary)

    def test_default_job_is_records(self):
        # No --job: the records job, records as JSON lines on stdout, the
        # human summary on stderr.
        r = run_spanfeed(["--pcap", capture("http/httpv1.pcap")])
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(r.summary["job"], "records")
        emitted = sum(w["records"]["records_emitted"] for w in r.summary["workers"])
        self.assertGreater(emitted, 0)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), emitted, r.stdout)
        self.assertTrue(all(json.loads(l)["protocol"] == "http" for l in lines))
        self.assertIn("ledger balanced", r.stderr)
        self.assertLedgerBalanced(r.summary)
        # --flows-out alone implies the flows job
        with tempfile.TemporaryDirectory() as tmp:
            flows = os.path.join(tmp, "flows.jsonl")
            r = run_spanfeed(["--pcap", capture("http/httpv1.pcap"), "--flows-out", flows, "-q"])
            self.assertEqual(r.rc, 0, r.stderr)
            self.assertEqual(r.summary["job"], "flows")
            with open(flows) as f:
                self.assertGreater(len(f.read().splitlines()), 0)

    def test_demo_config_from_another_directory(self):
        # run_spanfeed runs in a fresh temporary directory: demo.yaml's rules
        # file (demo-rules.yaml, beside it) must still be found and applied.
        conf = os.path.join(ROOT, "conf", "demo.yaml")
        r = run_spanfeed(["-c", conf, "--pcap", capture("mysql/171-mysql.pcap"), "-q"])
        self.assertEqual(r.rc, 0, r.stderr)
        rules = r.summary["rules"]
        self.assertEqual(rules["file"], os.path.join(ROOT, "conf", "demo-rules.yaml"))
        self.assertEqual(rules["rules"], 4)
        # demo.yaml binds MySQL to 20130, where this capture's server listens
        self.assertEqual(rules["per_rule"]["sql-select"]["records"], 130)
        self.assertEqual(rules["records_tagged"], 130)
        self.assertLedgerBalanced(r.summary)

    def test_relative_paths_in_config_name_files_beside_it(self):
        with tempfile.TemporaryDirectory() as tmp:
            site, elsewhere = os.path.join(tmp, "site"), os.path.join(tmp, "elsewhere")
            os.makedirs(site)
            os.makedirs(elsewhere)
            shutil.copy(capture("mysql/171-mysql.pcap"), os.path.join(site, "trace.pcap"))
            shutil.copy(os.path.join(ROOT, "conf", "demo-rules.yaml"), os.path.join(site, "tags.yaml"))
            with open(os.path.join(site, "spanfeed.yaml"), "w") as f:
                f.write("capture:\n  pcap: trace.pcap\n"
                        "decode:\n  ports:\n    mysql: [20130]\n"
                        "rules:\n  file: tags.yaml\n"
                        "outputs: ['jsonl:records.jsonl']\n"
                        "summary_json: summary.json\n")
            p = subprocess.run([SPANFEED, "-c", "../site/spanfeed.yaml", "-q", "--metrics", "off"],
                               capture_output=True, text=True, timeout=60, cwd=elsewhere)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(os.listdir(elsewhere), [])
            with open(os.path.join(site, "summary.json")) as f:
                s = json.load(f)
            self.assertEqual(s["source"], "../site/trace.pcap")
            self.assertEqual(s["rx_packets"], 1040)
            self.assertEqual(s["rules"]["file"], "../site/tags.yaml")
            self.assertEqual(s["rules"]["records_tagged"], 130)
            with open(os.path.join(site, "records.jsonl")) as f:
                records = [json.loads(l) for l in f]
            self.assertEqual(len(records), sum(w["records"]["records_emitted"] for w in s["workers"]))
            self.assertEqual(sum("sql-read" in r["tags"] for r in records), 130)
            self.assertLedgerBalanced(s)


if __name__ == "__main__":
    unittest.main(verbosity=2)
