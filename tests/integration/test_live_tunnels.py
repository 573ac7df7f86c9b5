"""Real encapsulation: two network namespaces joined by a veth pair, with a
kernel `vxlan` device (VNI 77, UDP 4789) and a `gretap` device (GRE key 78,
transparent Ethernet bridging) between them. Where the kernel has no gretap
(containers without the ip_gre module) the gretap is a TAP device whose
frames a small user-space bridge wraps in GRE over a raw IP socket, exactly
as the kernel would. A client in one
namespace makes an HTTP request and a DNS query through each tunnel to
servers in the other; tcpdump records the veth (the outer frames), and
spanfeed decodes the capture: the inner HTTP and DNS, the per-type counters
equal to tshark's dissection, the tunnel in each record. A few seconds; needs
root (CI runs as root)."""
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import SpanfeedTestCase, run_spanfeed  # noqa: E402
from test_tunnels import decap_counts, tshark_decap_counts  # noqa: E402

NS_A, NS_B = f"encap-a-{os.getpid()}", f"encap-b-{os.getpid()}"
VA, VB = "encva", "encvb"

DNS_SERVER = r"""
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 53))
while True:
    q, peer = s.recvfrom(2048)
    qid, = struct.unpack("!H", q[:2])
    end = 12
    while q[end]:
        end += 1 + q[end]
    question = q[12:end + 5]
    s.sendto(struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question +
             b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([10, 0, 0, 1]), peer)
"""

CLIENT = r"""
import socket, struct, sys, urllib.request
for host in sys.argv[1:]:
    body = urllib.request.urlopen(f"http://{host}/", timeout=5).read()
    assert body, host
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    name = b"".join(bytes([len(p)]) + p for p in b"example.com".split(b".")) + b"\0"
    s.sendto(struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + name + struct.pack("!HH", 1, 1), (host, 53))
    s.recvfrom(2048)
"""


# User-space gretap: frames from tap device argv[1] go to argv[3] in GRE (key argv[4], 0x6558)
# from argv[2]; GRE packets from argv[3] go back into the tap.
GRETAP = r"""
import fcntl, os, select, socket, struct, sys
tap = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(tap, 0x400454CA, struct.pack("16sH", sys.argv[1].encode(), 0x0002 | 0x1000))  # TUNSETIFF: TAP, NO_PI
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, 47)
raw.bind((sys.argv[2], 0))
peer, key = sys.argv[3], int(sys.argv[4])
hdr = struct.pack("!HHI", 0x2000, 0x6558, key)
while True:
    r, _, _ = select.select([tap, raw], [], [])
    if tap in r:
        raw.sendto(hdr + os.read(tap, 65536), (peer, 0))
    if raw in r:
        pkt, (src, _) = raw.recvfrom(65536)
        ihl = (pkt[0] & 15) * 4
        if src == peer and pkt[ihl:ihl + 8] == hdr:
            os.write(tap, pkt[ihl + 8:])
"""


def sh(*args, check=True):
    return subprocess.run(list(args), check=check, capture_output=True, text=True)


def ns(name, *args, check=True):
    return sh("ip", "netns", "exec", name, *args, check=check)


