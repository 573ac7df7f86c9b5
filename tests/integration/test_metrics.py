"""Prometheus /metrics on the control core, scraped over real HTTP during a
run (values move) and after it (--metrics-linger): the ledger read from
/metrics alone balances; /health answers; a busy port is a clear error."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import SPANFEED, SpanfeedTestCase, capture, scaled  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port, path="/metrics"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        text = r.read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$", line)
        if m:
            samples[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return text, samples


def total(samples, name, **labels):
    out = 0.0
    for (n, l), v in samples.items():
        if n == name and all(f'{k}="{val}"' in l for k, val in labels.items()):
            out += v
    return out


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_samples(text):
    """(name, frozenset of (label, value)) -> value; label values may hold '{' and '}'."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = SAMPLE.match(line)
        if m:
            labels = frozenset((k, v.replace('\\"', '"').replace("\\\\", "\\"))
                               for k, v in LABEL.findall(m.group(2) or ""))
            out[(m.group(1), labels)] = float(m.group(3))
    return out


def red_template(path):
    """docs/metrics.md: the HTTP path template (numeric, UUID and long hex segments are {id})."""
    path = re.split(r"[?#]", path)[0] or "/"

    def seg(s):
        hexd = re.fullmatch(r"[0-9a-fA-F]+", s or "x") is not None
        if re.fullmatch(r"[0-9]+", s or "x"):
            return "{id}"
        if hexd and (len(s) >= 16 or (len(s) >= 8 and re.search(r"[0-9]", s) and re.search(r"[a-fA-F]", s))):
            return "{id}"
        if re.fullmatch(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", s):
            return "{id}"
        return s
    return "/".join(seg(x) for x in path.split("/"))


def red_fingerprint(sql):
    s = re.sub(r"\s+", " ", sql).strip()
    return re.sub(r"\?(?: ?, ?\?)+", "?+", s)


def red_endpoint(r):
    """The endpoint a record's series carries (src/decode/<protocol>/descriptor.cc)."""
    q, a = r.get("request"), r.get("response") or {}
    if q is None:
        return "unknown"
    p = r["protocol"]
    if p == "http":
        e = q.get("method", "") + ("" if q.get("method") == "CONNECT" else " " + red_template(q.get("path", "")))
    elif p in ("mysql", "pgsql"):
        e = q.get("command", "") + (" " + red_fingerprint(q["normalized"]) if q.get("normalized") else "")
    elif p in ("redis", "memcached", "smtp"):
        e = q.get("command", "")
    elif p == "dns":
        e = q.get("qtype", "") + (" " + a["rcode"] if a.get("rcode") else "")
    elif p == "kafka":
        t = q.get("topics") or []
        e = q.get("api", "") + (" " + t[0] + ("+" if len(t) > 1 else "") if t else "")
    else:
        raise AssertionError(f"no endpoint rule for {p} in this test")
    e = "".join(c if 0x20 <= ord(c) < 0x7f else "?" for c in e)[:120]
    return e or "-"


class Metrics(SpanfeedTestCase):
    def test_scrape_during_and_after_run(self):
        port = free_port()
        p = subprocess.Popen([SPANFEED, "--pcap", capture("memcached/memcached.pcap"), "--infinite",
                              "--duration", str(scaled(3)), "--job", "records", "--output", "jsonl:/dev/null",
                              "-w", "2", "-q", "--metrics", f"127.0.0.1:{port}",
                              "--metrics-linger", str(scaled(20))],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            # start-up takes longer on a loaded machine: wait for the first packets
            deadline = time.monotonic() + scaled(20)
            while True:
                time.sleep(0.2)
                try:
                    text, during1 = scrape(port)
                except OSError:
                    continue
                if total(during1, "spanfeed_rx_packets_total") > 0 or time.monotonic() > deadline:
                    break
            time.sleep(1.0)
            _, during2 = scrape(port)
            self.assertEqual(total(during1, "spanfeed_up"), 1)
            self.assertIn("# HELP spanfeed_rx_outcome_total", text)
            self.assertIn("# TYPE spanfeed_roundtrip_latency_seconds histogram", text)
            self.assertGreater(total(during2, "spanfeed_rx_packets_total"),
                               total(during1, "spanfeed_rx_packets_total"))
            _, health = scrape(port, "/health")
            self.assertEqual(total(health, "spanfeed_healthy"), 1)
            # after the run: final numbers while lingering
            deadline = time.monotonic() + scaled(10)
            while True:
                _, after = scrape(port)
                if total(after, "spanfeed_up") == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            self.assertEqual(total(after, "spanfeed_up"), 0)
            after_text, _ = scrape(port)
        finally:
            p.terminate()  # ends the linger
            p.wait(timeout=20)
        self.assertEqual(p.returncode, 0)
        rx = total(after, "spanfeed_rx_packets_total")
        self.assertGreater(rx, 1000)
        self.assertEqual(rx, total(after, "spanfeed_rx_outcome_total"))
        self.assertEqual(rx, total(after, "spanfeed_nic_rx_packets_total"))
        # the PMD's xstats are published too (net_pcap: rx_good_packets == ipackets)
        self.assertEqual(rx, total(after, "spanfeed_nic_xstat_total", xstat="rx_good_packets"))
        self.assertEqual(total(after, "spanfeed_rx_outcome_total", outcome="delivered"),
                         total(after, "spanfeed_worker_packets_total"))
        self.assertEqual(total(after, "spanfeed_worker_packets_total"),
                         total(after, "spanfeed_reassembly_segments_total"))
        self.assertEqual(total(after, "spanfeed_flows_created_total"),
                         total(after, "spanfeed_flows_closed_total"))
        rts = total(after, "spanfeed_roundtrips_total")
        self.assertGreater(rts, 0)
        sink = (total(after, "spanfeed_sink_records_total") +
                total(after, "spanfeed_records_dropped_total"))
        self.assertEqual(rts, sink)
        self.assertEqual(total(after, "spanfeed_sink_queued"), 0)
        self.assertEqual(total(after, "spanfeed_ledger_balanced"), 1)
        # Prometheus's own linter has nothing to say about the full scrape
        lint = subprocess.run(["promtool", "check", "metrics"], input=after_text,
                              capture_output=True, text=True)
        self.assertEqual((lint.returncode, lint.stdout + lint.stderr), (0, ""))
        # histogram: +Inf bucket == count
        self.assertEqual(total(after, "spanfeed_roundtrip_latency_seconds_bucket", le="+Inf"),
                         total(after, "spanfeed_roundtrip_latency_seconds_count"))

    def test_final_numbers_survive_the_stopping_signal(self):
        # systemctl stop: SIGTERM ends the capture; the final numbers stay up
        # for --metrics-linger; a second signal ends the process.
        port = free_port()
        p = subprocess.Popen([SPANFEED, "--job", "payload-sum", "--pcap", capture("memcached/memcached.pcap"), "--infinite",
                              "-w", "2", "-q", "--metrics", f"127.0.0.1:{port}",
                              "--metrics-linger", str(scaled(30))],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(2)
            # a slow build (scripts/tsan.sh) may take longer to start: wait for the first packets
            deadline = time.monotonic() + scaled(20)
            while time.monotonic() < deadline:
                try:
                    if total(scrape(port)[1], "spanfeed_rx_packets_total") > 16:
                        break
                except OSError:
                    pass
                time.sleep(0.1)
            p.send_signal(signal.SIGTERM)
            after = {}
            deadline = time.monotonic() + scaled(10)
            while time.monotonic() < deadline:
                time.sleep(0.1)
                try:
                    _, after = scrape(port)
                except OSError:
                    continue
                if total(after, "spanfeed_up") == 0:
                    break
            self.assertIsNone(p.poll(), "the stopping signal also ended the linger")
            self.assertEqual(total(after, "spanfeed_up"), 0)
            self.assertEqual(total(after, "spanfeed_ledger_balanced"), 1)
            self.assertGreater(total(after, "spanfeed_rx_packets_total"), 16)
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=10)
        self.assertEqual(p.returncode, 0)

    def test_decode_loss_counters(self):
        """Counters that say where requests and bytes went without a record, exact and equal to the
        summary's: an overlap conflict, a start line cut at close, 1,100 pipelined requests over the
        pending cap of 1,024, a Redis request refused for its bulk length (one resync)."""
        import hostile_gen as hg
        cap = hg.overlap_conflict()  # one overlap conflict (HTTP, port 40400)
        c = hg.Tcp(cap, 40470, 80).handshake()
        c.send(True, hg.HTTP_REQ * 1100).send(False, hg.HTTP_RESP * 1100).close()
        hg.Tcp(cap, 40471, 80).handshake().send(True, b"GET /cut HT").close()  # a start line cut by the close
        # a Redis bulk length no server takes: "abc\r\n" skipped up to the next command (one resync)
        hg.Tcp(cap, 40472, 6379).handshake().send(True, hg.REDIS_HUGE_BULK + b"\r\n" + hg.REDIS_REQ).close()
        port = free_port()
        with tempfile.TemporaryDirectory() as tmp:
            pcap, summ = os.path.join(tmp, "in.pcap"), os.path.join(tmp, "summary.json")
            with open(pcap, "wb") as f:
                f.write(cap.to_bytes())
            p = subprocess.Popen([SPANFEED, "--pcap", pcap, "--job", "records", "--output", "jsonl:/dev/null",
                                  "-w", "1", "-q", "--metrics", f"127.0.0.1:{port}", "--metrics-linger", str(scaled(20)),
                                  "--summary-json", summ],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                after = {}
                deadline = time.monotonic() + scaled(20)
                while time.monotonic() < deadline:
                    time.sleep(0.1)
                    try:
                        text, after = scrape(port)
                    except OSError:
                        continue
                    if after.get(("spanfeed_up", "")) == 0:  # absent before the first snapshot
                        break
                self.assertEqual(after.get(("spanfeed_up", "")), 0)
            finally:
                p.terminate()  # ends the linger
                p.wait(timeout=20)
                err = p.stderr.read()
                p.stderr.close()
            self.assertEqual(p.returncode, 0, err)
            with open(summ) as f:
                s = json.load(f)
        for family in ("reassembly_overlap_conflicts_total", "partial_at_close_total",
                       "responses_of_evicted_total", "decode_resyncs_total", "decode_resync_skipped_bytes_total"):
            self.assertIn(f"# HELP spanfeed_{family} ", text)
        rec = s["workers"][0]["records"]
        self.assertEqual(total(after, "spanfeed_reassembly_overlap_conflicts_total"), 1)
        self.assertEqual(s["workers"][0]["reassembly"]["overlap_conflicts"], 1)
        self.assertEqual(total(after, "spanfeed_partial_at_close_total"), 1)
        self.assertEqual(rec["partial_at_close"], 1)
        self.assertEqual(total(after, "spanfeed_responses_of_evicted_total"), 1100 - 1024)
        self.assertEqual(rec["responses_of_evicted"], 1100 - 1024)
        self.assertEqual(total(after, "spanfeed_request_timeouts_total", cause="overflow"), 1100 - 1024)
        # the refused GET and the GET after it wait for replies that never come
        self.assertEqual(total(after, "spanfeed_request_timeouts_total", cause="close"), 2)
        self.assertEqual(total(after, "spanfeed_roundtrips_total", status="unmatched"), 0)
        self.assertEqual(total(after, "spanfeed_roundtrips_total", status="ok"), 2 + 1024)
        self.assertEqual(total(after, "spanfeed_decode_resyncs_total"), 1)
        self.assertEqual(rec["resyncs"], 1)
        self.assertEqual(total(after, "spanfeed_decode_resync_skipped_bytes_total"), len(b"abc\r\n"))
        self.assertEqual(rec["resync_skipped_bytes"], len(b"abc\r\n"))
        self.assertEqual(total(after, "spanfeed_ledger_balanced"), 1)

    def test_red_series_equal_the_records(self):
        """RED series after a run over golden captures (MySQL, Redis, DNS, HTTP) merged with a
        crafted HTTP capture (ids in paths, 4xx/5xx, a request without reply): per series, the
        requests, errors, bytes and duration counts equal those of the records the same run
        wrote; a service name from red.services; DNS without the server label; promtool clean."""
        import hostile_gen as hg
        cap = hg.Capture()
        c = hg.Tcp(cap, 40600, 80).handshake()
        for i, (path, code) in enumerate([("/users/42", 200), ("/users/43?x=1", 200), ("/users/44", 404),
                                          ("/orders/550e8400-e29b-41d4-a716-446655440000/items", 500),
                                          ("/health", 200), ("/blob/0123456789abcdef0123", 200)]):
            body = b"x" * i
            c.send(True, f"GET {path} HTTP/1.1\r\nHost: shop\r\n\r\n".encode())
            c.send(False, f"HTTP/1.1 {code} X\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        c.send(True, b"GET /users/45 HTTP/1.1\r\nHost: shop\r\n\r\n").close()  # no reply: timeout
        port = free_port()
        with tempfile.TemporaryDirectory() as tmp:
            crafted, merged = os.path.join(tmp, "crafted.pcap"), os.path.join(tmp, "merged.pcap")
            with open(crafted, "wb") as f:
                f.write(cap.to_bytes())
            parts = [capture(x) for x in ("mysql/171-mysql.pcap", "mysql/mysql-error.pcap", "redis/redis.pcap",
                                          "redis/redis-error.pcap", "dns/nxdomain.pcap", "dns/dns.pcap",
                                          "http/httpv1.pcap", "http/sw8.pcap")]
            subprocess.run(["mergecap", "-F", "pcap", "-w", merged, crafted] + parts, check=True)
            conf, out = os.path.join(tmp, "spanfeed.yaml"), os.path.join(tmp, "records.jsonl")
            with open(conf, "w") as f:
                f.write("decode:\n  ports:\n    mysql: [3306, 20130]\n"
                        "red:\n  services:\n    deepflow-db: 172.20.1.128:20130\n"
                        "  protocols:\n    dns: {labels: [endpoint, status]}\n")
            p = subprocess.Popen([SPANFEED, "--config", conf, "--pcap", merged, "--job", "records",
                                  "--output", f"jsonl:{out}", "-w", "2", "-q", "--metrics", f"127.0.0.1:{port}",
                                  "--metrics-linger", str(scaled(20))],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                after, text = {}, ""
                deadline = time.monotonic() + scaled(30)
                while time.monotonic() < deadline:
                    time.sleep(0.1)
                    try:
                        text, _ = scrape(port)
                    except OSError:
                        continue
                    after = parse_samples(text)
                    if after.get(("spanfeed_up", frozenset())) == 0:
                        break
                self.assertEqual(after.get(("spanfeed_up", frozenset())), 0)
            finally:
                p.terminate()
                p.wait(timeout=20)
                err = p.stderr.read()
                p.stderr.close()
            self.assertEqual(p.returncode, 0, err)
            with open(out) as f:
                records = [json.loads(line) for line in f]
        # expected series from the records
        want = {}
        for r in records:
            labels = {"protocol": r["protocol"], "endpoint": red_endpoint(r), "status": r["status"]}
            if r["protocol"] != "dns":
                srv = f'{r["server"]["ip"]}:{r["server"]["port"]}'
                labels["server"] = "deepflow-db" if srv == "172.20.1.128:20130" else srv
            key = frozenset(labels.items())
            w = want.setdefault(key, {"requests": 0, "errors": 0, "req": 0, "resp": 0, "lat": 0, "sum": 0})
            w["requests"] += 1
            w["errors"] += r["status"] in ("error", "timeout")
            w["req"] += (r["request"] or {}).get("bytes", 0)
            w["resp"] += (r["response"] or {}).get("bytes", 0)
            if r["latency_us"] is not None:
                w["lat"] += 1
                w["sum"] += r["latency_us"]
        self.assertGreater(len(records), 400)
        self.assertLessEqual({"http", "mysql", "redis", "dns"}, {r["protocol"] for r in records})
        got = {lab: v for (n, lab), v in after.items() if n == "spanfeed_red_requests_total"}
        self.assertEqual(set(got), set(want))
        for key, w in want.items():
            self.assertEqual(got[key], w["requests"], dict(key))
            self.assertEqual(after[("spanfeed_red_errors_total", key)], w["errors"], dict(key))
            self.assertEqual(after[("spanfeed_red_request_bytes_total", key)], w["req"], dict(key))
            self.assertEqual(after[("spanfeed_red_response_bytes_total", key)], w["resp"], dict(key))
            self.assertEqual(after[("spanfeed_red_duration_seconds_count", key)], w["lat"], dict(key))
            self.assertEqual(after[("spanfeed_red_duration_seconds_bucket", key | {("le", "+Inf")})], w["lat"])
            self.assertAlmostEqual(after[("spanfeed_red_duration_seconds_sum", key)], w["sum"] / 1e6, places=6)
        # the crafted series, spelled out
        def series(endpoint, status):
            return frozenset({"protocol": "http", "server": "10.1.0.2:80", "endpoint": endpoint,
                              "status": status}.items())
        self.assertEqual(got[series("GET /users/{id}", "ok")], 2)
        self.assertEqual(got[series("GET /users/{id}", "error")], 1)
        self.assertEqual(got[series("GET /users/{id}", "timeout")], 1)
        self.assertEqual(got[series("GET /orders/{id}/items", "error")], 1)
        self.assertEqual(got[series("GET /blob/{id}", "ok")], 1)
        self.assertEqual(sum(got.values()), len(records))
        roundtrips = sum(v for (n, _), v in after.items() if n == "spanfeed_roundtrips_total")
        self.assertEqual(sum(got.values()) + after[("spanfeed_red_skipped_records_total", frozenset())], roundtrips)
        self.assertIn(frozenset({"protocol": "mysql", "server": "deepflow-db", "endpoint": "COM_PING",
                                 "status": "ok"}.items()), got)
        self.assertEqual(after[("spanfeed_red_folded_records_total", frozenset({("stage", "worker")}))], 0)
        self.assertEqual(after[("spanfeed_red_folded_records_total", frozenset({("stage", "export")}))], 0)
        self.assertEqual(after[("spanfeed_red_series", frozenset())], len(want))
        for family in ("requests_total", "errors_total", "duration_seconds", "folded_records_total"):
            self.assertIn(f"# HELP spanfeed_red_{family} ", text)
        lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        self.assertEqual((lint.returncode, lint.stdout + lint.stderr), (0, ""))

    def test_busy_port_is_a_clear_error(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            r = subprocess.run([SPANFEED, "--pcap", capture("http/httpv1.pcap"), "-q",
                                "--metrics", f"127.0.0.1:{port}"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)  # a configuration error, before the EAL
        self.assertIn(f"metrics.listen (--metrics): metrics: cannot listen on 127.0.0.1:{port}",
                      r.stderr)

    def test_run_ends_without_waiting_for_the_http_server(self):
        # civetweb's listener looks at its stop flag between 2 s polls: stopping the server
        # once made every run with /metrics served (the default) end 2 s late. A plain build
        # stops it in ~10 ms; the bound leaves room for a loaded box, not for a 2 s poll.
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "r.jsonl")
            for linger in ("0", "0.2"):
                with self.subTest(linger=linger):
                    start = time.monotonic()
                    r = subprocess.run([SPANFEED, "--pcap", capture("http/httpv1.pcap"), "-q",
                                        "--output", f"jsonl:{out}", "--metrics", "127.0.0.1:0",
                                        "--metrics-linger", linger], capture_output=True, text=True)
                    took = time.monotonic() - start
                    self.assertEqual(r.returncode, 0, r.stderr)
                    self.assertLess(took, float(linger) + scaled(1.5), r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
