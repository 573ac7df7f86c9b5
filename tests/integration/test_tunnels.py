"""Encapsulations and IP fragments through the whole pipeline (issue 15):
every capture of ../shared/pcaps/tunnels (per-type decapsulation counters
equal to what tshark dissects, records equal to tshark's decode of the inner
HTTP), and the crafted captures of tunnel_gen.py (each tunnel around an HTTP
exchange and a DNS query, nesting past the limit, two VNIs with the same
inner addresses, fragmented DNS and TCP, overlapping and missing fragments).
The ledger must balance in every run."""
import collections
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tunnel_gen as tg  # noqa: E402
from common import DATA, SpanfeedTestCase, run_spanfeed, scaled  # noqa: E402

# The captures of ../shared/pcaps/tunnels, bundled (identical bytes).
SHARED = os.path.join(DATA, "tunnels")
TYPES = ["erspan1", "erspan2", "erspan3", "gre", "vxlan", "vxlan_gpe", "geneve", "ipip"]


def tshark_fields(path, fields, extra=()):
    cmd = ["tshark", "-n", "-r", path, *extra, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a",
           "-E", "aggregator=,"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def tshark_decap_counts(path, extra=()):
    """Layers tshark dissects per tunnel type, counted on frames whose innermost packet is IP
    (what spanfeed delivers; a CDP frame inside ERSPAN is non_ip)."""
    counts = collections.Counter()
    for protos, erspan_ver, udp_dst in tshark_fields(path, ["frame.protocols", "erspan.version", "udp.dstport"],
                                                     extra):
        layers = protos.split(":")
        found = []
        vers = [v for v in erspan_ver.split(",") if v]
        ports = [p for p in udp_dst.split(",") if p]
        udp_i = 0
        for i, l in enumerate(layers):
            prev = layers[i - 1] if i else ""
            if l == "udp":
                udp_i += 1
            if l == "erspan":
                v = vers.pop(0) if vers else ""
                found.append({"": "erspan1", "1": "erspan2", "2": "erspan3"}[v])
            elif prev == "gre" and l in ("eth", "ip", "ipv6", "mpls"):
                found.append("gre")
            elif l == "vxlan" or (prev == "udp" and l == "nsh"):
                port = ports[udp_i - 1] if udp_i - 1 < len(ports) else ""
                found.append("vxlan_gpe" if port == "4790" else "vxlan")
            elif l == "geneve":
                found.append("geneve")
            elif prev in ("ip", "ipv6") and l in ("ip", "ipv6"):
                found.append("ipip")
        last_tunnel = max([i for i, l in enumerate(layers) if l in ("erspan", "gre", "vxlan", "nsh", "geneve")] +
                          [i for i, l in enumerate(layers) if l in ("ip", "ipv6") and i and
                           layers[i - 1] in ("ip", "ipv6")] + [0])
        if found and any(l in ("ip", "ipv6") for l in layers[last_tunnel + 1:]) or \
                (found and found[-1] == "ipip"):
            counts.update(found)
    return {t: counts.get(t, 0) for t in TYPES}


def is_fragment(frame):
    """An IPv4 fragment, or IPv6 with a fragment header first (Ethernet frames of tunnel_gen)."""
    if frame[12:14] == b"\x86\xdd":
        return frame[20] == 44
    return frame[12:14] == b"\x08\x00" and bool(struct.unpack("!H", frame[20:22])[0] & 0x3FFF)


def decap_counts(summary):
    total = collections.Counter()
    for rx in summary["rx_lcores"]:
        total.update(rx["decapsulated"])
    return {t: total.get(t, 0) for t in TYPES}


class TunnelTestCase(SpanfeedTestCase):
    def run_records(self, pcap, config="", workers=2):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "records.jsonl")
            args = ["--pcap", pcap, "--job", "records", "-w", str(workers), "-q", "--output", f"jsonl:{out}"]
            if config:
                cfg = os.path.join(tmp, "c.yaml")
                with open(cfg, "w") as f:
                    f.write(config)
                args += ["-c", cfg]
            r = run_spanfeed(args)
            self.assertEqual(r.rc, 0, r.stderr)
            self.assertLedgerBalanced(r.summary)
            recs = []
            if os.path.exists(out):
                with open(out) as f:
                    recs = [json.loads(line) for line in f]
            return r.summary, recs