@unittest.skipUnless(os.geteuid() == 0, "needs root for network namespaces")
class LiveTunnels(SpanfeedTestCase):
    def setUp(self):
        self.procs = []
        self.tearDown()
        self.procs = []
        sh("ip", "netns", "add", NS_A)
        sh("ip", "netns", "add", NS_B)
        sh("ip", "link", "add", VA, "netns", NS_A, "type", "veth", "peer", "name", VB, "netns", NS_B)
        for n, dev, me, peer in ((NS_A, VA, 1, 2), (NS_B, VB, 2, 1)):
            ns(n, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            ns(n, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
            ns(n, "ip", "link", "set", "lo", "up")
            ns(n, "ip", "addr", "add", f"192.168.77.{me}/24", "dev", dev)
            ns(n, "ip", "link", "set", dev, "up")
            ns(n, "ip", "link", "add", "vx0", "type", "vxlan", "id", "77", "local", f"192.168.77.{me}",
               "remote", f"192.168.77.{peer}", "dstport", "4789", "dev", dev)
            if ns(n, "ip", "link", "add", "gt0", "type", "gretap", "key", "78", "local", f"192.168.77.{me}",
                  "remote", f"192.168.77.{peer}", check=False).returncode != 0:
                ns(n, "ip", "tuntap", "add", "dev", "gt0", "mode", "tap")
                ns(n, "ip", "link", "set", "gt0", "mtu", "1450")
                self.bg(n, sys.executable, "-c", GRETAP, "gt0", f"192.168.77.{me}", f"192.168.77.{peer}", "78")
            ns(n, "ip", "addr", "add", f"10.77.0.{me}/24", "dev", "vx0")
            ns(n, "ip", "addr", "add", f"10.78.0.{me}/24", "dev", "gt0")
            ns(n, "ip", "link", "set", "vx0", "up")
            ns(n, "ip", "link", "set", "gt0", "up")

    def tearDown(self):
        for p in self.procs:
            p.kill()
            p.wait()
        sh("ip", "netns", "del", NS_A, check=False)
        sh("ip", "netns", "del", NS_B, check=False)

    def bg(self, nsname, *args):
        p = subprocess.Popen(["ip", "netns", "exec", nsname, *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def test_vxlan_and_gretap_traffic_decoded(self):
        with tempfile.TemporaryDirectory() as tmp:
            pcap = os.path.join(tmp, "outer.pcap")
            www = os.path.join(tmp, "www")
            os.mkdir(www)
            with open(os.path.join(www, "index.html"), "w") as f:
                f.write("hello through a tunnel\n")
            self.bg(NS_B, sys.executable, "-c", DNS_SERVER)
            self.bg(NS_B, sys.executable, "-m", "http.server", "80", "--bind", "0.0.0.0", "--directory", www)
            dump = subprocess.Popen(["ip", "netns", "exec", NS_A, "tcpdump", "-i", VA, "-s", "0", "-U", "-w", pcap],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            self.procs.append(dump)
            dump.stderr.readline()  # "listening on ...": tcpdump is attached (a loaded box takes its time)
            time.sleep(0.5)  # the servers are listening
            r = ns(NS_A, sys.executable, "-c", CLIENT, "10.77.0.2", "10.78.0.2", check=False)
            self.assertEqual(r.returncode, 0, r.stderr)
            time.sleep(1.0)  # the last FIN/ACKs
            dump.terminate()
            dump.communicate()
            self.procs.remove(dump)
            out = os.path.join(tmp, "r.jsonl")
            cfg = os.path.join(tmp, "c.yaml")
            with open(cfg, "w") as f:
                f.write("decap:\n  records: true\n")
            run = run_spanfeed(["--pcap", pcap, "--job", "records", "-w", "2", "-q", "-c", cfg,
                                "--output", f"jsonl:{out}"])
            self.assertEqual(run.rc, 0, run.stderr)
            self.assertLedgerBalanced(run.summary)
            with open(out) as f:
                recs = [json.loads(line) for line in f]
            got = decap_counts(run.summary)
            self.assertEqual(got, tshark_decap_counts(pcap))
        # at least the HTTP request, its response and the DNS pair went through each tunnel (how
        # many handshake and FIN frames made it before tcpdump stopped varies)
        self.assertGreaterEqual(got["vxlan"], 4, (got, recs))
        self.assertGreaterEqual(got["gre"], 4, (got, recs))
        summary = collections.Counter(
            (r["protocol"], r["status"], r["tunnel"]["type"], r["tunnel"]["id"], r["server"]["ip"]) for r in recs)
        self.assertEqual(summary, collections.Counter({
            ("http", "ok", "vxlan", 77, "10.77.0.2"): 1, ("dns", "ok", "vxlan", 77, "10.77.0.2"): 1,
            ("http", "ok", "gre", 78, "10.78.0.2"): 1, ("dns", "ok", "gre", 78, "10.78.0.2"): 1}))
        for r in recs:
            self.assertEqual((r["tunnel"]["outer_src"], r["tunnel"]["outer_dst"]) in
                             {("192.168.77.1", "192.168.77.2"), ("192.168.77.2", "192.168.77.1")}, True)
            if r["protocol"] == "http":
                self.assertEqual((r["request"]["method"], r["request"]["path"], r["response"]["status_code"]),
                                 ("GET", "/", 200))
            else:
                self.assertEqual(r["response"]["answers"], [{"type": "A", "data": "10.0.0.1"}])


if __name__ == "__main__":
    unittest.main(verbosity=2)
