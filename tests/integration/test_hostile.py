"""Hostile input through the whole pipeline (issue 12): every capture of
hostile_gen.py runs through the real binary (--job records, JSON-lines
output) under `timeout`, and each case asserts the exit code, a wall-time
bound, the balanced ledger, the exact records (count per status, fields and
flags), and peak RSS within a margin of the plain valid exchange's.

A case whose correct behaviour lands with a fix on another branch carries
`expect_fixed_by` and the checks that fail until then (`expect_fail`): it
runs, every other check must pass, and it is reported as skipped ("expected
failure until BRANCH is merged"); once those checks pass the case fails until
the marker is removed. HOSTILE_IGNORE_MARKERS=1 runs marked cases as ordinary
ones; HOSTILE_CASES=a,b runs only those."""
import json
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile_gen as hg  # noqa: E402
from common import SPANFEED, SpanfeedTestCase, scaled, scaled_kb  # noqa: E402

TIMEOUT_S = scaled(20)  # per run: a hang fails its case instead of blocking the suite
WALL_S = scaled(12.0)   # every case: EAL start-up (1-3 s on a loaded 2-core box) plus a few seconds of work
# Over the valid exchange's peak. Pools and tables are reserved at start-up and become resident as
# they are used, so a case may fill the reassembly's out-of-order pool (reassembly.memory_mb, 64 MiB per
# worker by default: one 2 KiB chunk per held segment) but nothing grows past its reservation.
REASSEMBLY_POOL_KB = 64 * 1024
RSS_MARGIN_KB = 16 * 1024
IGNORE_MARKERS = os.environ.get("HOSTILE_IGNORE_MARKERS") == "1"
WORKERS = "1"  # the cases are single flows; one worker starts faster and uses half the memory

C, S = hg.CLIENT_IP, hg.SERVER_IP


# ---------------------------------------------------------------- expected records

class Partial(dict):
    """An expected request/response of which only these fields are asserted (the rest is the fixing
    branch's choice); plain dicts must match exactly."""

def rec(proto, status, cport, sport, request, response, flags=()):
    return {"protocol": proto, "status": status, "client": {"ip": C, "port": cport},
            "server": {"ip": S, "port": sport}, "request": request, "response": response,
            "flags": list(flags)}


def http_req(raw, method, path, **extra):
    return {"bytes": len(raw), "method": method, "path": path, "version": "1.1", "host": "example",
            "body_bytes": 0, **extra}


def http_resp(raw, code=200, reason="OK", **extra):
    return {"bytes": len(raw), "status_code": code, "reason": reason, "version": "1.1", **extra}


def http_ok(cport):
    return rec("http", "ok", cport, 80, http_req(hg.HTTP_REQ, "GET", "/ok"),
               http_resp(hg.HTTP_RESP, content_length=2, body_bytes=2))


def redis_ok(cport):
    return rec("redis", "ok", cport, 6379, {"bytes": len(hg.REDIS_REQ), "command": "GET", "key": "k", "args": 1},
               {"bytes": len(hg.REDIS_RESP), "type": "bulk", "size": 1})


def memcached_ok(cport):
    return rec("memcached", "ok", cport, 11211, {"bytes": len(hg.MEMC_REQ), "command": "get", "key": "k", "keys": 1},
               {"bytes": len(hg.MEMC_RESP), "response": "VALUE", "values": 1, "value_bytes": 1})


def mysql_ok(cport):
    return rec("mysql", "ok", cport, 3306,
               {"bytes": len(hg.MYSQL_REQ), "command": "COM_QUERY", "query": hg.MYSQL_QUERY.decode(),
                "normalized": "SET autocommit=?"},
               {"bytes": len(hg.MYSQL_OK), "affected_rows": 0, "last_insert_id": 0, "warnings": 0})


def pgsql_ok(cport):
    return rec("pgsql", "ok", cport, 5432,
               {"bytes": len(hg.PG_REQ), "command": "QUERY", "query": "SELECT 1", "normalized": "SELECT ?"},
               {"bytes": len(hg.PG_RESP), "tag": "SELECT 1", "rows": 1, "columns": 1, "data_rows": 1})


