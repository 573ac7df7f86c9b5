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
from common import SPANFEED, SpanfeedTestCase, capture  # noqa: E402


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


class Metrics(SpanfeedTestCase):
    def test_scrape_during_and_after_run(self):
        port = free_port()
        p = subprocess.Popen([SPANFEED, "--pcap", capture("memcached/memcached.pcap"), "--infinite",
                              "--duration", "3", "--job", "records", "--output", "jsonl:/dev/null",
                              "-w", "2", "-q", "--metrics", f"127.0.0.1:{port}",
                              "--metrics-linger", "20"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            # start-up takes longer on a loaded machine: wait for the first packets
            deadline = time.monotonic() + 20
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
            for _ in range(100):
                _, after = scrape(port)
                if total(after, "spanfeed_up") == 0:
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
                              "--metrics-linger", "30"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(2)
            p.send_signal(signal.SIGTERM)
            after = {}
            for _ in range(100):
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
        summary's: an overlap conflict, a start line cut at close, 100 pipelined requests over the
        pending cap of 64, a Redis request refused for its bulk length (one resync)."""
        import hostile_gen as hg
        cap = hg.overlap_conflict()  # one overlap conflict (HTTP, port 40400)
        c = hg.Tcp(cap, 40470, 80).handshake()
        c.send(True, hg.HTTP_REQ * 100).send(False, hg.HTTP_RESP * 100).close()
        hg.Tcp(cap, 40471, 80).handshake().send(True, b"GET /cut HT").close()  # a start line cut by the close
        # a Redis bulk length no server takes: "abc\r\n" skipped up to the next command (one resync)
        hg.Tcp(cap, 40472, 6379).handshake().send(True, hg.REDIS_HUGE_BULK + b"\r\n" + hg.REDIS_REQ).close()
        port = free_port()
        with tempfile.TemporaryDirectory() as tmp:
            pcap, summ = os.path.join(tmp, "in.pcap"), os.path.join(tmp, "summary.json")
            with open(pcap, "wb") as f:
                f.write(cap.to_bytes())
            p = subprocess.Popen([SPANFEED, "--pcap", pcap, "--job", "records", "--output", "jsonl:/dev/null",
                                  "-w", "1", "-q", "--metrics", f"127.0.0.1:{port}", "--metrics-linger", "20",
                                  "--summary-json", summ],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                after = {}
                for _ in range(200):
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
        self.assertEqual(total(after, "spanfeed_responses_of_evicted_total"), 100 - 64)
        self.assertEqual(rec["responses_of_evicted"], 100 - 64)
        self.assertEqual(total(after, "spanfeed_request_timeouts_total", cause="overflow"), 100 - 64)
        # the refused GET and the GET after it wait for replies that never come
        self.assertEqual(total(after, "spanfeed_request_timeouts_total", cause="close"), 2)
        self.assertEqual(total(after, "spanfeed_roundtrips_total", status="unmatched"), 0)
        self.assertEqual(total(after, "spanfeed_roundtrips_total", status="ok"), 2 + 64)
        self.assertEqual(total(after, "spanfeed_decode_resyncs_total"), 1)
        self.assertEqual(rec["resyncs"], 1)
        self.assertEqual(total(after, "spanfeed_decode_resync_skipped_bytes_total"), len(b"abc\r\n"))
        self.assertEqual(rec["resync_skipped_bytes"], len(b"abc\r\n"))
        self.assertEqual(total(after, "spanfeed_ledger_balanced"), 1)

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


if __name__ == "__main__":
    unittest.main(verbosity=2)
