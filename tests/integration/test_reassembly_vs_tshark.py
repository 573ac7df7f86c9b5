"""TCP reassembly through the whole pipeline (EAL, RX, rings, worker flow
table, reassembler): for every TCP connection in every bundled capture, the
reassembled bytes of each direction equal what `tshark -z follow,tcp,raw,N`
gives, compared by length and FNV-1a 64 digest (--job flows --flows-out).

Where spanfeed declared a gap (a hole that never filled), tshark's follow
stops at the hole while spanfeed keeps delivering the bytes after it: there
the bytes before spanfeed's first gap must equal tshark's.

Tunnel captures are left out: tshark follows the decapsulated inner TCP,
spanfeed tracks the outer headers (no decapsulation yet)."""
import collections
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DATA, SpanfeedTestCase, all_captures, capture, run_spanfeed  # noqa: E402
from tshark_oracle import fnv1a64, follow_tcp  # noqa: E402

# One direction tagged, the other not: with VLAN in the flow key (the
# default) the two directions are two flows; compared with hash_vlan off.
ASYMMETRIC_VLAN = {"mysql/binary-in-sql.pcap"}


def endpoint(ip, port):
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def run_flows(test, path, workers, extra=()):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "flows.jsonl")
        r = run_spanfeed(["--pcap", path, "--job", "flows", "--flows-out", out,
                          "-w", str(workers), "-q"] + list(extra))
        test.assertEqual(r.rc, 0, r.stderr)
        with open(out) as f:
            flows = [json.loads(line) for line in f]
    return r.summary, flows


class ReassemblyVsTshark(SpanfeedTestCase):
    def assertReassemblyLedger(self, s):
        self.assertLedgerBalanced(s)
        seg = s["ledger"]["reassembly"]
        self.assertEqual(seg["segments"], s["ledger"]["workers"]["received"])
        self.assertEqual(seg["segments"], sum(v for k, v in seg.items() if k != "segments"))
        for w in s["workers"]:
            ra = w["reassembly"]
            self.assertEqual(ra["flows_created"], sum(ra["closed"].values()))
            self.assertEqual(ra["outcomes"]["dropped_memory"], 0)
            self.assertEqual(ra["bytes_dropped_memory"], 0)

    def compare(self, rel, flows):
        ours = collections.defaultdict(list)
        for f in sorted(flows, key=lambda f: (f["worker"], f["serial"])):
            if f["proto"] != "tcp":
                continue
            c = endpoint(f["client"]["ip"], f["client"]["port"])
            s = endpoint(f["server"]["ip"], f["server"]["port"])
            if f["c2s"]["bytes"] == 0 and f["s2c"]["bytes"] == 0:
                continue
            ours[tuple(sorted((c, s)))].append({c: f["c2s"], s: f["s2c"], "close": f.get("close")})
        theirs = collections.defaultdict(list)
        for st in follow_tcp(capture(rel)):
            if not st["data0"] and not st["data1"]:
                continue
            theirs[tuple(sorted((st["node0"], st["node1"])))].append(
                {st["node0"]: st["data0"], st["node1"]: st["data1"]})
        self.assertEqual(sorted(ours), sorted(theirs), "connections differ")
        compared = 0
        for key, tshark_conns in theirs.items():
            our_conns = ours[key]
            self.assertEqual(len(our_conns), len(tshark_conns), key)
            for mine, theirs_c in zip(our_conns, tshark_conns):
                for sender, data in theirs_c.items():
                    d = mine[sender]
                    want = (len(data), fnv1a64(data))
                    if mine["close"] == "rst" and d["gaps"] == 0 and d["bytes"] < len(data):
                        # The peer sent on after the other side's RST (h2c.pcap: the server's
                        # in-flight data): tshark follows it, spanfeed ends the stream at the RST
                        # and counts those segments `after_close`. The bytes before must agree.
                        want = (d["bytes"], fnv1a64(data[:d["bytes"]]))
                    if d["gaps"] == 0:
                        self.assertEqual((d["bytes"], d["fnv64"]), want, f"{key} from {sender}")
                    else:
                        self.assertEqual((d["prefix_bytes"], d["prefix_fnv64"]), want,
                                         f"{key} from {sender}, before the first gap")
                    compared += 1
        return compared

    def test_every_tcp_connection_matches_tshark_follow(self):
        total = 0
        for path in all_captures():
            rel = os.path.relpath(path, DATA)
            if rel.startswith("tunnels/"):
                continue
            with self.subTest(capture=rel):
                extra = []
                if rel in ASYMMETRIC_VLAN:
                    tmp = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
                    tmp.write("flow:\n  hash_vlan: false\n")
                    tmp.close()
                    extra = ["-c", tmp.name]
                s, flows = run_flows(self, path, 2, extra)
                self.assertReassemblyLedger(s)
                total += self.compare(rel, flows)
        # 60+ TCP directions across the captures; a broken pipeline compares none
        self.assertGreater(total, 150)

    def test_worker_count_does_not_change_streams(self):
        rel = "mysql/171-mysql.pcap"
        digests = []
        for workers in (1, 4):
            s, flows = run_flows(self, capture(rel), workers)
            self.assertReassemblyLedger(s)
            digests.append(sorted((f["client"]["port"], f["c2s"]["fnv64"], f["s2c"]["fnv64"])
                                  for f in flows))
        self.assertEqual(digests[0], digests[1])
        self.assertEqual(len(digests[0]), 6)

    def test_asymmetric_vlan_is_two_flows_with_vlan_in_key(self):
        s, flows = run_flows(self, capture("mysql/binary-in-sql.pcap"), 1)
        tcp = [f for f in flows if f["proto"] == "tcp"]
        self.assertEqual(len(tcp), 2)
        self.assertEqual(sorted(f["vlan"] for f in tcp), [0, 3875 << 12])


if __name__ == "__main__":
    unittest.main(verbosity=2)
