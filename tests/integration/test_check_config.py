"""spanfeed --check-config: validates a config without capturing (no EAL):
the shipped configs pass; each broken config fails with exit 2 and a
message that names the problem and where it is."""
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, SPANFEED, capture, scaled  # noqa: E402

BROKEN = [  # config body (a valid source is prepended), expected message
    ("rings:\n  sise: 64\n", "'rings.sise': unknown key (known here: burst, size)"),
    ("rings:\n  size: 1000\n", "rings.size must be a power of two"),
    ("lcores:\n  cpus: [999]\n", "lcores.cpus: CPU 999 does not exist or is not allowed"),
    ("lcores:\n  workers: lots\n", "'lcores.workers': cannot read 'lots'"),
    ("capture:\n  filter: 'tcp portt 1'\n", "filter 'tcp portt 1': can't parse filter expression"),
    ("job: records\noutputs: ['ftp:host']\n", "unknown kind 'ftp'"),
    ("job: records\noutputs: ['kafka:broker-without-topic']\n", "expected kafka:HOST:PORT[,HOST:PORT...]/TOPIC"),
    ("job: records\ndecode:\n  ports:\n    gopher: [70]\n", "'decode.ports.gopher': unknown protocol"),
    ("job: records\ndecode:\n  ports:\n    http: [70000]\n", "'decode.ports.http': ports are 1-65535"),
    ("flows_out: /tmp/x\n", "flows_out (--flows-out) needs the flows job"),
    ("gelf:\n  compression: brotli\n", "'gelf.compression': must be none, gzip or zlib"),
    ("metrics:\n  linger_s: -1\n", "'metrics.linger_s': must be >= 0"),
    ("mode: live\n", "'mode': unknown key"),
    ("decap:\n  max_depth: 12\n", "'decap.max_depth': must be between 1 and 8"),
    ("decap:\n  geneve_ports: [4789]\n", "UDP port 4789 is listed for both vxlan_ports and geneve_ports"),
    ("ip_fragments:\n  timeout_s: -1\n", "'ip_fragments.timeout_s': must be a number of seconds"),
]

# Configs that used to pass --check-config and then failed at start (after
# the EAL) or ran with a value silently replaced: now both the check and the
# start refuse them with exit 2, before the EAL.
FAILED_AT_START = [
    ("job: records\noutputs: ['jsonl:/nonexistent-dir/rt.jsonl']\n",
     "output jsonl:/nonexistent-dir/rt.jsonl (outputs / --output): directory '/nonexistent-dir' "
     "does not exist"),
    ("job: records\noutputs: ['kafka:127.0.0.1:1/t']\nkafka:\n  properties:\n    no.such.property: '1'\n",
     "kafka.properties: kafka property no.such.property=1: No such configuration property"),
    ("job: records\noutputs: ['kafka:127.0.0.1:1/t']\nkafka:\n  properties:\n    acks: banana\n",
     "kafka.properties: kafka property acks=banana: Invalid value"),
    ("job: records\noutputs: ['kafka:127.0.0.1:1/t']\nkafka:\n  properties:\n    acks: '1'\n",
     "`acks` must be set to `all` when `enable.idempotence` is true"),
    ("mempool:\n  size: 100\n", "mempool.size (--mempool-size) 100 is too small"),
    # lines: the source takes lines 1-2
    ("lcores:\n  workers: 1\n  rx: 1\n  workers: 2\n",
     ":6: 'lcores.workers': key given twice (lines 4 and 6)"),
    ("job: flows\njob: records\n", ":4: 'job': key given twice (lines 3 and 4)"),
]


def write_config(path, body):
    with open(path, "w") as f:
        f.write(f"capture:\n  pcap: {capture('http/httpv1.pcap')}\n" + body)


def check(path):
    return subprocess.run([SPANFEED, "--check-config", path], capture_output=True, text=True,
                          timeout=30)