def mongo_ok(cport):
    return rec("mongodb", "ok", cport, 27017,
               {"bytes": len(hg.MONGO_REQ), "op": "OP_MSG", "request_id": 7, "command": "find",
                "collection": "c", "database": "d"},
               {"bytes": len(hg.MONGO_RESP), "op": "OP_MSG", "ok": 1, "returned": 0})


def dns_ok(cport):
    return rec("dns", "ok", cport, 53,
               {"bytes": len(hg.DNS_QUERY), "id": 0x1234, "qname": "example.com", "qtype": "A", "transport": "udp"},
               {"bytes": len(hg.DNS_RESP), "rcode": "NOERROR", "answer_count": 1,
                "answers": [{"type": "A", "data": "10.0.0.1"}]})


# ---------------------------------------------------------------- the cases

class Case:
    """records: expected, in capture order; checks: summary path -> value; rc: exit code.
    expect_fixed_by: the branch whose fix makes this case pass; expect_fail: the checks that fail
    until then (hang, rc, wall, rss, summary, ledger, counters, records); any other failing check
    fails the case, and a case whose expected failures all pass fails too (remove the marker)."""

    def __init__(self, records, checks=None, rc=0, expect_fixed_by=None, why="", expect_fail=("records",)):
        self.records, self.checks, self.rc = records, checks or {}, rc
        self.expect_fixed_by, self.why, self.expect_fail = expect_fixed_by, why, expect_fail


POST_BIG = b"POST /big HTTP/1.1\r\nHost: example\r\nContent-Length: 1000000000000000000\r\n\r\nabcdef"
RESP_413 = b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n"
CHUNK_HUGE = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffff\r\nabc"
CHUNK_LONG = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n"
LONG_LINE_REQ = b"GET /long HTTP/1.1\r\nX-Long: " + b"a" * 100_000 + b"\r\nHost: example\r\n\r\n"
MANY_REQ = (b"GET /many HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(10_000))
            + b"Host: example\r\n\r\n")
BIG_QUERY_BYTES = 0xFFFFFF - 1 + len(hg.MYSQL_BIG_TAIL)  # the command byte is not query text
BIG_BODY_RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 65\r\n\r\n" + b"b" * 65
REV_POST = b"POST /rev HTTP/1.1\r\nHost: example\r\nContent-Length: %d\r\n\r\n" % hg.REVERSED