class SharedCaptures(TunnelTestCase):
    def test_every_shared_capture_counts_what_tshark_dissects(self):
        for name in sorted(os.listdir(SHARED)):
            if not name.endswith(".pcap"):
                continue
            path = os.path.join(SHARED, name)
            with self.subTest(capture=name):
                extra, config = (), ""
                if name == "ff-vxlan.pcap":  # VXLAN on a non-standard port: configured
                    extra = ("-d", "udp.port==58678,vxlan")
                    config = "decap:\n  vxlan_ports: [4789, 58678]\n"
                s, _ = self.run_records(path, config)
                self.assertEqual(decap_counts(s), tshark_decap_counts(path, extra))
                rx = s["ledger"]["rx"]
                self.assertEqual(rx["tunnel_malformed"], 0)
                self.assertEqual(rx["tunnel_too_deep"], 0)

    def test_erspan_capture_http_equals_tshark(self):
        """The ERSPAN capture's inner HTTP: tshark, told the server ports and not to wait for whole
        bodies (the mirror lost segments), decodes the same requests and responses, but for the two
        requests in segments it flags out-of-order (spanfeed's reassembly delivers those too)."""
        path = os.path.join(SHARED, "decapsulate_erspan1.pcap")
        s, recs = self.run_records(path)
        http = [r for r in recs if r["protocol"] == "http"]
        ports = sorted({r["server"]["port"] for r in http})
        opts = ["-o", "http.desegment_body:FALSE", "-o", "http.desegment_headers:FALSE"]
        for p in ports:
            opts += ["-d", f"tcp.port=={p},http"]
        want_req = [u for (u,) in tshark_fields(path, ["http.request.uri"], (*opts, "-Y", "http.request"))]
        for (payload,) in tshark_fields(path, ["tcp.payload"], ("-Y", "tcp.analysis.out_of_order")):
            line = bytes.fromhex(payload.replace(":", "")).split(b"\r\n", 1)[0].decode("latin-1")
            if line.split(" ")[0] in ("GET", "POST", "PUT", "HEAD", "DELETE"):
                want_req.append(line.split(" ")[1])
        want_resp = sorted(int(c) for (c,) in tshark_fields(path, ["http.response.code"], (*opts, "-Y", "http.response")))
        got_req = sorted(r["request"]["path"] + ("?" + r["request"]["query"] if r["request"].get("query") else "")
                         for r in http if r["request"])
        got_resp = sorted(r["response"]["status_code"] for r in http if r["response"])
        self.assertEqual(len(got_req), 23)
        self.assertEqual(got_req, sorted(want_req))
        self.assertEqual(got_resp, want_resp)
        # every frame is ERSPAN around IP: one of them type II (tshark agrees)
        self.assertEqual((decap_counts(s)["erspan1"], decap_counts(s)["erspan2"]), (1028, 1))

    def test_ff_vxlan_request_needs_its_port(self):
        path = os.path.join(SHARED, "ff-vxlan.pcap")
        s, recs = self.run_records(path)
        self.assertEqual(decap_counts(s)["vxlan"], 0)
        self.assertEqual(recs, [])
        s, recs = self.run_records(path, "decap:\n  vxlan_ports: [58678]\n  records: true\n")
        self.assertEqual(decap_counts(s)["vxlan"], 1)
        self.assertEqual(len(recs), 1)
        r = recs[0]
        self.assertEqual((r["protocol"], r["request"]["method"], r["request"]["path"]), ("http", "GET", "/"))
        self.assertEqual(r["client"], {"ip": "10.244.0.34", "port": 51854})
        self.assertEqual((r["tunnel"]["type"], r["tunnel"]["depth"], r["tunnel"]["id"]), ("vxlan", 1, 1))
        outer = tshark_fields(path, ["ip.src", "ip.dst"])[0]
        self.assertEqual(r["tunnel"]["outer_src"], outer[0].split(",")[0])
        self.assertEqual(r["tunnel"]["outer_dst"], outer[1].split(",")[0])


HTTP_OK = {"bytes": len(tg.hg.HTTP_REQ), "method": "GET", "path": "/ok"}