class CheckConfig(unittest.TestCase):
    def test_shipped_configs_pass(self):
        # Checked where they are, from another directory: relative paths in a
        # config (demo.yaml's rules file) name files beside it, not in the cwd.
        with tempfile.TemporaryDirectory() as tmp:
            for name in ("spanfeed.yaml", "demo.yaml"):
                with self.subTest(config=name):
                    cfg = os.path.join(ROOT, "conf", name)
                    # the shipped files name no source: give one on the command line
                    p = subprocess.run([SPANFEED, "--check-config", cfg, "--pcap",
                                        capture("http/httpv1.pcap")],
                                       capture_output=True, text=True, timeout=30, cwd=tmp)
                    self.assertEqual(p.returncode, 0, p.stderr)
                    self.assertIn(f"{cfg}: OK: job records", p.stdout)
                    self.assertNotIn("EAL", p.stdout + p.stderr)
            p = subprocess.run([SPANFEED, "--check-config", os.path.join(ROOT, "conf", "demo.yaml"),
                                "--pcap", capture("http/httpv1.pcap")],
                               capture_output=True, text=True, timeout=30, cwd=tmp)
            self.assertIn(f"rules: {os.path.join(ROOT, 'conf', 'demo-rules.yaml')}: 4 rule(s)", p.stdout)

    def test_each_broken_config_names_its_problem(self):
        with tempfile.TemporaryDirectory() as tmp:
            for i, (body, msg) in enumerate(BROKEN):
                with self.subTest(body=body):
                    cfg = os.path.join(tmp, f"broken{i}.yaml")
                    with open(cfg, "w") as f:
                        if "capture:" in body:
                            f.write(body.replace("capture:\n", f"capture:\n  pcap: {capture('http/httpv1.pcap')}\n"))
                        else:
                            f.write(f"capture:\n  pcap: {capture('http/httpv1.pcap')}\n" + body)
                    p = check(cfg)
                    self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
                    self.assertIn(msg, p.stderr)
                    self.assertNotIn("EAL", p.stderr)

    def test_configs_that_failed_at_start_fail_the_check_and_the_start(self):
        with tempfile.TemporaryDirectory() as tmp:
            for i, (body, msg) in enumerate(FAILED_AT_START):
                with self.subTest(body=body):
                    cfg = os.path.join(tmp, f"late{i}.yaml")
                    write_config(cfg, body)
                    p = check(cfg)
                    self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
                    self.assertIn(msg, p.stderr)
                    self.assertNotIn("EAL", p.stderr)
                    summary = os.path.join(tmp, f"late{i}.json")
                    t0 = time.monotonic()
                    p = subprocess.run(["timeout", "30", SPANFEED, "-c", cfg, "--metrics", "off",
                                        "--summary-json", summary],
                                       capture_output=True, text=True, timeout=40)
                    self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
                    self.assertIn(msg, p.stderr)
                    self.assertLess(time.monotonic() - t0, scaled(10))
                    self.assertFalse(os.path.exists(summary), "nothing may run")

    def test_metrics_address_that_cannot_be_bound(self):
        with tempfile.TemporaryDirectory() as tmp, socket.socket() as held:
            held.bind(("127.0.0.1", 0))
            held.listen(1)
            port = held.getsockname()[1]
            cfg = os.path.join(tmp, "m.yaml")
            write_config(cfg, f"metrics:\n  listen: 127.0.0.1:{port}\n")
            p = check(cfg)
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            self.assertIn(f"metrics.listen (--metrics): metrics: cannot listen on 127.0.0.1:{port}",
                          p.stderr)
            p = subprocess.run(["timeout", "30", SPANFEED, "-c", cfg], capture_output=True,
                               text=True, timeout=40)
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            self.assertIn(f"metrics.listen (--metrics): metrics: cannot listen on 127.0.0.1:{port}",
                          p.stderr)
            held.close()  # free again: the same config passes
            p = check(cfg)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_rules_file_key_given_twice(self):
        with tempfile.TemporaryDirectory() as tmp:
            rules = os.path.join(tmp, "r.yaml")
            with open(rules, "w") as f:
                f.write("rules:\n  - id: a\n    pattern: abc\n    tag: x\n    tag: y\n")
            cfg = os.path.join(tmp, "c.yaml")
            write_config(cfg, f"job: records\nrules:\n  file: {rules}\n")
            p = check(cfg)
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            self.assertIn(f"{rules}:5: 'rules[0].tag': key given twice (lines 4 and 5)", p.stderr)

    def test_missing_capture_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = os.path.join(tmp, "c.yaml")
            with open(cfg, "w") as f:
                f.write("capture:\n  pcap: /nonexistent/trace.pcap\n")
            p = check(cfg)
            self.assertEqual(p.returncode, 2)
            self.assertIn("cannot open capture file '/nonexistent/trace.pcap'", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
