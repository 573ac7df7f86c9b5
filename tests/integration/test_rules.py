"""Rules (Hyperscan) through the whole pipeline: the records a rule
tags are exactly the messages tshark finds (reference captures and a crafted
keep-alive/pipelined capture with traps for side and protocols); a pattern
split across TCP segments is found on a flow detected by payload, a capture
gap restarts the scan; built-in and user redaction rewrite exported fields
exactly (and a config switch turns cards off); a broken rules file is a
usage error before capture and in --check-config; SIGHUP reloads a good file
(a retired rule's count freezes) and refuses a broken or missing one while the
old set keeps counting."""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, SPANFEED, SpanfeedTestCase, capture, run_spanfeed  # noqa: E402


# ---------------------------------------------------------------- a tiny pcap writer

def _csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


SYN, FIN, PSH, ACK = 0x02, 0x01, 0x08, 0x10


def tcp_frame(src, sport, dst, dport, seq, ack, flags, payload=b""):
    """Ethernet/IPv4/TCP frame with correct IP and TCP checksums."""
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags,
                      65535, 0, 0)
    pseudo = s + d + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
    tcp = tcp[:16] + struct.pack("!H", _csum(pseudo + tcp + payload)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 1, 0x4000, 64, 6, 0, s, d)
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + tcp + payload


class Capture:
    def __init__(self, t0=1700000000.0):
        self.frames, self.t = [], t0

    def add(self, frame):
        self.t += 0.001
        self.frames.append((self.t, frame))

    def write(self, path):
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet
            for t, fr in self.frames:
                sec = int(t)
                usec = int(round((t - sec) * 1e6))
                f.write(struct.pack("<IIII", sec, usec, len(fr), len(fr)) + fr)


class Conn:
    """One TCP connection: handshake on creation, then data segments with
    correct seq/ack; lost=True advances the sequence space without writing
    the segment (a capture loss: the peer's ACKs still cover it)."""

    def __init__(self, cap, client, cport, server, sport):
        self.cap, self.c, self.cp, self.s, self.sp = cap, client, cport, server, sport
        self.cseq, self.sseq = 1000, 70000
        cap.add(tcp_frame(client, cport, server, sport, self.cseq, 0, SYN))
        self.cseq += 1
        cap.add(tcp_frame(server, sport, client, cport, self.sseq, self.cseq, SYN | ACK))
        self.sseq += 1
        cap.add(tcp_frame(client, cport, server, sport, self.cseq, self.sseq, ACK))

    def client(self, data, lost=False):
        if not lost:
            self.cap.add(tcp_frame(self.c, self.cp, self.s, self.sp, self.cseq, self.sseq, PSH | ACK, data))
        self.cseq += len(data)

    def server(self, data, lost=False):
        if not lost:
            self.cap.add(tcp_frame(self.s, self.sp, self.c, self.cp, self.sseq, self.cseq, PSH | ACK, data))
        self.sseq += len(data)

    def close(self):
        self.cap.add(tcp_frame(self.c, self.cp, self.s, self.sp, self.cseq, self.sseq, FIN | ACK))
        self.cseq += 1
        self.cap.add(tcp_frame(self.s, self.sp, self.c, self.cp, self.sseq, self.cseq, FIN | ACK))
        self.sseq += 1
        self.cap.add(tcp_frame(self.c, self.cp, self.s, self.sp, self.cseq, self.sseq, ACK))


def http_response(status, version="1.1", body=b""):
    reason = {200: "OK", 201: "Created", 404: "Not Found", 500: "Internal Server Error"}[status]
    return (f"HTTP/{version} {status} {reason}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


# ---------------------------------------------------------------- helpers

def rules_yaml(rules):
    """A rules file; every value written as a JSON string (valid YAML)."""
    out = ["rules:"]
    for r in rules:
        first = True
        for k, v in r.items():
            val = json.dumps(v) if not isinstance(v, bool) else str(v).lower()
            out.append(("  - " if first else "    ") + f"{k}: {val}")
            first = False
    return "\n".join(out) + "\n"


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)  # SIGHUP must never see half a file