CASES = {
    "baseline": Case([http_ok(40000)]),
    "header_only": Case([], {"ledger.rx.received": 0}),
    # A record libpcap cannot read ends the reading: what precedes it is processed, exit code 3
    # (kExitDamagedFile).
    "garbage_after_header": Case([], {"ledger.rx.received": 0}, rc=3),
    "truncated_record": Case([http_ok(40001),
                              rec("http", "timeout", 40002, 80, http_req(hg.HTTP_REQ, "GET", "/ok"), None)],
                             rc=3),
    "caplen_zero": Case([http_ok(40003)], {"ledger.rx.truncated": 1}),
    "caplen_above_snaplen": Case([http_ok(40004),
                                  rec("http", "ok", 40005, 80, http_req(hg.HTTP_REQ, "GET", "/ok"),
                                      http_resp(BIG_BODY_RESP, content_length=65, body_bytes=65),
                                      ["gap"])],  # libpcap cuts the record at the file's snaplen (128)
                                 {"workers.records.gap_bytes": len(BIG_BODY_RESP) + 54 - 128}),
    "caplen_above_max": Case([http_ok(40006)], rc=3),
    "ipv4_bogus_lengths": Case([http_ok(40102)], {"ledger.rx.malformed": 3, "ledger.rx.truncated": 1,
                                                  "ledger.reassembly.malformed": 1,
                                                  "workers.reassembly.gaps.truncated.events": 1,
                                                  "workers.reassembly.gaps.truncated.bytes": 60000 - 56}),
    "tcp_data_offset_below_5": Case([http_ok(40110)], {"ledger.reassembly.malformed": 6}),
    "http_content_length_1e18": Case([
        rec("http", "error", 40200, 80,
            http_req(POST_BIG, "POST", "/big", content_length=10**18, body_bytes=6),
            http_resp(RESP_413, 413, "Payload Too Large", content_length=0, body_bytes=0), ["truncated"]),
        http_ok(40200)]),
    "http_chunk_size_huge": Case([
        rec("http", "ok", 40210, 80, http_req(hg.HTTP_CHUNK_REQ, "GET", "/chunked"),
            http_resp(CHUNK_HUGE, body_bytes=3), ["truncated"]),
        rec("http", "ok", 40211, 80, http_req(hg.HTTP_CHUNK_REQ, "GET", "/chunked"),
            http_resp(CHUNK_LONG, body_bytes=0), ["truncated"]),
        http_ok(40211)]),
    "http_long_header_line": Case([
        rec("http", "ok", 40220, 80, http_req(LONG_LINE_REQ, "GET", "/long"),
            http_resp(hg.HTTP_RESP, content_length=2, body_bytes=2), ["truncated"]),
        http_ok(40220)], {"workers.records.carry_overflow": 1}),
    "http_many_headers": Case([
        rec("http", "ok", 40230, 80, http_req(MANY_REQ, "GET", "/many"),
            http_resp(hg.HTTP_RESP, content_length=2, body_bytes=2)),
        http_ok(40230)]),
    "mysql_ffffff_chain": Case([
        rec("mysql", "ok", 40300, 3306,
            {"bytes": 4 + 0xFFFFFF + 4 + len(hg.MYSQL_BIG_TAIL), "command": "COM_QUERY",
             "query": ("SELECT 1 /*" + "x" * 437), "query_bytes": BIG_QUERY_BYTES, "normalized": "SELECT ?"},
            {"bytes": 11, "affected_rows": 0, "last_insert_id": 0, "warnings": 0}, ["truncated"]),
        mysql_ok(40300)]),
    "mysql_cut_at_close": Case([
        rec("mysql", "timeout", 40301, 3306,
            {"bytes": len(hg.MYSQL_CUT), "command": "COM_QUERY", "query": "SELECT * FROM t ",
             "normalized": "SELECT * FROM t"},
            None, ["truncated"]),
        mysql_ok(40302)]),
    "mysql_result_set_gap": Case([
        rec("mysql", "ok", 40303, 3306, {"bytes": 20, "command": "COM_QUERY", "query": "SELECT a FROM t",
                                         "normalized": "SELECT a FROM t"},
            {"bytes": hg.MYSQL_GAP_AT, "columns": 1, "rows": 2}, ["gap"]),  # up to the gap: 2 rows
        mysql_ok(40303)]),
    "mongo_bad_lengths": Case([mongo_ok(40310)], {"workers.records.protocols.mongodb.decode_errors": 1,
                                                  "workers.records.resyncs": 1,
                                                  "workers.records.resync_skipped_bytes": 3 * 32}),
    "mongo_cut_at_close": Case([
        rec("mongodb", "timeout", 40311, 27017,
            {"bytes": len(hg.MONGO_REQ) - 10, "op": "OP_MSG", "request_id": 7, "command": "find",
             "collection": "c"},  # "$db" was in the lost tail
            None, ["truncated"])]),
    "pgsql_len_7fffffff": Case([pgsql_ok(40320)], {"workers.records.resyncs": 1,
                                                   "workers.records.resync_skipped_bytes": 14}),
    "pgsql_cut_at_close": Case([
        rec("pgsql", "timeout", 40321, 5432,
            {"bytes": len(hg.PG_REQ) - 4, "command": "QUERY", "query": "SELEC", "normalized": "SELEC"}, None,
            ["truncated"])]),
    "redis_huge_array": Case([redis_ok(40330)], {"workers.records.protocols.redis.decode_errors": 1,
                                                 "workers.records.resyncs": 1,
                                                 "workers.records.resync_skipped_bytes": len(b"*2147483647\r\n")}),
    # The server answered while the request was still incomplete: as far as it is concerned the request
    # is over, so it and the error make one record flagged truncated (what the HTTP decoder does).
    "redis_huge_bulk": Case([
        rec("redis", "error", 40331, 6379, {"bytes": len(hg.REDIS_HUGE_BULK), "command": "GET", "args": 1},
            {"bytes": len(hg.REDIS_PROTO_ERR), "type": "error", "error": "ERR Protocol error: invalid bulk length"},
            ["truncated"]),
        redis_ok(40332)]),
    "memcached_set_huge": Case([
        rec("memcached", "error", 40340, 11211, {"bytes": 22, "command": "set", "key": "k"},
            {"bytes": 38, "response": "CLIENT_ERROR", "error_message": "bad command line format"},
            ["truncated"]),  # no usable length: no data block follows the line
        memcached_ok(40340)]),
    # A reply length no server sends (2^64-1): the reply is cut there and skipped to its END.
    "memcached_value_huge": Case([
        rec("memcached", "ok", 40341, 11211, {"bytes": len(hg.MEMC_REQ), "command": "get", "key": "k", "keys": 1},
            {"bytes": len(hg.MEMC_VALUE_HUGE), "response": "VALUE"}, ["truncated"]),
        memcached_ok(40341)], {"workers.records.protocols.memcached.decode_errors": 1,
                               "workers.records.resyncs": 1,
                               "workers.records.resync_skipped_bytes": len(b"v\r\n")}),
    "dns_pointer_loops": Case([
        rec("dns", "ok", 50000, 53, {"bytes": 30, "id": 1, "qname": "loop.example", "qtype": "A", "transport": "udp"},
            {"bytes": 46, "rcode": "NOERROR", "answer_count": 1, "answers": []}, ["truncated"]),
        rec("dns", "ok", 50000, 53, {"bytes": 18, "id": 2, "transport": "udp"},
            {"bytes": 18, "rcode": "NOERROR", "answer_count": 0, "answers": []}, ["truncated"]),
        dns_ok(50000)]),
    "dns_long_names": Case([
        rec("dns", "error", 50001, 53, {"bytes": 337, "id": 3, "transport": "udp"},
            {"bytes": 337, "rcode": "NXDOMAIN", "answer_count": 0, "answers": []}, ["truncated"]),
        rec("dns", "error", 50001, 53,
            {"bytes": 271, "id": 4, "qname": hg.LONG_NAME_OK, "qtype": "A", "transport": "udp"},
            {"bytes": 271, "rcode": "NXDOMAIN", "answer_count": 0, "answers": []}),
        dns_ok(50001)]),
    "dns_tcp_cut_at_close": Case([
        rec("dns", "timeout", 40350, 53, {"bytes": len(hg.DNS_QUERY) + 2 - 6, "id": 0x1234, "transport": "tcp"},
            None, ["truncated"])]),
    "overlap_conflict": Case([
        rec("http", "ok", 40400, 80, http_req(b"GET /first HTTP/1.1\r\nHost: example\r\n\r\n", "GET", "/first"),
            http_resp(hg.HTTP_RESP, content_length=2, body_bytes=2), ["overlap_conflict"]),
        http_ok(40400)]),
    "seq_wraparound": Case([http_ok(40410), http_ok(40410)]),
    "rst_mid_message": Case([
        rec("http", "timeout", 40420, 80,
            http_req(hg.RST_POST, "POST", "/x", content_length=100, body_bytes=3), None, ["truncated"]),
        rec("http", "ok", 40421, 80, http_req(hg.HTTP_REQ, "GET", "/ok"),
            http_resp(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", content_length=100,
                      body_bytes=10), ["truncated"]),
        http_ok(40422)]),
    "data_after_fin": Case([http_ok(40430)], {"ledger.reassembly.data_after_fin": 1}),
    "syn_with_payload": Case([
        rec("http", "ok", 40440, 80, http_req(hg.SYN_REQ, "GET", "/syn"),
            http_resp(hg.HTTP_RESP, content_length=2, body_bytes=2)),
        http_ok(40440)]),
    "reversed_tiny_segments": Case([
        rec("http", "ok", 40450, 80,
            http_req(REV_POST + b"x" * hg.REVERSED, "POST", "/rev", content_length=hg.REVERSED,
                     body_bytes=hg.REVERSED),
            http_resp(hg.HTTP_RESP, content_length=2, body_bytes=2), ["gap"]),
        http_ok(40450)], {"workers.records.gaps": 1, "workers.records.gaps_absorbed": 1}),
    # 1,100 pipelined requests over the pending cap (1,024): the oldest 76 leave as timeouts (overflow);
    # their responses, which come first, are consumed unpaired; the last 1,024 pair with their own.
    "http_pipeline_overflow": Case(
        [rec("http", "timeout", 40460, 80, http_req(hg.HTTP_REQ, "GET", "/ok"), None)] * (hg.PIPELINED - 1024)
        + [http_ok(40460)] * 1025,
        {"workers.records.timeouts.overflow": hg.PIPELINED - 1024,
         "workers.records.responses_of_evicted": hg.PIPELINED - 1024,
         "workers.records.unmatched": 0, "workers.records.protocols.http.matched": 1025,
         "workers.records.protocols.http.responses": hg.PIPELINED + 1}),
}
assert set(CASES) == set(hg.CASES), set(CASES) ^ set(hg.CASES)


