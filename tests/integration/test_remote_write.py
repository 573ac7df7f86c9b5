"""metrics.remote_write against a real Prometheus (Debian's, started here with
--web.enable-remote-write-receiver on a loopback port): after a capture run,
PromQL answers with the run's exact numbers. Then a store that refuses (400:
counted, never retried), one that never answers and one that is not there
(shutdown stays bounded), credentials on the wire, and bad settings (exit 2)."""
import http.server
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import SPANFEED, SpanfeedTestCase, capture, scaled  # noqa: E402

# Small captures of five protocols, merged into one run.
PARTS = ["dns/dns.pcap", "redis/redis-error.pcap", "http/httpv1.pcap", "http/http-mixed.pcap",
         "mysql/mysql-error.pcap", "memcached/memcached.pcap"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(tmp, remote_write):
    """A config file with metrics.remote_write set to these lines (YAML, indented 4)."""
    path = os.path.join(tmp, "spanfeed.yaml")
    with open(path, "w") as f:
        f.write("metrics:\n  listen: \"off\"\n  remote_write:\n")
        for line in remote_write:
            f.write("    " + line + "\n")
    return path


def run(args, timeout=60):
    t0 = time.monotonic()
    p = subprocess.run([SPANFEED] + args, capture_output=True, text=True, timeout=scaled(timeout))
    return p, time.monotonic() - t0


def rw_line(stderr):
    """The shutdown line 'remote_write URL: pushes ok=N ...; requests ok=N ...' as two dicts."""
    for line in stderr.splitlines():
        m = re.search(r"remote_write \S+: pushes (.*); requests (.*)$", line)
        if m:
            return tuple({k: int(v) for k, v in (kv.split("=") for kv in g.split())} for g in m.groups())
    raise AssertionError("no remote_write line in:\n" + stderr)


class Prometheus:
    """Debian's prometheus on 127.0.0.1:PORT with a throw-away TSDB, receiving remote writes."""

    def __init__(self, tmp):
        self.port = free_port()
        conf = os.path.join(tmp, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n  scrape_interval: 1m\n")  # no scrape jobs: remote writes only
        self.log = open(os.path.join(tmp, "prometheus.log"), "w")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={conf}", f"--storage.tsdb.path={os.path.join(tmp, 'tsdb')}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-remote-write-receiver",
             "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("prometheus did not become ready")
            time.sleep(0.1)

    @property
    def write_url(self):
        return f"http://127.0.0.1:{self.port}/api/v1/write"

    def query(self, promql):
        """An instant query's result as {frozenset(labels): value}."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return {frozenset(x["metric"].items()): float(x["value"][1]) for x in body["data"]["result"]}

    def scalar(self, promql):
        res = self.query(promql)
        assert len(res) == 1, (promql, res)
        return next(iter(res.values()))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class FakeStore:
    """An HTTP server on loopback that answers every POST with `status` and keeps what it got."""

    def __init__(self, status, body=b"out of bounds: sample too old", tls=None):
        self.requests = []
        store = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                store.requests.append((dict(self.headers), self.rfile.read(n)))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client that refused our certificate

        self.server = Server(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls is not None:  # (certificate, key)
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True,
                                                 do_handshake_on_connect=False)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/api/v1/write"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class RemoteWrite(SpanfeedTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="rw-test-")
        cls.pcap = os.path.join(cls.tmp, "merged.pcap")
        subprocess.run(["mergecap", "-F", "pcap", "-w", cls.pcap] + [capture(p) for p in PARTS], check=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def records_run(self, tmp, remote_write, extra=()):
        conf = write_config(tmp, remote_write)
        records = os.path.join(tmp, "records.jsonl")
        summary = os.path.join(tmp, "summary.json")
        p, took = run(["-c", conf, "--pcap", self.pcap, "--job", "records", "--output", f"jsonl:{records}",
                       "-w", "2", "-q", "--summary-json", summary] + list(extra))
        with open(records) as f:
            recs = [json.loads(line) for line in f if line.strip()]
        with open(summary) as f:
            s = json.load(f)
        return p, took, recs, s

    def test_prometheus_answers_with_the_run_numbers(self):
        with tempfile.TemporaryDirectory(prefix="rw-prom-") as tmp:
            prom = Prometheus(tmp)
            try:
                p, _, recs, s = self.records_run(tmp, [f"url: {prom.write_url}", "interval_s: 0.2",
                                                       "labels: {instance: rw-test, box: a1}"])
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertLedgerBalanced(s)
                pushes, requests = rw_line(p.stderr)
                self.assertGreaterEqual(pushes["ok"], 1, p.stderr)  # the final push at least
                self.assertEqual(pushes, {"ok": pushes["ok"], "rejected": 0, "dropped": 0, "abandoned": 0})
                self.assertEqual(requests["ok"], pushes["ok"])
                self.assertEqual(sum(requests.values()), pushes["ok"], p.stderr)
                # The newest samples are the final snapshot's: up 0, the ledger balanced.
                sel = '{instance="rw-test",box="a1",job="spanfeed"}'
                self.assertEqual(prom.scalar(f"spanfeed_up{sel}"), 0)
                self.assertEqual(prom.scalar(f"spanfeed_ledger_balanced{sel}"), 1)
                # Records per protocol and status: PromQL == the records the run wrote.
                want = Counter((r["protocol"], r["status"]) for r in recs)
                self.assertGreaterEqual(len({proto for proto, _ in want}), 4, want)
                got = prom.query(f"sum by (protocol, status) (spanfeed_roundtrips_total{sel}) > 0")
                got = {(dict(k)["protocol"], dict(k)["status"]): v for k, v in got.items()}
                self.assertEqual(got, {k: float(v) for k, v in want.items()})
                self.assertEqual(prom.scalar(f"sum(spanfeed_roundtrips_total{sel})"), len(recs))
                # The packet ledger: what RX received == the summary's.
                self.assertEqual(prom.scalar(f"sum(spanfeed_rx_packets_total{sel})"),
                                 s["ledger"]["rx"]["received"])
                # The histogram arrives whole: +Inf bucket == count, per protocol.
                inf = prom.query(f'spanfeed_roundtrip_latency_seconds_bucket{{le="+Inf",instance="rw-test"}}')
                cnt = prom.query('spanfeed_roundtrip_latency_seconds_count{instance="rw-test"}')
                self.assertEqual(sorted(inf.values()), sorted(cnt.values()))
                self.assertEqual(sum(cnt.values()), prom.scalar(
                    'sum(spanfeed_roundtrip_latency_seconds_count{instance="rw-test"})'))
                self.assertGreater(sum(cnt.values()), 0)
                # The pusher's own counters travel too; nothing was refused.
                self.assertEqual(prom.scalar(f'spanfeed_remote_write_pushes_total{{outcome="rejected",instance="rw-test"}}'), 0)
            finally:
                prom.stop()

    def test_periodic_pushes_of_a_live_run(self):
        with tempfile.TemporaryDirectory(prefix="rw-prom-") as tmp:
            prom = Prometheus(tmp)
            try:
                p, _, recs, s = self.records_run(tmp, [f"url: {prom.write_url}", "interval_s: 0.5",
                                                       "labels: {instance: rw-live}"],
                                                 extra=["--infinite", "--duration", "2.5"])
                self.assertEqual(p.returncode, 0, p.stderr)
                pushes, requests = rw_line(p.stderr)
                sel = '{instance="rw-live"}'
                # every accepted push is one sample of each series: Prometheus holds exactly pushes["ok"]
                self.assertGreaterEqual(pushes["ok"], 2, p.stderr)  # snapshots come once a second
                self.assertEqual(pushes["rejected"] + pushes["dropped"] + pushes["abandoned"], 0, p.stderr)
                self.assertEqual(prom.scalar(f"count_over_time(spanfeed_up{sel}[10m])"), pushes["ok"])
                self.assertEqual(prom.scalar(f"max_over_time(spanfeed_up{sel}[10m])"), 1)  # pushed while running
                self.assertEqual(prom.scalar(f"spanfeed_up{sel}"), 0)  # and the final one last
                # counters went forward between pushes and ended at the run's totals
                self.assertGreater(prom.scalar(f"sum(spanfeed_rx_packets_total{sel})"),
                                   prom.scalar(f"sum(min_over_time(spanfeed_rx_packets_total{sel}[10m]))"))
                self.assertEqual(prom.scalar(f"sum(spanfeed_rx_packets_total{sel})"), s["ledger"]["rx"]["received"])
                self.assertEqual(len(recs), sum(x["delivered"] for x in s["sinks"]))
                self.assertEqual(prom.scalar(f"sum(spanfeed_sink_records_total{{outcome=\"delivered\",instance=\"rw-live\"}})"),
                                 len(recs))
            finally:
                prom.stop()

    def test_refused_push_is_counted_and_not_retried(self):
        store = FakeStore(400)
        tok = os.path.join(self.tmp, "token")
        with open(tok, "w") as f:
            f.write("s3cret-token\n")
        try:
            with tempfile.TemporaryDirectory() as tmp:
                p, _, recs, _ = self.records_run(tmp, [f"url: {store.url}", "interval_s: 0.2",
                                                       f"bearer_token_file: {tok}"])
        finally:
            store.stop()
        self.assertEqual(p.returncode, 0, p.stderr)  # metrics are not records: the run delivered them
        pushes, requests = rw_line(p.stderr)
        n = len(store.requests)
        self.assertGreaterEqual(n, 1)
        # every push refused once: no request repeated, every one counted
        self.assertEqual(pushes, {"ok": 0, "rejected": n, "dropped": 0, "abandoned": 0}, p.stderr)
        self.assertEqual(requests, {"ok": 0, "rejected": n, "server_error": 0, "timeout": 0, "unreachable": 0})
        self.assertEqual(len({body for _, body in store.requests}), n)
        self.assertEqual(p.stderr.count("HTTP 400 (out of bounds: sample too old)"), n, p.stderr)
        headers, body = store.requests[-1]
        self.assertEqual(headers["Content-Encoding"], "snappy")
        self.assertEqual(headers["Content-Type"], "application/x-protobuf")
        self.assertEqual(headers["X-Prometheus-Remote-Write-Version"], "0.1.0")
        self.assertTrue(headers["User-Agent"].startswith("spanfeed/"), headers)
        self.assertEqual(headers["Authorization"], "Bearer s3cret-token")
        self.assertGreater(len(body), 100)

    def test_lingering_metrics_include_the_final_push(self):
        store = FakeStore(400)
        port = free_port()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                conf = write_config(tmp, [f"url: {store.url}", "interval_s: 0.2"])
                p = subprocess.Popen([SPANFEED, "-c", conf, "--pcap", self.pcap, "--job", "records", "--output",
                                      "jsonl:/dev/null", "-q", "--metrics", f"127.0.0.1:{port}",
                                      "--metrics-linger", "30"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                try:
                    lines = []
                    for line in p.stderr:  # the shutdown line comes before the linger
                        lines.append(line)
                        if "pushes ok=" in line:
                            break
                    pushes, _ = rw_line("".join(lines))
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                        text = r.read().decode()
                finally:
                    p.terminate()
                    p.wait(timeout=20)
                    p.stderr.close()
        finally:
            store.stop()
        n = len(store.requests)
        self.assertEqual(pushes["rejected"], n)
        self.assertIn(f'spanfeed_remote_write_pushes_total{{outcome="rejected"}} {n}\n', text)
        self.assertIn(f'spanfeed_remote_write_requests_total{{result="rejected"}} {n}\n', text)
        self.assertIn('spanfeed_remote_write_pending 0\n', text)
        self.assertIn('spanfeed_up 0\n', text)

    def test_server_error_is_retried_and_basic_auth_sent(self):
        store = FakeStore(503, b"overloaded")
        pw = os.path.join(self.tmp, "password")
        with open(pw, "w") as f:
            f.write("pa55\n")
        try:
            with tempfile.TemporaryDirectory() as tmp:
                p, took, _, _ = self.records_run(tmp, [f"url: {store.url}", "interval_s: 0.2", "timeout_s: 1.5",
                                                       "basic_auth: {username: spanfeed, password_file: " + pw + "}"])
        finally:
            store.stop()
        self.assertEqual(p.returncode, 0, p.stderr)
        pushes, requests = rw_line(p.stderr)
        n = len(store.requests)
        # retried with backoff (0.1, 0.2, 0.4 s...) until the shutdown flush's 1.5 s ran out
        self.assertEqual(pushes["ok"] + pushes["rejected"], 0, p.stderr)
        self.assertGreaterEqual(pushes["abandoned"], 1, p.stderr)
        # Every request the store answered is a server error, but the last one may still be in
        # flight when the shutdown flush's 1.5 s end (the backoff's fifth try falls at ~1.5 s):
        # then it counts as a timeout, so nothing goes uncounted either way.
        self.assertLessEqual(requests["timeout"], 1, p.stderr)
        self.assertEqual(requests, {"ok": 0, "rejected": 0, "server_error": n - requests["timeout"],
                                    "timeout": requests["timeout"], "unreachable": 0})
        # a 503 is retried: the same push (the same body) went more than once
        self.assertLess(len({body for _, body in store.requests}), n)
        self.assertEqual(store.requests[0][0]["Authorization"], "Basic c3BhbmZlZWQ6cGE1NQ==")  # spanfeed:pa55
        self.assertLess(took, scaled(30))

    def test_https_store_verified_against_ca_file(self):
        from test_gelf_export import make_pki
        with tempfile.TemporaryDirectory() as tmp:
            pki = make_pki(tmp)
            store = FakeStore(204, b"", tls=(pki["srv.pem"], pki["srv.key"]))
            try:
                p, _, _, _ = self.records_run(tmp, [f"url: {store.url}", f"ca_file: {pki['ca.pem']}"])
                self.assertEqual(p.returncode, 0, p.stderr)
                pushes, requests = rw_line(p.stderr)
                self.assertEqual(pushes["ok"], len(store.requests), p.stderr)
                self.assertGreaterEqual(pushes["ok"], 1, p.stderr)
                self.assertEqual(sum(requests.values()), requests["ok"], p.stderr)
                # a CA that did not sign the store's certificate: nothing goes, counted unreachable
                n = len(store.requests)
                p, _, _, _ = self.records_run(tmp, [f"url: {store.url}", f"ca_file: {pki['other-ca.pem']}",
                                                    "timeout_s: 0.5"])
                self.assertEqual(p.returncode, 0, p.stderr)
                pushes, requests = rw_line(p.stderr)
                self.assertEqual(len(store.requests), n)
                self.assertEqual(pushes["ok"], 0, p.stderr)
                self.assertGreaterEqual(requests["unreachable"], 1, p.stderr)
                self.assertIn("certificate", p.stderr)
            finally:
                store.stop()

    def test_store_not_answering_does_not_hang_shutdown(self):
        # a socket that accepts connections (backlog) and never answers; and a port nobody listens on
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        closed = free_port()
        try:
            for url, result in ((f"http://127.0.0.1:{silent.getsockname()[1]}/api/v1/write", "timeout"),
                                (f"http://127.0.0.1:{closed}/api/v1/write", "unreachable")):
                with self.subTest(url=url), tempfile.TemporaryDirectory() as tmp:
                    p, took, _, s = self.records_run(tmp, [f"url: {url}", "interval_s: 0.3", "timeout_s: 1"])
                    self.assertEqual(p.returncode, 0, p.stderr)
                    self.assertLedgerBalanced(s)
                    pushes, requests = rw_line(p.stderr)
                    self.assertEqual(pushes["ok"] + pushes["rejected"], 0, p.stderr)
                    self.assertGreaterEqual(pushes["abandoned"], 1, p.stderr)
                    self.assertGreaterEqual(requests[result], 1, p.stderr)
                    self.assertEqual(sum(requests.values()), requests[result], p.stderr)
                    # the run itself takes ~1 s here; the shutdown flush adds at most timeout_s
                    self.assertLess(took, scaled(15), p.stderr)
        finally:
            silent.close()

    def test_bad_settings_exit_2(self):
        with tempfile.TemporaryDirectory() as tmp:
            conf_tok = os.path.join(tmp, "tok")
            with open(conf_tok, "w") as f:
                f.write("t")
            cases = [
                (["url: ftp://x/y"], "must be an http:// or https:// URL"),
                (["url: http:///api/v1/write"], "with a host"),
                (["url: http://h/w", "interval_s: 0"], "'metrics.remote_write.interval_s': must be a number"),
                (["url: http://h/w", "timeout_s: -1"], "'metrics.remote_write.timeout_s'"),
                (["url: http://h/w", "queue: 0"], "'metrics.remote_write.queue': must be between 1"),
                (["interval_s: 5"], "'metrics.remote_write.url': is required"),
                (["url: http://h/w", "bearer_token_file: /nonexistent/token"], "cannot read '/nonexistent/token'"),
                (["url: http://h/w", "basic_auth: {username: u}"], "needs both username and password_file"),
                (["url: https://h/w", "ca_file: /nonexistent/ca.pem"], "cannot read '/nonexistent/ca.pem'"),
                (["url: http://h/w", "labels: {__x: y}"], "label name"),
                (["url: http://h/w", "labels: {9x: y}"], "label name"),
                (["url: http://h/w", "unknown: 1"], "unknown key"),
                (["url: http://h/w", f"bearer_token_file: {conf_tok}",
                  "basic_auth: {username: u, password_file: " + conf_tok + "}"], "not both"),
            ]
            for lines, want in cases:
                with self.subTest(lines=lines):
                    conf = write_config(tmp, lines)
                    p, _ = run(["--check-config", conf, "--pcap", self.pcap])
                    self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
                    self.assertIn(want, p.stderr)
            conf = write_config(tmp, ["url: http://127.0.0.1:9/api/v1/write", "interval_s: 30"])
            p, _ = run(["--check-config", conf, "--pcap", self.pcap])
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("remote_write http://127.0.0.1:9/api/v1/write every 30 s", p.stdout)


if __name__ == "__main__":
    unittest.main()