def load_jsonl(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    samples = {}
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$", line)
        if m and not line.startswith("#"):
            samples[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return samples


def metric(samples, name, **labels):
    """The one sample of `name` with exactly these labels (None if absent)."""
    want = "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else ""
    return samples.get((name, want))


def detect_totals(s):
    tot = Counter()
    by_payload = Counter()
    for w in s["workers"]:
        d = w["records"]["detect"]
        for k in ("by_port", "by_sniff", "unknown", "no_decoder", "no_data", "signature_rejected"):
            tot[k] += d[k]
        by_payload.update(d["by_payload_protocol"])
    return tot, dict(by_payload)


def tshark_http(path, ports):
    """HTTP request methods and (version, status) of responses, as tshark
    dissects each segment (no desegmentation: every start line is seen once,
    pipelined messages in one segment included)."""
    cmd = ["tshark", "-n", "-r", path, "-o", "tcp.desegment_tcp_streams:FALSE",
           "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,",
           "-Y", "http", "-e", "http.request.method", "-e", "http.response.version",
           "-e", "http.response.code"]
    for p in ports:
        cmd += ["-d", f"tcp.port=={p},http"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    methods, responses = Counter(), Counter()
    for line in out.splitlines():
        m, v, c = (line.split("\t") + ["", "", ""])[:3]
        methods.update(x for x in m.split(",") if x)
        vs, cs = [x for x in v.split(",") if x], [x for x in c.split(",") if x]
        assert len(vs) == len(cs), line
        responses.update(zip(vs, (int(x) for x in cs)))
    return methods, responses


# ---------------------------------------------------------------- 1. tags vs tshark

ORACLE_RULES = [
    {"id": "get", "pattern": r"GET /\S* HTTP/1\.[01]\r\n", "side": "request", "protocols": ["http"]},
    {"id": "post", "pattern": r"POST /\S* HTTP/1\.[01]\r\n", "side": "request", "protocols": ["http"]},
    {"id": "ok11", "pattern": r"HTTP/1\.1 200 ", "side": "response", "protocols": ["http"]},
    {"id": "ok10", "pattern": r"HTTP/1\.0 200 ", "side": "response", "protocols": ["http"]},
    # starts in one pipelined request and ends in the next: belongs to the second
    {"id": "boundary", "pattern": r"Host: pipe\r\n\r\nPOST", "side": "request"},
    # the same text as ok11 inside a Redis value: counted only for this rule
    {"id": "redis-echo", "pattern": r"HTTP/1\.1 200 ", "side": "response", "protocols": ["redis"]},
]
ORACLE_IDS = [r["id"] for r in ORACLE_RULES]

# Reference captures with HTTP/1.x exchanges; servers off the standard ports
# are told to tshark with decode-as (spanfeed finds them by payload).
REFERENCE = ["http/sw8.pcap", "http/http-mixed.pcap", "http/httpv1.pcap", "http/client-ip.pcap",
             "http/istio-tcp-frag.pcap"]
REFERENCE_PORTS = [20880, 8080, 9080]

METHODS = ["GET", "POST", "GET", "DELETE", "PUT"]
STATUSES = [200, 404, 200, 500, 201, 200]


def keepalive_capture(path):
    """3 keep-alive connections x 4 exchanges on 8080, a pipelined connection,
    a Redis connection. Traps: request bodies hold "HTTP/1.1 200 OK", 404
    bodies hold request lines, Redis carries both. Returns the exchanges."""
    cap = Capture()
    exchanges = []
    for i in range(3):
        c = Conn(cap, "10.0.1.1", 42000 + i, "10.0.1.2", 8080)
        for j in range(4):
            k = i * 4 + j
            method, status = METHODS[k % 5], STATUSES[k % 6]
            version = "1.0" if k in (5, 9) else "1.1"
            if method in ("POST", "PUT"):
                body = b'{"note":"HTTP/1.1 200 OK"}'
                req = (f"{method} /api/{k} HTTP/1.1\r\nHost: api\r\nContent-Length: {len(body)}\r\n\r\n"
                       ).encode() + body
            else:
                req = f"{method} /api/{k} HTTP/1.1\r\nHost: api\r\n\r\n".encode()
            c.client(req)
            trap = b"GET /trap HTTP/1.1\r\nPOST /trap HTTP/1.0\r\n" if status == 404 else b"{}"
            c.server(http_response(status, version, trap))
            exchanges.append((method, version, status))
        c.close()
    p = Conn(cap, "10.0.1.1", 42100, "10.0.1.2", 8080)
    p.client(b"GET /p1 HTTP/1.1\r\nHost: pipe\r\n\r\nPOST /p2 HTTP/1.1\r\nHost: pipe\r\nContent-Length: 0\r\n\r\n")
    p.server(http_response(200) + http_response(404))
    exchanges += [("GET", "1.1", 200), ("POST", "1.1", 404)]
    p.close()
    r = Conn(cap, "10.0.1.1", 42200, "10.0.1.3", 6379)
    v = b"GET /r HTTP/1.1\r\n"
    r.client(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n" % (len(v), v))
    r.server(b"+OK\r\n")
    r.client(b"*2\r\n$3\r\nGET\r\n$2\r\nk2\r\n")
    r.server(b"$15\r\nHTTP/1.1 200 OK\r\n")
    r.close()
    cap.write(path)
    return exchanges


class TagsVsTshark(SpanfeedTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.rules = os.path.join(cls.tmp.name, "oracle-rules.yaml")
        write(cls.rules, rules_yaml(ORACLE_RULES))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_rules(self, pcap, workers=2):
        out = os.path.join(self.tmp.name, "records.jsonl")
        r = run_spanfeed(["--pcap", pcap, "--job", "records", "-w", str(workers), "-q",
                          "--rules", self.rules, "--output", f"jsonl:{out}"])
        self.assertEqual(r.rc, 0, r.stderr)
        records = load_jsonl(out)
        os.remove(out)
        s = r.summary
        self.assertLedgerBalanced(s)
        self.assertEqual(s["ledger"]["records"]["emitted"], len(records))
        ru = s["rules"]
        h = ru["hits"]
        self.assertEqual(h["stored"], h["attributed"] + h["discarded"] + h["pending"], h)
        self.assertEqual(h["dropped"], 0)
        self.assertEqual(h["pending"], 0)
        self.assertEqual((ru["version"], ru["rules"], ru["builtin"]), (1, len(ORACLE_RULES), 3))
        self.assertEqual(ru["streams_exhausted"], 0)
        self.assertEqual(ru["scan_errors"], 0)
        self.assertEqual(ru["records_tagged"], sum(1 for x in records if x["tags"]))
        return records, ru

    def check_each_record(self, records):
        for x in records:
            req, resp = x.get("request") or {}, x.get("response") or {}
            http = x["protocol"] == "http"
            want = set()
            if http and req.get("method") in ("GET", "POST"):
                want.add(req["method"].lower())
            if http and resp.get("status_code") == 200:
                want.add("ok" + resp["version"].replace(".", ""))
            if http and req.get("host") == "pipe" and req.get("method") == "POST":
                want.add("boundary")
            if x["protocol"] == "redis" and resp.get("type") == "bulk":
                want.add("redis-echo")
            self.assertEqual(sorted(x["tags"]), sorted(want), x)

    def test_reference_captures_tags_equal_tshark(self):
        got, want = Counter(), Counter()
        for rel in REFERENCE:
            with self.subTest(capture=rel):
                methods, responses = tshark_http(capture(rel), REFERENCE_PORTS)
                records, ru = self.run_rules(capture(rel))
                self.check_each_record(records)
                tags = Counter(t for x in records for t in x["tags"])
                expect = {"get": methods["GET"], "post": methods["POST"],
                          "ok11": responses[("HTTP/1.1", 200)], "ok10": responses[("HTTP/1.0", 200)],
                          "boundary": 0, "redis-echo": 0}
                for rid in ORACLE_IDS:
                    self.assertEqual(tags[rid], expect[rid], rid)
                    pr = ru["per_rule"][rid]
                    # every start line matches once and tags its own record
                    self.assertEqual((pr["matches"], pr["records"], pr["redactions"], pr["active"]),
                                     (expect[rid], expect[rid], 0, True), rid)
                self.assertEqual(ru["hits"]["attributed"], sum(expect.values()))
                got.update(tags)
                want.update(expect)
        # the oracle itself: 5 POST, 2 GET, 6 HTTP/1.1 200, 1 HTTP/1.0 200 (istio)
        self.assertEqual(dict(+want), {"get": 2, "post": 5, "ok11": 6, "ok10": 1})
        self.assertEqual(+got, +want)

    def test_crafted_keepalive_pipelined_and_traps(self):
        pcap = os.path.join(self.tmp.name, "keepalive.pcap")
        exchanges = keepalive_capture(pcap)
        methods, responses = tshark_http(pcap, [8080])
        by_construction = {
            "get": sum(1 for m, _, _ in exchanges if m == "GET"),
            "post": sum(1 for m, _, _ in exchanges if m == "POST"),
            "ok11": sum(1 for _, v, s in exchanges if (v, s) == ("1.1", 200)),
            "ok10": sum(1 for _, v, s in exchanges if (v, s) == ("1.0", 200)),
        }
        self.assertEqual(by_construction, {"get": 6, "post": 4, "ok11": 6, "ok10": 1})
        self.assertEqual(by_construction, {"get": methods["GET"], "post": methods["POST"],
                                           "ok11": responses[("HTTP/1.1", 200)],
                                           "ok10": responses[("HTTP/1.0", 200)]})
        expect = dict(by_construction, boundary=1)
        expect["redis-echo"] = 1
        for workers in (1, 2):
            with self.subTest(workers=workers):
                records, ru = self.run_rules(pcap, workers)
                self.assertEqual(len(records), len(exchanges) + 2)
                self.assertEqual(sum(1 for x in records if x["protocol"] == "http"), 14)
                self.check_each_record(records)
                tags = Counter(t for x in records for t in x["tags"])
                for rid in ORACLE_IDS:
                    pr = ru["per_rule"][rid]
                    self.assertEqual((tags[rid], pr["matches"], pr["records"]),
                                     (expect[rid], expect[rid], expect[rid]), rid)
                self.assertEqual([x["request"]["path"] for x in records if "boundary" in x["tags"]], ["/p2"])
                self.assertEqual(ru["hits"]["stored"], sum(expect.values()))
                self.assertEqual(ru["hits"]["attributed"], sum(expect.values()))
                self.assertEqual(ru["hits"]["discarded"], 0)
                # 5 connections x 2 directions, each with rules to scan
                self.assertEqual(ru["streams_opened"], 10)
                self.assertEqual(ru["stream_restarts"], 0)
                self.assertEqual(ru["records_tagged"], 12)


# ---------------------------------------------------------------- 2. crafted: split, gap, redaction

CRAFTED_RULES = [
    {"id": "sqli", "pattern": r"union\s+select", "flags": "i", "side": "request",
     "protocols": ["http", "mysql"]},
    {"id": "traversal", "pattern": r"(\.\./){2,}", "side": "request", "protocols": ["http"],
     "scope": "headers"},
    {"id": "aws-key", "pattern": r"AKIA[0-9A-Z]{16}", "tag": "secret", "redact": True},
]

PAY_QUERY = ("card=4111111111111111&bad=4111111111111112&id=387066153056345308&mc=5555555555554444"
             "&ref=94111111111111111&access_token=abc123&password=hunter2")
PAY_QUERY_REDACTED = ("card=<redacted>&bad=4111111111111112&id=387066153056345308&mc=<redacted>"
                      "&ref=94111111111111111&access_token=<redacted>&password=<redacted>")
PAY_QUERY_NO_CARDS = ("card=4111111111111111&bad=4111111111111112&id=387066153056345308"
                      "&mc=5555555555554444&ref=94111111111111111&access_token=<redacted>"
                      "&password=<redacted>")


def crafted_capture(path):
    cap = Capture()
    # A: HTTP on 9999 (no decoder's port), the request line in 3 segments,
    # "union select" split across all three.
    a = Conn(cap, "10.0.2.1", 43001, "10.0.2.2", 9999)
    a.client(b"GET /search?q=1%27 uni")
    a.client(b"on sel")
    a.client(b"ect 1,2 HTTP/1.1\r\nHost: shop\r\n\r\n")
    a.server(http_response(200, body=b"ok"))
    a.close()
    # B: redaction of the query string and a user rule's redaction of a header.
    b = Conn(cap, "10.0.2.1", 43002, "10.0.2.3", 8080)
    b.client(f"GET /pay?{PAY_QUERY} HTTP/1.1\r\nHost: shop\r\n"
             "User-Agent: deploy-bot AKIAABCDEFGHIJKLMNOP/1.0\r\n\r\n".encode())
    b.server(http_response(200, body=b"ok"))
    b.close()
    # C: a capture gap between "union " and "select" (no match spans it),
    # then an intact "union select" in the next request (the scan restarted).
    c = Conn(cap, "10.0.2.1", 43003, "10.0.2.3", 8080)
    parts = [b"a=1 union ", b"/*x*/", b"select 2"]
    c.client(b"POST /form HTTP/1.1\r\nHost: shop\r\nContent-Length: %d\r\n\r\n" % sum(map(len, parts)) + parts[0])
    c.client(parts[1], lost=True)
    c.client(parts[2])
    c.server(http_response(200, body=b"ok"))
    body = b"a=1 union select 2"
    c.client(b"POST /form HTTP/1.1\r\nHost: shop\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    c.server(http_response(200, body=b"ok"))
    c.close()
    # D: scope headers: "../../" in the request target tags, in a body it does not.
    d = Conn(cap, "10.0.2.1", 43004, "10.0.2.3", 8080)
    d.client(b"GET /files/../../etc/passwd HTTP/1.1\r\nHost: shop\r\n\r\n")
    d.server(http_response(404))
    body = b"path=../../etc/passwd"
    d.client(b"POST /upload HTTP/1.1\r\nHost: shop\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    d.server(http_response(201))
    d.close()
    cap.write(path)


class CraftedCapture(SpanfeedTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.pcap = os.path.join(cls.tmp.name, "crafted.pcap")
        crafted_capture(cls.pcap)
        cls.rules = os.path.join(cls.tmp.name, "rules.yaml")
        write(cls.rules, rules_yaml(CRAFTED_RULES))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def by_port(self, records):
        out = {}
        for x in records:
            out.setdefault(x["client"]["port"], []).append(x)
        return out

    def test_split_match_gap_scope_and_redaction(self):
        # run with /metrics kept up after the run to read the same figures there
        port = free_port()
        out = os.path.join(self.tmp.name, "r1.jsonl")
        summary = os.path.join(self.tmp.name, "s1.json")
        p = subprocess.Popen([SPANFEED, "--pcap", self.pcap, "--job", "records", "-w", "1", "-q",
                              "--rules", self.rules, "--output", f"jsonl:{out}", "--summary-json", summary,
                              "--metrics", f"127.0.0.1:{port}", "--metrics-linger", "30"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        m = {}
        try:
            deadline = time.time() + 30
            while time.time() < deadline:
                time.sleep(0.2)
                try:
                    m = scrape(port)
                except OSError:
                    continue
                if metric(m, "spanfeed_up") == 0:
                    break
        finally:
            p.terminate()  # ends the linger
            _, err = p.communicate(timeout=20)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(metric(m, "spanfeed_up"), 0, "the run's final numbers never showed")
        with open(summary) as f:
            s = json.load(f)
        self.assertLedgerBalanced(s)
        recs = self.by_port(load_jsonl(out))
        self.assertEqual({k: len(v) for k, v in recs.items()}, {43001: 1, 43002: 1, 43003: 2, 43004: 2})

        # A: decoded as HTTP although on 9999, tagged although split in 3 segments
        a = recs[43001][0]
        self.assertEqual((a["protocol"], a["server"]["port"], a["status"]), ("http", 9999, "ok"))
        self.assertEqual(a["request"]["path"], "/search")
        self.assertEqual(a["request"]["query"], "q=1%27 union select 1,2")
        self.assertEqual(a["tags"], ["sqli"])
        det, by_payload = detect_totals(s)
        self.assertEqual(by_payload, {"http": 1})
        self.assertEqual((det["by_sniff"], det["by_port"], det["unknown"], det["signature_rejected"]),
                         (1, 3, 0, 0))
        self.assertEqual(metric(m, "spanfeed_flows_detected_by_payload_total", protocol="http"), 1)
        self.assertEqual(metric(m, "spanfeed_flows_detected_by_payload_total", protocol="redis"), 0)
        self.assertEqual(metric(m, "spanfeed_flow_detection_total", outcome="by_sniff"), 1)
        self.assertEqual(metric(m, "spanfeed_flow_detection_total", outcome="by_port"), 3)

        # B: exact field values after redaction
        b = recs[43002][0]
        self.assertEqual(b["request"]["path"], "/pay")
        self.assertEqual(b["request"]["query"], PAY_QUERY_REDACTED)
        self.assertEqual(b["request"]["user_agent"], "deploy-bot <redacted>/1.0")
        self.assertEqual(b["request"]["host"], "shop")
        self.assertEqual(sorted(b["tags"]), ["bearer_token", "credit_card", "password", "secret"])
        self.assertNotIn("=4111111111111111&", json.dumps(recs))
        self.assertNotIn("5555555555554444", json.dumps(recs))
        self.assertNotIn("AKIA", json.dumps(recs))

        # C: the gap: no match across the hole, the record is not tagged; the
        # scan restarted and finds the next request's intact pattern
        c1, c2 = recs[43003]
        self.assertEqual((c1["flags"], c1["tags"]), (["gap"], []))
        self.assertEqual((c2["flags"], c2["tags"]), ([], ["sqli"]))

        # D: scope headers
        d1, d2 = recs[43004]
        self.assertEqual((d1["request"]["path"], d1["tags"]), ("/files/../../etc/passwd", ["traversal"]))
        self.assertEqual((d2["request"]["path"], d2["tags"]), ("/upload", []))

        ru = s["rules"]
        pr = {k: (v["matches"], v["records"], v["redactions"]) for k, v in ru["per_rule"].items()}
        self.assertEqual(pr, {
            "sqli": (2, 2, 0),          # A (split) and C's second request; not C's first (gap)
            "traversal": (2, 1, 0),     # the body match is counted but tags nothing (scope)
            "aws-key": (1, 1, 1),
            "credit_card": (0, 1, 2),   # 4111111111111111 and 5555555555554444
            "bearer_token": (0, 1, 1),
            "password": (0, 1, 1),
        })
        self.assertEqual((ru["rules"], ru["builtin"], ru["version"]), (3, 3, 1))
        self.assertEqual(ru["fields_redacted"], 2)  # query and user_agent
        self.assertEqual(ru["redaction_masked"], 0)
        self.assertEqual(ru["records_tagged"], 4)  # A, B, C's second, D's first
        self.assertEqual(ru["stream_restarts"], 1)
        self.assertEqual(ru["hits"], {"stored": 5, "attributed": 5, "discarded": 0, "dropped": 0, "pending": 0})
        for rid, (matches, records, redactions) in pr.items():
            self.assertEqual(metric(m, "spanfeed_rule_matches_total", rule=rid), matches, rid)
            self.assertEqual(metric(m, "spanfeed_rule_records_total", rule=rid), records, rid)
            self.assertEqual(metric(m, "spanfeed_rule_redactions_total", rule=rid), redactions, rid)
        self.assertEqual(metric(m, "spanfeed_rules_loaded", kind="user"), 3)
        self.assertEqual(metric(m, "spanfeed_rules_loaded", kind="builtin"), 3)
        self.assertEqual(metric(m, "spanfeed_rules_version"), 1)
        self.assertEqual(metric(m, "spanfeed_rules_reloads_total", result="ok"), 0)
        self.assertEqual(metric(m, "spanfeed_rules_reloads_total", result="refused"), 0)
        self.assertEqual(metric(m, "spanfeed_rules_streams_total", event="restarted"), 1)
        self.assertEqual(metric(m, "spanfeed_rules_streams_total", event="opened"), ru["streams_opened"])
        self.assertEqual(metric(m, "spanfeed_rules_streams_total", event="exhausted"), 0)
        for outcome in ("stored", "attributed"):
            self.assertEqual(metric(m, "spanfeed_rule_hits_total", outcome=outcome), 5)
        for outcome in ("discarded", "dropped"):
            self.assertEqual(metric(m, "spanfeed_rule_hits_total", outcome=outcome), 0)
        self.assertEqual(metric(m, "spanfeed_records_tagged_total"), 4)

    def test_config_switches_card_redaction_off(self):
        cfg = os.path.join(self.tmp.name, "nocards.yaml")
        write(cfg, "rules:\n  redact_credit_cards: false\n")
        out = os.path.join(self.tmp.name, "r2.jsonl")
        r = run_spanfeed(["--pcap", self.pcap, "--job", "records", "-w", "1", "-q", "-c", cfg,
                          "--rules", self.rules, "--output", f"jsonl:{out}"])
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertLedgerBalanced(r.summary)
        b = self.by_port(load_jsonl(out))[43002][0]
        self.assertEqual(b["request"]["query"], PAY_QUERY_NO_CARDS)
        self.assertEqual(b["request"]["user_agent"], "deploy-bot <redacted>/1.0")
        self.assertEqual(sorted(b["tags"]), ["bearer_token", "password", "secret"])
        ru = r.summary["rules"]
        self.assertEqual((ru["rules"], ru["builtin"]), (3, 2))
        self.assertNotIn("credit_card", ru["per_rule"])
        self.assertEqual(ru["fields_redacted"], 2)

    def test_user_rule_with_a_builtin_id_is_refused(self):
        # A user rule named like a built-in redaction rule would share its
        # per-rule series: the id is reserved, the file refused at start-up.
        rules = os.path.join(self.tmp.name, "clash.yaml")
        write(rules, rules_yaml([{"id": "credit_card", "pattern": "deploy-bot", "side": "request",
                                  "protocols": ["http"], "tag": "bot"}]))
        out = os.path.join(self.tmp.name, "r4.jsonl")
        r = run_spanfeed(["--pcap", self.pcap, "--job", "records", "-w", "1", "-q",
                          "--rules", rules, "--output", f"jsonl:{out}"])
        self.assertEqual(r.rc, 2, r.stderr)
        self.assertIn("rule 'credit_card': this id is reserved for a built-in redaction rule", r.stderr)
        self.assertIsNone(r.summary)
        self.assertFalse(os.path.exists(out))

    def test_no_rules_file_builtins_only(self):
        # no --rules: the built-in redaction still runs (on by default), no user tags
        out = os.path.join(self.tmp.name, "r3.jsonl")
        r = run_spanfeed(["--pcap", self.pcap, "--job", "records", "-w", "1", "-q",
                          "--output", f"jsonl:{out}"])
        self.assertEqual(r.rc, 0, r.stderr)
        recs = self.by_port(load_jsonl(out))
        b = recs[43002][0]
        self.assertEqual(b["request"]["query"], PAY_QUERY_REDACTED)
        self.assertEqual(b["request"]["user_agent"], "deploy-bot AKIAABCDEFGHIJKLMNOP/1.0")
        self.assertEqual(sorted(b["tags"]), ["bearer_token", "credit_card", "password"])
        self.assertEqual([x["tags"] for p in (43001, 43003, 43004) for x in recs[p]], [[]] * 5)
        ru = r.summary["rules"]
        self.assertEqual((ru["rules"], ru["builtin"], ru["records_tagged"], ru["fields_redacted"]),
                         (0, 3, 1, 1))


# ---------------------------------------------------------------- 3./4. broken rules files

BROKEN_RULES = [  # file body, expected message
    ('rules:\n  - id: bad\n    pattern: "("\n', "rule 'bad' (pattern '('): "),
    ('rules:\n  - id: rev\n    pattern: "a{5,3}"\n', "rule 'rev' (pattern 'a{5,3}'): "),
    # the failing rule is the 3rd and on both sides: the message names it, not its neighbours
    ('rules:\n  - id: fine-req\n    pattern: "x"\n    side: request\n'
     '  - id: fine-resp\n    pattern: "y"\n    side: response\n'
     '  - id: backref\n    pattern: "(a)\\\\1"\n', "rule 'backref' (pattern '(a)\\1'): "),
    ('rules:\n  - id: one\n    pattern: "x"\n  - id: one\n    pattern: "y"\n', ":4: rule 'one': duplicate id"),
    ('rules:\n  - id: sev\n    pattern: "x"\n    severity: high\n',
     "rule 'sev': unknown key 'severity' (known: id, pattern, flags, side, protocols, scope, tag, redact)"),
    ('rules:\n  - id: sd\n    pattern: "x"\n    side: sideways\n', "rule 'sd': 'side': must be request, response or both"),
    ('rules:\n  - id: fl\n    pattern: "x"\n    flags: iz\n', "rule 'fl': 'flags': unknown flag 'z'"),
    ('rules:\n  - id: pr\n    pattern: "x"\n    protocols: [ftp]\n', "rule 'pr': 'protocols': unknown protocol 'ftp'"),
    ('rules:\n  - id: nopat\n', "rule 'nopat': 'pattern' is missing or empty"),
    ('rules:\n  - id: "a b"\n    pattern: "x"\n', "rule 'a b': 'id' must be 1-128 characters of [A-Za-z0-9_.:-]"),
    ('rulez: []\n', ":1: unknown key 'rulez' (known: rules)"),
    ('rules:\n  - id: [x\n', "YAML syntax error"),
]


class CompressedBodies(SpanfeedTestCase):
    """gzip/deflate response bodies are inflated for the rules; tshark's own
    decompression (http.file_data) is the oracle for which responses match."""

    def test_gzip_bodies_match_what_tshark_inflates(self):
        import gzip
        import zlib
        with tempfile.TemporaryDirectory() as tmp:
            pcap = os.path.join(tmp, "gz.pcap")
            cap = Capture()
            c = Conn(cap, "10.1.0.1", 45001, "10.1.0.2", 80)
            bodies = [
                ("gzip", gzip.compress(b"a" * 3000 + b" internal-secret-77 " + b"b" * 3000)),
                ("gzip", gzip.compress(b"nothing to see here " * 50)),
                ("deflate", zlib.compress(b"x internal-secret-5 y")),
                (None, b"plain internal-secret-1 text"),
            ]
            for i, (enc, body) in enumerate(bodies):
                c.client(f"GET /r{i} HTTP/1.1\r\nHost: gz\r\n\r\n".encode())
                head = "HTTP/1.1 200 OK\r\n" + (f"Content-Encoding: {enc}\r\n" if enc else "")
                resp = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
                for k in range(0, len(resp), 500):  # several segments: the compressed stream is split
                    c.server(resp[k:k + 500])
            c.close()
            cap.write(pcap)
            for enc, body in bodies[:2]:
                self.assertNotIn(b"internal-secret", body)  # invisible on the wire
            rules = os.path.join(tmp, "r.yaml")
            write(rules, rules_yaml([{"id": "leak", "pattern": "internal-secret-[0-9]+", "side": "response"}]))
            out = os.path.join(tmp, "out.jsonl")
            r = run_spanfeed(["--pcap", pcap, "--job", "records", "-w", "1", "-q",
                              "--rules", rules, "--output", f"jsonl:{out}"])
            self.assertEqual(r.rc, 0, r.stderr)
            self.assertLedgerBalanced(r.summary)
            recs = load_jsonl(out)
            tagged = sorted(x["request"]["path"] for x in recs if x["tags"] == ["leak"])
            self.assertEqual(tagged, ["/r0", "/r2", "/r3"])
            self.assertEqual(len(recs), 4)
            oracle = subprocess.run(["tshark", "-r", pcap, "-Y", 'http.file_data contains "internal-secret"',
                                     "-T", "fields", "-e", "http.response_for.uri"],
                                    capture_output=True, text=True, timeout=60)
            self.assertEqual(oracle.returncode, 0, oracle.stderr)
            want = sorted(u.rsplit("/", 1)[-1] for u in oracle.stdout.split())
            self.assertEqual(["/" + u for u in want], tagged)
            dc = r.summary["rules"]["decoded_content"]
            self.assertEqual(dc["bodies_inflated"], 3)
            self.assertEqual(dc["bytes"], 6020 + 1000 + 21)
            self.assertEqual((dc["inflate_errors"], dc["inflate_truncated"], dc["inflate_busy"], dc["inflate_gaps"]),
                             (0, 0, 0, 0))
            self.assertEqual(r.summary["rules"]["per_rule"]["leak"]["records"], 3)


class BrokenRules(unittest.TestCase):
    def test_each_broken_rules_file_is_a_usage_error_before_capture(self):
        with tempfile.TemporaryDirectory() as tmp:
            for i, (body, msg) in enumerate(BROKEN_RULES):
                with self.subTest(body=body):
                    path = os.path.join(tmp, f"broken{i}.yaml")
                    write(path, body)
                    r = run_spanfeed(["--pcap", capture("http/sw8.pcap"), "--job", "records",
                                      "--rules", path, "--output", f"jsonl:{os.path.join(tmp, 'x.jsonl')}"],
                                     timeout=30)
                    self.assertEqual(r.rc, 2, r.stdout + r.stderr)
                    self.assertIn(path + ":", r.stderr)
                    self.assertIn(msg, r.stderr)
                    # nothing ran: no EAL, no summary, no records file
                    self.assertIsNone(r.summary)
                    self.assertNotIn("ledger", r.stdout + r.stderr)
                    self.assertNotIn("EAL", r.stderr)
                    self.assertFalse(os.path.exists(os.path.join(tmp, "x.jsonl")))

    def test_missing_rules_file(self):
        r = run_spanfeed(["--pcap", capture("http/sw8.pcap"), "--job", "records",
                          "--rules", "/nonexistent/rules.yaml"], timeout=30)
        self.assertEqual(r.rc, 2)
        self.assertIn("/nonexistent/rules.yaml: cannot open rules file", r.stderr)
        self.assertIsNone(r.summary)

    def test_rules_need_the_records_job(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "r.yaml")
            write(path, rules_yaml(ORACLE_RULES))
            r = run_spanfeed(["--pcap", capture("http/sw8.pcap"), "--job", "flows", "--rules", path],
                             timeout=30)
        self.assertEqual(r.rc, 2)
        self.assertIn(f"rules ('{path}') apply to records: use --job records", r.stderr)


class CheckConfigRules(unittest.TestCase):
    def check(self, tmp, rules_body, extra=""):
        rules = os.path.join(tmp, "rules.yaml")
        write(rules, rules_body)
        cfg = os.path.join(tmp, "c.yaml")
        write(cfg, f"capture:\n  pcap: {capture('http/sw8.pcap')}\njob: records\n"
                   f"rules:\n  file: {rules}\n{extra}")
        p = subprocess.run([SPANFEED, "--check-config", cfg], capture_output=True, text=True, timeout=30)
        return rules, cfg, p

    def test_good_rules_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            rules, cfg, p = self.check(tmp, rules_yaml(ORACLE_RULES))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(f"rules: {rules}: 6 rule(s), 3 built-in redaction rule(s)\n", p.stdout)
            self.assertIn(f"{cfg}: OK: job records", p.stdout)
            self.assertNotIn("EAL", p.stdout + p.stderr)
            rules, cfg, p = self.check(tmp, rules_yaml(CRAFTED_RULES),
                                       "  redact_credit_cards: false\n  redact_passwords: false\n")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(f"rules: {rules}: 3 rule(s), 1 built-in redaction rule(s)\n", p.stdout)

    def test_shipped_rules_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(ROOT, "conf", "rules.yaml")) as f:
                body = f.read()
            rules, cfg, p = self.check(tmp, body)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(f"rules: {rules}: 7 rule(s), 3 built-in redaction rule(s)\n", p.stdout)

    def test_broken_rules_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            for body, msg in BROKEN_RULES[:4]:
                with self.subTest(body=body):
                    rules, cfg, p = self.check(tmp, body)
                    self.assertEqual(p.returncode, 2, p.stdout)
                    self.assertIn(f"spanfeed: {cfg}: {rules}", p.stderr)
                    self.assertIn(msg, p.stderr)
                    self.assertNotIn("OK: job", p.stdout)
                    self.assertNotIn("EAL", p.stderr)

    def test_unknown_rules_key_in_config(self):
        with tempfile.TemporaryDirectory() as tmp:
            _, _, p = self.check(tmp, rules_yaml(ORACLE_RULES), "  redact_cards: false\n")
            self.assertEqual(p.returncode, 2)
            self.assertIn("'rules.redact_cards': unknown key (known here: file, hit_pool, inflate_max_kb, inflaters, "
                          "max_streams, redact_bearer_tokens, redact_credit_cards, redact_passwords)", p.stderr)


# ---------------------------------------------------------------- 5. SIGHUP reload

LIVE_V1 = [{"id": "get-root", "pattern": r"GET / HTTP/1\.1\r\n", "side": "request", "protocols": ["http"]}]
LIVE_V2 = LIVE_V1 + [{"id": "ok-200", "pattern": r"HTTP/1\.1 200 OK\r\n", "side": "response",
                      "protocols": ["http"]}]
LIVE_BROKEN = LIVE_V2 + [{"id": "broken", "pattern": "a{5,3}"}]


class Reload(SpanfeedTestCase):
    """Live runs (--infinite replay) reloaded with SIGHUP, watched on /metrics."""

    def start(self, rules_body, workers):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.rules = os.path.join(tmp.name, "rules.yaml")
        self.summary = os.path.join(tmp.name, "s.json")
        write(self.rules, rules_body)
        self.port = free_port()
        self.p = subprocess.Popen([SPANFEED, "--pcap", capture("http/http-mixed.pcap"), "--infinite",
                                   "--job", "records", "--rules", self.rules, "--output", "jsonl:/dev/null",
                                   "-w", str(workers), "-q", "--metrics", f"127.0.0.1:{self.port}",
                                   "--summary-json", self.summary],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def stop(self):
        """SIGINT; returns stderr and the summary."""
        self.p.send_signal(signal.SIGINT)
        try:
            _, err = self.p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            _, err = self.p.communicate()
        self.assertEqual(self.p.returncode, 0, err)
        with open(self.summary) as f:
            s = json.load(f)
        self.assertTrue(s["interrupted"])
        self.assertLedgerBalanced(s)
        h = s["rules"]["hits"]
        self.assertEqual(h["stored"], h["attributed"] + h["discarded"] + h["pending"], h)
        self.assertEqual(h["dropped"], 0)
        return err, s

    def poll(self, cond, what, timeout=30):
        """Scrapes /metrics until cond(samples) holds (published every second)."""
        deadline = time.time() + timeout
        last = {}
        while time.time() < deadline:
            self.assertIsNone(self.p.poll(), "spanfeed ended during the run")
            try:
                last = scrape(self.port)
            except OSError:
                last = {}
            if last and cond(last):
                return last
            time.sleep(0.2)
        self.fail(f"timed out waiting for {what}; last scrape: "
                  f"{ {k: v for k, v in last.items() if 'rule' in k[0]} }")

    def hup(self, rules_body):
        if rules_body is None:
            os.remove(self.rules)
        else:
            write(self.rules, rules_body)
        self.p.send_signal(signal.SIGHUP)

    @staticmethod
    def matches(m, rid):
        return metric(m, "spanfeed_rule_matches_total", rule=rid) or 0

    def test_sighup_reload_good_then_refused(self):
        self.start(rules_yaml(LIVE_V1), workers=1)
        matches = self.matches
        try:
            m = self.poll(lambda m: metric(m, "spanfeed_rules_version") == 1 and matches(m, "get-root") > 0,
                          "the first rule to match")
            self.assertIsNone(metric(m, "spanfeed_rule_matches_total", rule="ok-200"))
            self.assertEqual(metric(m, "spanfeed_rules_loaded", kind="user"), 1)
            self.assertEqual(metric(m, "spanfeed_rules_loaded", kind="builtin"), 3)
            # a good file that adds a rule
            self.hup(rules_yaml(LIVE_V2))
            m = self.poll(lambda m: metric(m, "spanfeed_rules_version") == 2 and matches(m, "ok-200") > 0,
                          "version 2 and the new rule to match")
            self.assertEqual(metric(m, "spanfeed_rules_reloads_total", result="ok"), 1)
            self.assertEqual(metric(m, "spanfeed_rules_reloads_total", result="refused"), 0)
            self.assertEqual(metric(m, "spanfeed_rules_loaded", kind="user"), 2)
            # a broken file: refused, the running set stays
            self.hup(rules_yaml(LIVE_BROKEN))
            m = self.poll(lambda m: metric(m, "spanfeed_rules_reloads_total", result="refused") == 1,
                          "the refusal")
            self.assertEqual(metric(m, "spanfeed_rules_version"), 2)
            self.assertEqual(metric(m, "spanfeed_rules_reloads_total", result="ok"), 1)
            self.assertEqual(metric(m, "spanfeed_rules_loaded", kind="user"), 2)
            self.assertIsNone(metric(m, "spanfeed_rule_matches_total", rule="broken"))
            before_ok, before_get = matches(m, "ok-200"), matches(m, "get-root")
            m = self.poll(lambda m: matches(m, "ok-200") > before_ok and matches(m, "get-root") > before_get,
                          "the old set to keep counting")
            self.assertEqual(metric(m, "spanfeed_rules_version"), 2)
            last_ok = matches(m, "ok-200")
        finally:
            err, s = self.stop()
        self.assertIn("rules reloaded: version 2, 2 rule(s)", err)
        self.assertIn("rules reload refused, the running set stays (version 2): " + self.rules, err)
        self.assertIn("rule 'broken' (pattern 'a{5,3}')", err)
        ru = s["rules"]
        self.assertEqual((ru["version"], ru["rules"], ru["builtin"], ru["reloads_ok"], ru["reloads_failed"]),
                         (2, 2, 3, 1, 1))
        self.assertIn("rule 'broken' (pattern 'a{5,3}')", ru["last_error"])
        self.assertEqual(sorted(ru["per_rule"]), ["bearer_token", "credit_card", "get-root", "ok-200", "password"])
        self.assertTrue(all(v["active"] for v in ru["per_rule"].values()))
        self.assertGreaterEqual(ru["per_rule"]["ok-200"]["matches"], last_ok)
        self.assertEqual(ru["rule_sets_adopted"], 1)  # one worker took the one accepted set
        # both rules are http-only and match once per exchange: every match was stored
        h = ru["hits"]
        self.assertEqual(h["stored"], ru["per_rule"]["get-root"]["matches"] + ru["per_rule"]["ok-200"]["matches"])

    def test_reload_retires_a_rule_and_refuses_a_missing_file(self):
        self.start(rules_yaml(LIVE_V2), workers=2)
        matches = self.matches
        try:
            self.poll(lambda m: matches(m, "get-root") > 0 and matches(m, "ok-200") > 0, "both rules to match")
            self.hup(rules_yaml(LIVE_V2[1:]))  # get-root goes
            m = self.poll(lambda m: metric(m, "spanfeed_rules_version") == 2, "version 2")
            self.assertEqual(metric(m, "spanfeed_rules_loaded", kind="user"), 1)
            # once both workers have taken the new set, get-root's count is final
            seen = matches(m, "ok-200")
            m = self.poll(lambda m: matches(m, "ok-200") > seen, "ok-200 to count on")
            seen = matches(m, "ok-200")
            m = self.poll(lambda m: matches(m, "ok-200") > seen, "ok-200 to count on")
            final_get = matches(m, "get-root")
            self.assertGreater(final_get, 0)
            seen = matches(m, "ok-200")
            m = self.poll(lambda m: matches(m, "ok-200") > seen, "ok-200 to count on")
            self.assertEqual(matches(m, "get-root"), final_get)  # retired: still published, frozen
            # the file disappears: refused, the set stays
            self.hup(None)
            m = self.poll(lambda m: metric(m, "spanfeed_rules_reloads_total", result="refused") == 1,
                          "the refusal")
            self.assertEqual(metric(m, "spanfeed_rules_version"), 2)
            seen = matches(m, "ok-200")
            self.poll(lambda m: matches(m, "ok-200") > seen, "ok-200 to count on after the refusal")
        finally:
            err, s = self.stop()
        self.assertIn("rules reloaded: version 2, 1 rule(s)", err)
        self.assertIn(f"rules reload refused, the running set stays (version 2): {self.rules}: "
                      "cannot open rules file", err)
        ru = s["rules"]
        self.assertEqual((ru["version"], ru["rules"], ru["reloads_ok"], ru["reloads_failed"]), (2, 1, 1, 1))
        self.assertEqual(ru["last_error"], f"{self.rules}: cannot open rules file")
        g = ru["per_rule"]["get-root"]
        self.assertEqual((g["active"], g["matches"], g["redactions"]), (False, final_get, 0))
        # each match tagged its record, but for the few caught by the switch: a message
        # marked under the old set that left under the new one, or a match still waiting
        lost = ru["tags_lost_reload"] + ru["hits"]["discarded"]
        self.assertLessEqual(g["records"], final_get)
        self.assertGreaterEqual(g["records"], final_get - lost)
        self.assertLessEqual(lost, 4)  # one message in flight per worker and direction at most
        self.assertTrue(ru["per_rule"]["ok-200"]["active"])
        self.assertEqual(ru["rule_sets_adopted"], 2)  # each of the 2 workers took the new set once


if __name__ == "__main__":
    unittest.main(verbosity=2)