# ---------------------------------------------------------------- running one case

class Result:
    pass


def run_capture(cap):
    """Runs spanfeed on the capture under timeout; wall time and peak RSS of this run alone."""
    r = Result()
    with tempfile.TemporaryDirectory() as tmp:
        pcap, out, summ = (os.path.join(tmp, n) for n in ("in.pcap", "records.jsonl", "summary.json"))
        with open(pcap, "wb") as f:
            data = cap.to_bytes()
            f.write(data)
        r.capture_kb = len(data) // 1024
        cmd = ["timeout", "-k", "5", str(TIMEOUT_S), SPANFEED, "--pcap", pcap, "--job", "records",
               "-w", WORKERS, "-q", "--metrics", "off", "--output", f"jsonl:{out}", "--summary-json", summ]
        with open(os.path.join(tmp, "stderr"), "w+") as err:
            t0 = time.monotonic()
            pid = _spawn(cmd, err, tmp)
            _, status, usage = os.wait4(pid, 0)
            r.wall = time.monotonic() - t0
            err.seek(0)
            r.stderr = err.read()
        r.rc = os.waitstatus_to_exitcode(status)
        r.rss_kb = usage.ru_maxrss  # timeout's and, through its wait, spanfeed's
        r.records = []
        if os.path.exists(out):
            with open(out) as f:
                r.records = [json.loads(l) for l in f if l.strip()]
        r.summary = None
        if os.path.exists(summ):
            with open(summ) as f:
                r.summary = json.load(f)
    return r