class CraftedTunnels(TunnelTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.pcaps = {n: tg.write(cls.tmp.name, n) for n in tg.CASES}

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check_http_and_dns(self, recs):
        by = {r["protocol"]: r for r in recs}
        self.assertEqual(sorted(r["protocol"] for r in recs), ["dns", "http"], recs)
        h, d = by["http"], by["dns"]
        self.assertEqual((h["status"], h["request"]["method"], h["request"]["path"], h["response"]["status_code"]),
                         ("ok", "GET", "/ok", 200))
        self.assertEqual((h["client"], h["server"]), ({"ip": tg.hg.CLIENT_IP, "port": 40000},
                                                      {"ip": tg.hg.SERVER_IP, "port": 80}))
        self.assertEqual((d["status"], d["request"]["qname"], d["response"]["answers"]),
                         ("ok", "example.com", [{"type": "A", "data": "10.0.0.1"}]))

    def test_each_encapsulation_decodes_like_bare(self):
        layers = {"erspan1": ["erspan1"], "erspan2": ["erspan2"], "erspan3": ["erspan3"], "gre_ip": ["gre"],
                  "gre_teb": ["gre"], "gre_mpls": ["gre"], "vxlan": ["vxlan"], "vxlan_gpe_nsh": ["vxlan_gpe"],
                  "geneve": ["geneve"], "ipip": ["ipip"], "ip4in6": ["ipip"],
                  "vxlan_in_erspan2": ["erspan2", "vxlan"]}
        ids = {"erspan2": 7, "erspan3": 9, "gre_ip": 0xABCD, "gre_teb": 42, "vxlan": tg.VNI,
               "vxlan_gpe_nsh": tg.VNI, "geneve": tg.VNI, "vxlan_in_erspan2": tg.VNI}
        for case, types in layers.items():
            with self.subTest(case=case):
                s, recs = self.run_records(self.pcaps[case], "decap:\n  records: true\n")
                self.check_http_and_dns(recs)
                frames = 12  # handshake 3, request + ack, response + ack, FIN/FIN/ACK, DNS 2
                want = {t: 0 for t in TYPES}
                for t in types:
                    want[t] += frames
                self.assertEqual(decap_counts(s), want)
                self.assertEqual(decap_counts(s), tshark_decap_counts(self.pcaps[case]))
                t = recs[0]["tunnel"]
                self.assertEqual((t["type"], t["depth"]), (types[-1], len(types)))
                self.assertEqual(t.get("id"), ids.get(case))
                if case == "ip4in6":
                    self.assertEqual((t["outer_src"], t["outer_dst"]), ("::1", "::2"))
                else:
                    self.assertEqual((t["outer_src"], t["outer_dst"]), (tg.OUTER_A, tg.OUTER_B))

    def test_nesting_beyond_the_limit_is_counted(self):
        s, recs = self.run_records(self.pcaps["nested4"])
        self.assertEqual(recs, [])
        self.assertEqual(s["ledger"]["rx"]["tunnel_too_deep"], 12)
        self.assertEqual(s["ledger"]["rx"]["delivered"], 0)
        s, recs = self.run_records(self.pcaps["nested4"], "decap:\n  max_depth: 4\n")
        self.check_http_and_dns(recs)
        self.assertEqual(decap_counts(s), {**{t: 0 for t in TYPES}, "erspan1": 12, "gre": 12, "vxlan": 12,
                                          "geneve": 12})

    def test_decap_off_leaves_the_outer_packets(self):
        s, recs = self.run_records(self.pcaps["vxlan"], "decap:\n  enabled: false\n")
        self.assertEqual(recs, [])
        self.assertEqual(decap_counts(s), {t: 0 for t in TYPES})

    def test_two_vnis_with_the_same_inner_addresses_stay_apart(self):
        s, recs = self.run_records(self.pcaps["two_vnis"], "decap:\n  records: true\n", workers=1)
        got = sorted((r["tunnel"]["id"], r["request"]["path"], r["response"]["status_code"]) for r in recs)
        self.assertEqual(got, [(100, "/tenant-a", 200), (200, "/tenant-b", 404)])
        # Without the tunnel in the flow key the two connections are one flow: they merge.
        s, recs = self.run_records(self.pcaps["two_vnis"], "decap:\n  flow_key: false\n", workers=1)
        self.assertNotEqual(sorted((r["request"] or {}).get("path") for r in recs), ["/tenant-a", "/tenant-b"])

    def test_filter_on_outer_and_inner(self):
        pcap = self.pcaps["vxlan"]
        s, recs = self.run_records(pcap, "capture:\n  filter: \"tcp port 80\"\n")
        self.assertEqual(recs, [])
        self.assertEqual(s["ledger"]["rx"]["filtered"], 12)
        s, recs = self.run_records(pcap, "capture:\n  filter: \"tcp port 80\"\n  filter_on: inner\n")
        self.assertEqual([r["protocol"] for r in recs], ["http"])
        self.assertEqual(s["ledger"]["rx"]["filtered"], 2)  # the DNS query and answer

    def frag(self, s):
        return [w["ip_fragments"] for w in s["workers"]]

    def frag_total(self, s):
        total = collections.Counter()
        for w in self.frag(s):
            total.update(w)
        return total

    def test_fragments_reassembled_in_any_order(self):
        for case in ("frag_in_order", "frag_reversed"):
            with self.subTest(case=case):
                s, recs = self.run_records(self.pcaps[case])
                by = {r["protocol"]: r for r in recs}
                self.assertEqual(sorted(by), ["dns", "http"])
                self.assertEqual(by["dns"]["status"], "ok")
                self.assertEqual(by["dns"]["response"]["answer_count"], 100)
                self.assertEqual(by["http"]["response"]["status_code"], 200)
                self.assertEqual(by["http"]["response"]["body_bytes"], 2500)
                self.assertEqual(by["http"]["flags"], [])
                f = self.frag_total(s)
                self.assertEqual((f["fragments"], f["reassembled"], f["reassembled_fragments"]), (6, 2, 6))
                self.assertEqual(f["overlap"] + f["table_full"] + f["timed_out"] + f["pending"], 0)

    def test_missing_fragment_times_out(self):
        s, recs = self.run_records(self.pcaps["frag_missing"])
        f = self.frag_total(s)
        self.assertEqual((f["fragments"], f["reassembled"], f["timed_out"], f["pending"]), (4, 0, 4, 0))
        by = collections.defaultdict(list)
        for r in recs:
            by[r["protocol"]].append(r)
        self.assertEqual([r["status"] for r in by["dns"]], ["timeout"])  # the answer never completed
        # The HTTP response's segment never completed either: the request times out across a gap.
        self.assertEqual([(r["status"], r["flags"]) for r in by["http"]], [("timeout", ["gap"])])

    def test_overlapping_fragments_are_dropped(self):
        s, recs = self.run_records(self.pcaps["frag_overlap"])
        f = self.frag_total(s)
        self.assertEqual(f["fragments"], 6)
        self.assertEqual(f["reassembled"], 0)
        self.assertEqual((f["overlap"], f["timed_out"], f["pending"]), (6, 0, 0))
        self.assertEqual(sorted((r["protocol"], r["status"]) for r in recs), [("dns", "timeout"), ("http", "timeout")])

    def test_ipv6_fragments(self):
        s, recs = self.run_records(self.pcaps["frag_ipv6_dns"])
        self.assertEqual([(r["protocol"], r["status"], r["response"]["answer_count"]) for r in recs],
                         [("dns", "ok", 100)])
        f = self.frag_total(s)
        self.assertEqual((f["fragments"], f["reassembled"]), (3, 1))

    def test_fragmented_answers_meet_their_queries_on_any_worker_count(self):
        """RX steers a datagram's fragments to the worker of its first fragment's 5-tuple: before,
        they went to the worker of the address pair, and with two workers 11 of these 24 answers
        (three workers: 14) were reassembled away from their query (timeout + unmatched)."""
        for workers in (1, 2, 3):
            with self.subTest(workers=workers):
                s, recs = self.run_records(self.pcaps["frag_many_dns"], workers=workers)
                self.assertEqual(collections.Counter((r["protocol"], r["status"]) for r in recs),
                                 {("dns", "ok"): 24})
                self.assertEqual(sorted(r["client"]["port"] for r in recs),
                                 list(range(53100, 53116)) + list(range(53200, 53208)))
                f = self.frag_total(s)
                self.assertEqual((f["fragments"], f["reassembled"], f["other_worker"], f["timed_out"]),
                                 (72, 24, 0, 0))

    def test_mirror_copies_of_fragments_are_dropped_before_reassembly(self):
        """Every fragment twice (ingress and egress mirrored): rte_ip_frag took each copy for an
        overlap and dropped the datagram (before: 8 timeouts; of 48 fragments 40 overlap, 8 timed out); the
        copies are now dropped first, counted as duplicates."""
        for workers in (1, 2):
            with self.subTest(workers=workers):
                s, recs = self.run_records(self.pcaps["frag_mirrored"], workers=workers)
                self.assertEqual(collections.Counter((r["protocol"], r["status"]) for r in recs),
                                 {("dns", "ok"): 8})
                f = self.frag_total(s)
                self.assertEqual((f["fragments"], f["duplicate"], f["reassembled"], f["overlap"], f["timed_out"]),
                                 (24, 24, 8, 0, 0))
        # dedup off for files: the copies go into the table as before
        s, recs = self.run_records(self.pcaps["frag_mirrored"], config="dedup:\n  files: false\n", workers=1)
        f = self.frag_total(s)
        self.assertEqual((f["duplicate"], f["reassembled"]), (0, 0))
        self.assertEqual(f["overlap"] + f["timed_out"], 48)

    def test_fragmented_outer_vxlan_is_decapsulated_after_reassembly(self):
        s, recs = self.run_records(self.pcaps["frag_outer_vxlan"], workers=1)
        self.assertEqual([(r["protocol"], r["status"], r["response"]["answer_count"]) for r in recs],
                         [("dns", "ok", 100)])
        f = self.frag_total(s)
        self.assertEqual((f["fragments"], f["reassembled"], f["other_worker"]), (2, 1, 0))
        self.assertEqual(decap_counts(s)["vxlan"], 1)  # RX saw the query; the answer was a fragment there

    def test_every_infinite_replay_pass_reassembles_the_same(self):
        """--infinite replays the mapped file: rte_ip_frag rewrites a first fragment's headers
        when it completes a datagram, so the defragmenter copies those headers out of the
        (read-only) mapping first; every pass then reassembles every datagram again."""
        cap = tg.hg.Capture()
        parts = []  # (packets of a pass after which the part's datagram is complete, its fragments)
        for part in (tg.frag_case(tcp=False), tg.frag_ipv6_dns(), tg.frag_outer_vxlan()):
            cap.records += part.records  # each part ends with its datagram's last fragment
            parts.append((len(cap.records), sum(1 for r in part.records if is_fragment(r[1]))))
        self.assertEqual([n for _, n in parts], [3, 3, 2])  # IPv4, IPv6, VXLAN's outer IPv4
        path = os.path.join(self.tmp.name, "frag-loop.pcap")
        with open(path, "wb") as f:
            f.write(cap.to_bytes())
        r = run_spanfeed(["--pcap", path, "--infinite", "--duration", str(scaled(1)), "--mode", "offline", "-w", "1",
                          "--job", "payload-sum", "-q"])
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertLedgerBalanced(r.summary)
        got = r.summary["ledger"]["workers"]["received"]
        passes, rest = divmod(got, len(cap.records))
        self.assertGreaterEqual(passes, 3)
        done = [n for end, n in parts if end <= rest]  # the last, partial pass
        f = self.frag_total(r.summary)
        self.assertEqual((f["reassembled"], f["reassembled_fragments"]),
                         (3 * passes + len(done), 8 * passes + sum(done)), (got, f))
        self.assertEqual((f["overlap"], f["table_full"], f["unsupported"], f["unparsed"], f["pending"]),
                         (0, 0, 0, 0, 0), f)

    def test_full_table_drops_and_counts(self):
        """One table entry (ip_fragments.max_datagrams 1), two datagrams interleaved: A's first
        fragment takes the entry, B's is dropped (table_full); A completes; B's other two then
        wait without their first and time out at the end."""
        hg = tg.hg
        cap = hg.Capture()

        def frags(qid, port, ident):
            dg = hg.udp_dgram(hg.SERVER_IP, hg.CLIENT_IP, 53, port, tg.big_dns_answer(qid, 100))
            return tg.ipv4_fragments(hg.SERVER_IP, hg.CLIENT_IP, 17, dg, 800, ident=ident)
        a, b = frags(0x1111, 53001, 71), frags(0x2222, 53002, 72)
        for ip in (a[0], b[0], a[1], a[2], b[1], b[2]):
            cap.add(hg.eth(ip))
        path = os.path.join(self.tmp.name, "frag-full.pcap")
        with open(path, "wb") as f:
            f.write(cap.to_bytes())
        s, _ = self.run_records(path, "ip_fragments:\n  max_datagrams: 1\n", workers=1)
        f = self.frag_total(s)
        self.assertEqual((f["fragments"], f["reassembled"], f["reassembled_fragments"], f["table_full"],
                          f["timed_out"], f["overlap"], f["pending"]), (6, 1, 3, 1, 2, 0, 0))

    def test_reassembly_off_passes_fragments_on(self):
        s, recs = self.run_records(self.pcaps["frag_in_order"], "ip_fragments:\n  reassemble: false\n")
        self.assertNotIn("ip_fragments", s["workers"][0])
        by = {r["protocol"]: r for r in recs}
        self.assertEqual(by["dns"]["status"], "timeout")


if __name__ == "__main__":
    unittest.main(verbosity=2)
