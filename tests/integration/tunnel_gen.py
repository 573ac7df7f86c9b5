#!/usr/bin/env python3
"""Crafted captures for the encapsulation and IP fragment suite
(test_tunnels.py): an HTTP exchange and a DNS query/answer wrapped in every
encapsulation spanfeed removes (ERSPAN I/II/III, GRE plain/keyed/sequenced,
GRE-TEB, GRE-MPLS, VXLAN, VXLAN-GPE with NSH, Geneve with options,
IPv4/IPv6-in-IPv4/IPv6), nested ones, two VNIs with identical inner
addresses, and fragmented traffic (UDP DNS answers, TCP, a fragmented
VXLAN outer packet; overlapping and missing fragments). Plain Python
(struct only), built on hostile_gen's packet layer.

usage: tunnel_gen.py OUTDIR [CASE...]   writes OUTDIR/CASE.pcap
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile_gen as hg  # noqa: E402

OUTER_A, OUTER_B = "192.0.2.1", "192.0.2.2"   # tunnel endpoints (TEST-NET-1)
OUTER6_A, OUTER6_B = bytes(15) + b"\x01", bytes(15) + b"\x02"
VNI = 5001


# ---------------------------------------------------------------- outer layers

def ipv6(src16, dst16, nh, payload):
    return struct.pack("!IHBB", 0x60000000, len(payload), nh, 64) + src16 + dst16 + payload


def outer4(proto, payload, src=OUTER_A, dst=OUTER_B):
    return hg.eth(hg.ipv4(src, dst, proto, payload))


def outer_udp(dport, payload, sport=49152):
    return outer4(17, hg.udp_dgram(OUTER_A, OUTER_B, sport, dport, payload))


def gre(proto, payload, key=None, seq=None, csum=False):
    flags = (0x8000 if csum else 0) | (0x2000 if key is not None else 0) | (0x1000 if seq is not None else 0)
    h = struct.pack("!HH", flags, proto)
    if csum:
        h += b"\0\0\0\0"
    if key is not None:
        h += struct.pack("!I", key)
    if seq is not None:
        h += struct.pack("!I", seq)
    return h + payload


def erspan1(inner):
    return outer4(47, gre(0x88BE, inner))


def erspan2(inner, session=7):
    hdr = struct.pack("!HHI", 0x1000 | 100, session & 0x3FF, 0)  # version 1, VLAN 100
    return outer4(47, gre(0x88BE, hdr + inner, seq=1))


def erspan3(inner, session=9, platform=True):
    last = 0x0001 if platform else 0  # O bit: an 8-byte platform-specific subheader follows
    hdr = struct.pack("!HHIHH", 0x2000 | 100, session & 0x3FF, 123456, 0, last)
    if platform:
        hdr += struct.pack("!II", 0x0C000000, 0)
    return outer4(47, gre(0x22EB, hdr + inner, seq=1))


def gre_ip(inner):  # keyed and sequenced GRE carrying IPv4 (no inner Ethernet)
    return outer4(47, gre(0x0800, inner[14:], key=0xABCD, seq=5, csum=True))


def gre_teb(inner):  # what a Linux gretap device sends
    return outer4(47, gre(0x6558, inner, key=42))


def gre_mpls(inner):
    label = struct.pack("!I", (1000 << 12) | 0x100 | 64)  # label 1000, bottom of stack, TTL 64
    return outer4(47, gre(0x8847, label + inner[14:]))


def vxlan(inner, vni=VNI, port=4789):
    return outer_udp(port, struct.pack("!BBHI", 0x08, 0, 0, vni << 8) + inner)


def vxlan_gpe_nsh(inner, vni=VNI):
    # GPE: I and P flags, next protocol 4 (NSH); NSH MD type 2, 2 words, next protocol 1 (IPv4)
    gpe = struct.pack("!BBBBI", 0x0C, 0, 0, 4, vni << 8)
    nsh = struct.pack("!BBBBI", 0x0F, 0x02, 0x02, 0x01, (0x123 << 8) | 0xFF)
    return outer_udp(4790, gpe + nsh + inner[14:])


def geneve(inner, vni=VNI):
    opt = struct.pack("!HBBI", 0x0102, 0x80, 1, 0xDEADBEEF)  # one 8-byte option (length 1 word)
    hdr = struct.pack("!BBHI", len(opt) // 4, 0, 0x6558, vni << 8)
    return outer_udp(6081, hdr + opt + inner)


def ipip(inner):
    return outer4(4, inner[14:])


def ip4in6(inner):
    return hg.eth(ipv6(OUTER6_A, OUTER6_B, 4, inner[14:]), 0x86DD)


def vxlan_in_erspan2(inner):  # depth 2
    return erspan2(vxlan(inner))


def nested4(inner):  # depth 4: one more than the default decap.max_depth
    return erspan1(gre_teb(vxlan(geneve(inner))))


WRAPS = {
    "erspan1": erspan1, "erspan2": erspan2, "erspan3": erspan3, "gre_ip": gre_ip, "gre_teb": gre_teb,
    "gre_mpls": gre_mpls, "vxlan": vxlan, "vxlan_gpe_nsh": vxlan_gpe_nsh, "geneve": geneve,
    "ipip": ipip, "ip4in6": ip4in6, "vxlan_in_erspan2": vxlan_in_erspan2, "nested4": nested4,
}


class Wrapped(hg.Capture):
    """A capture whose every frame goes through `wrap` (an inner Ethernet frame in, a frame out)."""

    def __init__(self, wrap):
        super().__init__()
        self.wrap = wrap

    def add(self, frame, caplen=None, origlen=None, dt=0.001):
        super().add(self.wrap(frame), caplen, origlen, dt)


def http_and_dns(cap, cport=40000, dns_port=53000):
    hg.Tcp(cap, cport, 80).handshake().exchange(hg.HTTP_REQ, hg.HTTP_RESP).close()
    hg.udp(cap, dns_port, 53, hg.DNS_QUERY)
    hg.udp(cap, dns_port, 53, hg.DNS_RESP, from_client=False)


def wrapped_case(name):
    cap = Wrapped(WRAPS[name])
    http_and_dns(cap)
    return cap


def two_vnis():
    """Two tenants, same inner addresses and ports, VNIs 100 and 200: with decap.flow_key two
    flows, two HTTP records; the answers differ so a merge would be visible."""
    cap = Wrapped(lambda f: vxlan(f, vni=100))
    other = Wrapped(lambda f: vxlan(f, vni=200))
    other.t = cap.t
    a = hg.Tcp(cap, 40000, 80)
    b = hg.Tcp(other, 40000, 80)
    a.handshake()
    b.handshake()
    a.send(True, b"GET /tenant-a HTTP/1.1\r\nHost: example\r\n\r\n")
    b.send(True, b"GET /tenant-b HTTP/1.1\r\nHost: example\r\n\r\n")
    a.send(False, hg.HTTP_RESP)
    b.send(False, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    # interleave by time: merge the two record lists
    cap.records = sorted(cap.records + other.records, key=lambda r: r[0])
    return cap


# ---------------------------------------------------------------- fragments

def ipv4_fragments(src, dst, proto, l4, mtu_payload, ident, order=None, drop=(), overlap=False):
    """IPv4 fragments of one datagram (payload pieces of mtu_payload bytes, a multiple of 8)."""
    pieces = [l4[i:i + mtu_payload] for i in range(0, len(l4), mtu_payload)]
    out = []
    for i, p in enumerate(pieces):
        off = i * mtu_payload
        more = i < len(pieces) - 1
        if overlap and i == 1:
            off -= 8  # starts inside the previous fragment
        out.append(hg.ipv4(src, dst, proto, p, ident=ident, frag=(0x2000 if more else 0) | (off // 8)))
    idx = list(range(len(out))) if order is None else order
    return [out[i] for i in idx if i not in drop]


def big_dns_answer(qid, n):
    answers = [(b"\xc0\x0c", 1, bytes([10, 0, i // 256, i % 256])) for i in range(n)]
    return hg.dns_response(qid, hg.dns_name("example.com"), answers)


def frag_case(order=None, drop=(), overlap=False, tcp=True):
    """A DNS answer of ~1.7 KB over UDP in 3 fragments (out of order), then (tcp) an HTTP exchange
    whose response travels in 3 IP fragments of one 2.5 KB TCP segment."""
    cap = hg.Capture()
    C, S = hg.CLIENT_IP, hg.SERVER_IP
    hg.udp(cap, 53001, 53, hg.DNS_QUERY)
    answer = big_dns_answer(0x1234, 100)
    dg = hg.udp_dgram(S, C, 53, 53001, answer)
    for ip in ipv4_fragments(S, C, 17, dg, 800, ident=77, order=order, drop=drop, overlap=overlap):
        cap.add(hg.eth(ip))
    if tcp:
        t = hg.Tcp(cap, 40001, 80).handshake()
        t.send(True, hg.HTTP_REQ)
        body = b"x" * 2500
        resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2500\r\n\r\n" + body
        seg = hg.tcp_seg(S, C, 80, 40001, t.nxt[False], t.nxt[True], hg.PSH | hg.ACK, resp)
        for ip in ipv4_fragments(S, C, 6, seg, 1200, ident=78, order=order, drop=drop, overlap=overlap):
            cap.add(hg.eth(ip))
        t.nxt[False] += len(resp)
        t.pkt(True, hg.ACK)
        t.close()
    return cap


def frag_ipv6_dns():
    """The same DNS answer over IPv6 in fragments (fragment header right after the fixed header)."""
    cap = hg.Capture()
    c6, s6 = bytes(15) + b"\x0a", bytes(15) + b"\x0b"

    def udp6(sp, dp, payload, src, dst):
        return struct.pack("!HHHH", sp, dp, 8 + len(payload), 0) + payload  # checksum 0: not verified

    cap.add(hg.eth(ipv6(c6, s6, 17, udp6(53002, 53, hg.DNS_QUERY, c6, s6)), 0x86DD))
    dg = udp6(53, 53002, big_dns_answer(0x1234, 100), s6, c6)
    step = 800
    for i in range(0, len(dg), step):
        more = i + step < len(dg)
        fh = struct.pack("!BBHI", 17, 0, (i // 8) << 3 | (1 if more else 0), 0xBEEF)
        cap.add(hg.eth(ipv6(s6, c6, 44, fh + dg[i:i + step]), 0x86DD))
    return cap


def frag_many_dns(n4=16, n6=8, mirrored=False):
    """n4 IPv4 and n6 IPv6 DNS queries from different client ports, each answered in fragments
    (first fragment first, as Linux sends them): the fragments are steered to the worker of the
    query's 5-tuple, whatever the worker count. mirrored: every fragment twice, the copy 20 us
    later (ingress and egress mirrored)."""
    cap = hg.Capture()
    add = cap.add

    def add_fragment(frame, ethertype=None):
        add(hg.eth(frame) if ethertype is None else hg.eth(frame, ethertype))
        if mirrored:
            add(hg.eth(frame) if ethertype is None else hg.eth(frame, ethertype), dt=0.00002)
    C, S = hg.CLIENT_IP, hg.SERVER_IP
    for i in range(n4):
        hg.udp(cap, 53100 + i, 53, hg.DNS_QUERY)
        dg = hg.udp_dgram(S, C, 53, 53100 + i, big_dns_answer(0x1234, 100))
        for ip in ipv4_fragments(S, C, 17, dg, 800, ident=300 + i):
            add_fragment(ip)
    c6, s6 = bytes(15) + b"\x0a", bytes(15) + b"\x0b"
    for i in range(n6):
        q = hg.DNS_QUERY
        cap.add(hg.eth(ipv6(c6, s6, 17, struct.pack("!HHHH", 53200 + i, 53, 8 + len(q), 0) + q), 0x86DD))
        a = big_dns_answer(0x1234, 100)
        dg = struct.pack("!HHHH", 53, 53200 + i, 8 + len(a), 0) + a
        for off in range(0, len(dg), 800):
            fh = struct.pack("!BBHI", 17, 0, (off // 8) << 3 | (1 if off + 800 < len(dg) else 0), 0xBE00 + i)
            add_fragment(ipv6(s6, c6, 44, fh + dg[off:off + 800]), 0x86DD)
    return cap


def frag_outer_vxlan():
    """A VXLAN packet whose outer IPv4 datagram is fragmented (the tunnel MTU was exceeded): the
    worker reassembles the outer datagram, then removes the VXLAN layer."""
    cap = hg.Capture()
    inner_q = hg.eth(hg.ipv4(hg.CLIENT_IP, hg.SERVER_IP, 17,
                             hg.udp_dgram(hg.CLIENT_IP, hg.SERVER_IP, 53003, 53, hg.DNS_QUERY)))
    cap.add(vxlan(inner_q))
    inner_a = hg.eth(hg.ipv4(hg.SERVER_IP, hg.CLIENT_IP, 17,
                             hg.udp_dgram(hg.SERVER_IP, hg.CLIENT_IP, 53, 53003, big_dns_answer(0x1234, 100))))
    outer_l4 = hg.udp_dgram(OUTER_A, OUTER_B, 49152, 4789, struct.pack("!BBHI", 0x08, 0, 0, VNI << 8) + inner_a)
    for ip in ipv4_fragments(OUTER_A, OUTER_B, 17, outer_l4, 1000, ident=99):
        cap.add(hg.eth(ip))
    return cap


CASES = {name: (lambda n=name: wrapped_case(n)) for name in WRAPS}
CASES.update({
    "two_vnis": two_vnis,
    "frag_in_order": lambda: frag_case(),
    "frag_reversed": lambda: frag_case(order=[2, 1, 0]),
    "frag_missing": lambda: frag_case(drop=(1,)),
    "frag_overlap": lambda: frag_case(overlap=True),
    "frag_ipv6_dns": frag_ipv6_dns,
    "frag_outer_vxlan": frag_outer_vxlan,
    "frag_many_dns": frag_many_dns,
    "frag_mirrored": lambda: frag_many_dns(4, 4, mirrored=True),
})


def write(outdir, name):
    path = os.path.join(outdir, name + ".pcap")
    with open(path, "wb") as f:
        f.write(CASES[name]().to_bytes())
    return path


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for n in sys.argv[2:] or sorted(CASES):
        print(write(out, n))