def _spawn(cmd, err, cwd):
    pid = os.fork()
    if pid == 0:  # child: stdout/stdin closed off, stderr to the file
        try:
            os.chdir(cwd)
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            os.dup2(err.fileno(), 2)
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    return pid


def lookup(summary, path):
    """`a.b.c` in the summary; `workers.x.y` sums x.y over the workers."""
    parts = path.split(".")
    if parts[0] == "workers":
        total = 0
        for w in summary["workers"]:
            v = w
            for p in parts[1:]:
                v = v.get(p, {})
            total += v if isinstance(v, int) else 0  # a worker that never saw the protocol
        return total
    v = summary
    for p in parts:
        v = v[p]
    return v


def sort_key(r):
    return (r["ts"], r["client"]["port"], r.get("request") is None)


def strip(r):
    return {k: r.get(k) for k in ("protocol", "status", "client", "server", "request", "response", "flags")}


BASELINE = {}


class HostileInput(SpanfeedTestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        if "rss_kb" not in BASELINE:
            r = run_capture(hg.CASES["baseline"]())
            assert r.rc == 0, r.stderr
            BASELINE.update(rss_kb=r.rss_kb, wall=r.wall)
            print(f"\nbaseline: {r.wall:.2f} s, peak RSS {r.rss_kb // 1024} MiB", file=sys.stderr)

    def check_case(self, name):
        case = CASES[name]
        cap = hg.CASES[name]()
        r = run_capture(cap)
        print(f"\n{name}: rc {r.rc}, {r.wall:.2f} s, peak RSS {r.rss_kb // 1024} MiB, "
              f"{len(r.records)} records", file=sys.stderr)
        failed = {}  # check -> message: every check runs, so one report shows all that is wrong

        def check(label, fn):
            try:
                fn()
            except AssertionError as e:
                failed[label] = str(e)

        check("hang", lambda: self.assertNotEqual(r.rc, 124, f"still running after {TIMEOUT_S} s"))
        if "hang" not in failed:
            check("rc", lambda: self.assertEqual(r.rc, case.rc, f"exit code; stderr: {r.stderr[-1500:]}"))
            check("wall", lambda: self.assertLess(r.wall, WALL_S, f"took {r.wall:.1f} s"))
            # The capture file is mapped and read in place (resident up to the
            # reader's 32 MiB window): a bigger capture may use that much more.
            check("rss", lambda: self.assertLess(
                r.rss_kb, BASELINE["rss_kb"] + scaled_kb(REASSEMBLY_POOL_KB * int(WORKERS) + RSS_MARGIN_KB +
                                                         min(r.capture_kb, 32 * 1024)),
                f"peak RSS {r.rss_kb} KiB vs baseline {BASELINE['rss_kb']} KiB, capture {r.capture_kb} KiB"))
            check("summary", lambda: self.assertIsNotNone(r.summary, f"no summary; stderr: {r.stderr[-1500:]}"))
        if r.summary is not None:
            check("ledger", lambda: self.check_ledger(r.summary, cap, case))
            check("counters", lambda: self.check_counters(r.summary, case))
            check("records", lambda: self.check_records(r.summary, r.records, case))
        expected = set(case.expect_fail) if case.expect_fixed_by and not IGNORE_MARKERS else set()
        unexpected = {k: v for k, v in failed.items() if k not in expected}
        report = "\n".join(f"[{k}] {v}" for k, v in failed.items())
        if unexpected:
            self.fail(f"{name}: {', '.join(unexpected)} failed\n{report}")
        if expected:
            if not expected & failed.keys():
                self.fail(f"{name} passes now: remove its expect_fixed_by ({case.expect_fixed_by})")
            self.skipTest(f"expected failure until {case.expect_fixed_by} is merged ({case.why}): {report[:300]}")

    def check_ledger(self, s, cap, case):
        self.assertLedgerBalanced(s)
        self.assertEqual(s["ledger"]["rx"]["received"], len(cap.records), "frames read from the file")
        self.assertEqual(s["ledger"]["records"]["dropped"], 0)

    def check_counters(self, s, case):
        for path, want in case.checks.items():
            self.assertEqual(lookup(s, path), want, path)

    def check_records(self, s, records, case):
        rec_ledger = s["ledger"]["records"]
        self.assertEqual(rec_ledger["emitted"], len(case.records), "records emitted")
        self.assertEqual(rec_ledger["sinks"][0]["delivered"], len(case.records), "records delivered")
        got = sorted(records, key=sort_key)
        by_status = lambda rs: sorted((x["status"] for x in rs))  # noqa: E731
        self.assertEqual(by_status(got), by_status(case.records), "records per status")
        got = [strip(g) for g in got]
        for g, w in zip(got, case.records):  # fields a Partial leaves open are the fixing branch's choice
            for side in ("request", "response"):
                if isinstance(w[side], Partial) and isinstance(g[side], dict):
                    g[side] = {k: v for k, v in g[side].items() if k in w[side]}
        self.assertEqual(got, case.records)


def _make_test(name):
    case = CASES[name]

    def test(self):
        self.check_case(name)

    test.__doc__ = f"{name}" + (f" [expect_fixed_by {case.expect_fixed_by}: {case.why}]"
                                if case.expect_fixed_by else "")
    return test


_only = {n for n in os.environ.get("HOSTILE_CASES", "").split(",") if n}
for _name in CASES:
    if _name != "baseline" and (not _only or _name in _only):
        setattr(HostileInput, "test_" + _name, _make_test(_name))


if __name__ == "__main__":
    unittest.main(verbosity=2)
