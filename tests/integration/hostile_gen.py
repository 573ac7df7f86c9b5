#!/usr/bin/env python3
"""Hostile captures for the hostile-input suite (test_hostile.py): crafted
pcap files with broken framing, lying lengths and abusive TCP, each followed
by a valid exchange where the decoder must resynchronise. Plain Python
(struct only); nothing here is trusted beyond "it wrote these bytes".

usage: hostile_gen.py OUTDIR [CASE...]   writes OUTDIR/CASE.pcap
"""
import os
import struct
import sys

T0_US = 1_700_000_000 * 1_000_000
CLIENT_IP, SERVER_IP = "10.1.0.1", "10.1.0.2"


# ---------------------------------------------------------------- packet layer

def ip4(a):
    return bytes(int(x) for x in a.split("."))


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(memoryview(data).cast("H"))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return struct.unpack("!H", struct.pack("=H", ~s & 0xFFFF))[0]


def ipv4(src, dst, proto, l4, ihl=5, total=None, ident=1, frag=0x4000, options=b""):
    hl = ihl * 4
    opts = (options + b"\0" * 40)[:max(0, hl - 20)]
    tot = 20 + len(opts) + len(l4) if total is None else total
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, tot & 0xFFFF, ident, frag, 64, proto, 0,
                    ip4(src), ip4(dst)) + opts
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + l4


def eth(payload, ethertype=0x0800):
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01" + struct.pack("!H", ethertype) + payload


def tcp_seg(src, dst, sp, dp, seq, ack, flags, payload=b"", doff=5):
    hdr = struct.pack("!HHIIBBHHH", sp, dp, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, (doff & 0xF) << 4,
                      flags, 65535, 0, 0)
    hdr += b"\x01" * max(0, doff * 4 - 20)  # NOP options
    pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 6, len(hdr) + len(payload))
    c = csum(pseudo + hdr + payload)
    return hdr[:16] + struct.pack("!H", c) + hdr[18:] + payload


def udp_dgram(src, dst, sp, dp, payload):
    hdr = struct.pack("!HHHH", sp, dp, 8 + len(payload), 0)
    pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 17, 8 + len(payload))
    c = csum(pseudo + hdr + payload) or 0xFFFF
    return hdr[:6] + struct.pack("!H", c) + payload


FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


class Capture:
    """Frames with capture times; raw records for hostile file layouts."""

    def __init__(self, snaplen=65535):
        self.snaplen = snaplen
        self.t = T0_US     # capture time in microseconds
        self.records = []  # (ts_us, frame, caplen or None, origlen or None)
        self.tail = b""    # raw bytes after the last record

    def add(self, frame, caplen=None, origlen=None, dt=0.001):
        self.t += round(dt * 1e6)
        self.records.append((self.t, frame, caplen, origlen))

    def to_bytes(self):
        out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, self.snaplen, 1)]
        for ts, fr, caplen, origlen in self.records:
            sec, usec = divmod(ts, 1_000_000)
            data = fr if caplen is None else fr[:caplen]
            incl = len(data) if caplen is None else caplen
            out.append(struct.pack("<IIII", sec, usec, incl, len(fr) if origlen is None else origlen))
            out.append(data)
        out.append(self.tail)
        return b"".join(out)


class Tcp:
    """One TCP connection: handshake, data either way (acked), FIN/RST."""

    def __init__(self, cap, cport, sport, isn_c=1000, isn_s=900000, cli=CLIENT_IP, srv=SERVER_IP):
        self.cap, self.cport, self.sport, self.cli, self.srv = cap, cport, sport, cli, srv
        self.isn_c, self.isn_s = isn_c, isn_s
        self.nxt = {True: isn_c + 1, False: isn_s + 1}  # next seq by sender (True = client)

    def frame(self, from_client, seq, ack, flags, payload=b"", doff=5):
        s, d = (self.cli, self.srv) if from_client else (self.srv, self.cli)
        sp, dp = (self.cport, self.sport) if from_client else (self.sport, self.cport)
        return eth(ipv4(s, d, 6, tcp_seg(s, d, sp, dp, seq, ack, flags, payload, doff)))

    def pkt(self, from_client, flags, payload=b"", seq=None, ack=None, doff=5, dt=0.001):
        seq = self.nxt[from_client] if seq is None else seq
        ack = self.nxt[not from_client] if ack is None else ack
        self.cap.add(self.frame(from_client, seq, ack, flags, payload, doff), dt=dt)

    def handshake(self, syn_payload=b""):
        self.pkt(True, SYN, syn_payload, seq=self.isn_c, ack=0)
        self.nxt[True] = self.isn_c + 1 + len(syn_payload)
        self.pkt(False, SYN | ACK, seq=self.isn_s)
        self.pkt(True, ACK)
        return self

    def send(self, from_client, data, mss=1460, acked=True):
        for i in range(0, len(data), mss):
            part = data[i:i + mss]
            self.pkt(from_client, PSH | ACK, part)
            self.nxt[from_client] += len(part)
        if acked:
            self.pkt(not from_client, ACK)
        return self

    def exchange(self, request, response):
        return self.send(True, request).send(False, response)

    def close(self, client_first=True):
        a = client_first
        self.pkt(a, FIN | ACK)
        self.nxt[a] += 1
        self.pkt(not a, FIN | ACK)
        self.nxt[not a] += 1
        self.pkt(a, ACK)
        return self


def udp(cap, cport, sport, payload, from_client=True, cli=CLIENT_IP, srv=SERVER_IP):
    s, d = (cli, srv) if from_client else (srv, cli)
    sp, dp = (cport, sport) if from_client else (sport, cport)
    cap.add(eth(ipv4(s, d, 17, udp_dgram(s, d, sp, dp, payload))))


# ---------------------------------------------------------------- valid exchanges (shared with the test)

HTTP_REQ = b"GET /ok HTTP/1.1\r\nHost: example\r\n\r\n"
HTTP_RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
REDIS_REQ = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
REDIS_RESP = b"$1\r\nv\r\n"
MEMC_REQ = b"get k\r\n"
MEMC_RESP = b"VALUE k 0 1\r\nv\r\nEND\r\n"


def mysql_packet(seq, payload):
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload


MYSQL_QUERY = b"SET autocommit=1"
MYSQL_REQ = mysql_packet(0, b"\x03" + MYSQL_QUERY)
MYSQL_OK = mysql_packet(1, b"\x00\x00\x00\x02\x00\x00\x00")  # OK: 0 rows, autocommit status


def pg_msg(t, body):
    return t + struct.pack("!I", len(body) + 4) + body


PG_QUERY = b"SELECT 1"
PG_REQ = pg_msg(b"Q", PG_QUERY + b"\0")
PG_RESP = (pg_msg(b"T", struct.pack("!H", 1) + b"x\0" + struct.pack("!IHIhih", 0, 0, 23, 4, -1, 0))
           + pg_msg(b"D", struct.pack("!HI", 1, 1) + b"1")
           + pg_msg(b"C", b"SELECT 1\0") + pg_msg(b"Z", b"I"))


def bson(items):
    """Tiny BSON encoder over (key, value) pairs: str, float, int (int32), bool, dict, list."""
    out = b""
    for k, v in items:
        key = k.encode() + b"\0"
        if isinstance(v, bool):
            out += b"\x08" + key + (b"\1" if v else b"\0")
        elif isinstance(v, str):
            s = v.encode() + b"\0"
            out += b"\x02" + key + struct.pack("<i", len(s)) + s
        elif isinstance(v, float):
            out += b"\x01" + key + struct.pack("<d", v)
        elif isinstance(v, int):
            out += b"\x10" + key + struct.pack("<i", v)
        elif isinstance(v, list):
            out += b"\x04" + key + bson([(str(i), x) for i, x in enumerate(v)])
        else:
            out += b"\x03" + key + bson(list(v.items()))
    return struct.pack("<i", len(out) + 5) + out + b"\0"


def mongo_msg(request_id, response_to, doc):
    body = struct.pack("<I", 0) + b"\0" + doc
    return struct.pack("<iiii", 16 + len(body), request_id, response_to, 2013) + body


MONGO_REQ = mongo_msg(7, 0, bson([("find", "c"), ("filter", {}), ("$db", "d")]))
MONGO_RESP = mongo_msg(70, 7, bson([("cursor", {"firstBatch": [], "id": 0, "ns": "d.c"}),
                                    ("ok", 1.0)]))


def dns_name(name):
    return b"".join(bytes([len(l)]) + l.encode() for l in name.split(".") if l) + b"\0"


def dns_query(qid, qname_wire, qtype=1):
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname_wire + struct.pack("!HH", qtype, 1)


def dns_response(qid, qname_wire, answers, rcode=0, qtype=1):
    """answers: list of (name_wire, type, rdata)."""
    out = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, len(answers), 0, 0)
    out += qname_wire + struct.pack("!HH", qtype, 1)
    for nm, typ, rd in answers:
        out += nm + struct.pack("!HHIH", typ, 1, 60, len(rd)) + rd
    return out


DNS_QUERY = dns_query(0x1234, dns_name("example.com"))
DNS_RESP = dns_response(0x1234, dns_name("example.com"), [(b"\xc0\x0c", 1, bytes([10, 0, 0, 1]))])


def valid_http(cap, cport):
    Tcp(cap, cport, 80).handshake().exchange(HTTP_REQ, HTTP_RESP).close()


# ---------------------------------------------------------------- cases: the capture file itself

def header_only():
    return Capture()


def garbage_after_header():
    cap = Capture()
    cap.tail = bytes((i * 37 + 11) & 0xFF for i in range(100))  # read as a record header: absurd caplen
    return cap


def truncated_record():
    """A valid exchange, then a request whose response's record is cut by the end of the file."""
    cap = Capture()
    valid_http(cap, 40001)
    c = Tcp(cap, 40002, 80).handshake().send(True, HTTP_REQ)
    c.pkt(False, PSH | ACK, HTTP_RESP)
    ts, fr, _, _ = cap.records.pop()
    cap.tail = struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(fr), len(fr)) + fr[:len(fr) // 2]
    return cap


def caplen_zero():
    cap = Capture()
    c = Tcp(cap, 40003, 80).handshake()
    cap.add(c.frame(True, c.nxt[True], c.nxt[False], ACK), caplen=0, origlen=66)
    c.exchange(HTTP_REQ, HTTP_RESP).close()
    return cap


def caplen_above_snaplen():
    """snaplen 128; the response frame's record says (and holds) 173 bytes."""
    cap = Capture(snaplen=128)
    valid_http(cap, 40004)
    c = Tcp(cap, 40005, 80).handshake().send(True, HTTP_REQ)
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 65\r\n\r\n" + b"b" * 65
    c.send(False, big).close()
    return cap


def caplen_above_max():
    """A record claiming a 300,000-byte frame (more than libpcap accepts): reading stops there."""
    cap = Capture()
    valid_http(cap, 40006)
    c = Tcp(cap, 40007, 80).handshake()
    ack = c.frame(True, c.nxt[True], c.nxt[False], ACK)
    cap.tail = struct.pack("<IIII", cap.t // 1_000_000 + 1, 0, 300000, 300000) + ack
    return cap


# ---------------------------------------------------------------- cases: IP and TCP headers

def ipv4_bogus_lengths():
    cap = Capture()
    s, d = CLIENT_IP, SERVER_IP
    seg = tcp_seg(s, d, 40100, 80, 1, 1, PSH | ACK, b"GET /evil HTTP/1.1\r\n\r\n")
    cap.add(eth(ipv4(s, d, 6, seg, ihl=4)))                       # header length 16 < 20: malformed
    cap.add(eth(ipv4(s, d, 6, b"", ihl=15)[:20]))                 # 60-byte header, 20 captured: truncated
    cap.add(eth(ipv4(s, d, 6, seg, total=10)))                    # total length < header length: malformed
    cap.add(eth(b"\x65" + ipv4(s, d, 6, seg)[1:]))                # version 6 in an IPv4 frame: malformed
    cap.add(eth(ipv4(s, d, 6, seg, total=20)))                    # no room for the TCP header: malformed segment
    zeros = tcp_seg(s, d, 40101, 9999, 1, 1, PSH | ACK, b"\0" * 16)
    cap.add(eth(ipv4(s, d, 6, zeros, total=60000)))               # claims 60,000 bytes: truncated gap
    valid_http(cap, 40102)
    return cap


def tcp_data_offset_below_5():
    cap = Capture()
    c = Tcp(cap, 40110, 80).handshake()
    for doff in range(5):
        c.pkt(True, PSH | ACK, b"GET /evil HTTP/1.1\r\n\r\n", doff=doff)
    s, d = CLIENT_IP, SERVER_IP
    seg = bytearray(tcp_seg(s, d, 40110, 80, c.nxt[True], c.nxt[False], PSH | ACK, b"GET /evil"))
    seg[12] = 0xF0
    cap.add(eth(ipv4(s, d, 6, bytes(seg))))                       # data offset 60 > 29-byte segment: malformed
    c.exchange(HTTP_REQ, HTTP_RESP).close()
    return cap


# ---------------------------------------------------------------- cases: absurd lengths per protocol

def http_content_length_1e18():
    """A POST claiming 10^18 body bytes, answered 413; the next request on the connection is decoded."""
    cap = Capture()
    c = Tcp(cap, 40200, 80).handshake()
    c.send(True, b"POST /big HTTP/1.1\r\nHost: example\r\nContent-Length: 1000000000000000000\r\n\r\nabcdef")
    c.send(False, b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
    c.exchange(HTTP_REQ, HTTP_RESP).close()
    return cap


HTTP_CHUNK_REQ = b"GET /chunked HTTP/1.1\r\nHost: example\r\n\r\n"


def http_chunk_size_huge():
    """Chunk size ffffffffffff (2^48-1) then the close; a 16-digit size (over the parser's 15); valid."""
    cap = Capture()
    c = Tcp(cap, 40210, 80).handshake().send(True, HTTP_CHUNK_REQ)
    c.send(False, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffff\r\nabc").close(client_first=False)
    c = Tcp(cap, 40211, 80).handshake().send(True, HTTP_CHUNK_REQ)
    c.send(False, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc\r\n0\r\n\r\n")
    c.exchange(HTTP_REQ, HTTP_RESP).close()
    return cap


def http_long_header_line():
    """A 100 KB header line (over carry_bytes): cut, flagged; the next request is clean."""
    cap = Capture()
    c = Tcp(cap, 40220, 80).handshake()
    c.send(True, b"GET /long HTTP/1.1\r\nX-Long: " + b"a" * 100_000 + b"\r\nHost: example\r\n\r\n")
    c.send(False, HTTP_RESP).exchange(HTTP_REQ, HTTP_RESP).close()
    return cap


def http_many_headers():
    cap = Capture()
    c = Tcp(cap, 40230, 80).handshake()
    hdrs = b"".join(b"X-H%d: v\r\n" % i for i in range(10_000))
    c.send(True, b"GET /many HTTP/1.1\r\n" + hdrs + b"Host: example\r\n\r\n")
    c.send(False, HTTP_RESP).exchange(HTTP_REQ, HTTP_RESP).close()
    return cap


MYSQL_BIG_TAIL = b" */"


def mysql_ffffff_chain():
    """A 16 MiB COM_QUERY: one 0xffffff packet and its continuation, answered OK; then a valid query."""
    cap = Capture()
    c = Tcp(cap, 40300, 3306).handshake()
    first = b"\x03SELECT 1 /*" + b"x" * (0xFFFFFF - 12)
    c.send(True, mysql_packet(0, first) + mysql_packet(1, MYSQL_BIG_TAIL), acked=False)
    c.pkt(False, ACK)
    c.send(False, mysql_packet(2, b"\x00\x00\x00\x02\x00\x00\x00"))
    c.exchange(MYSQL_REQ, MYSQL_OK).close()
    return cap


MYSQL_CUT = b"\xff\xff\xff\x00\x03SELECT * FROM t "


def mysql_cut_at_close():
    """A COM_QUERY packet header claiming 0xffffff bytes, 20 of them sent, then the close."""
    cap = Capture()
    c = Tcp(cap, 40301, 3306).handshake()
    c.send(True, MYSQL_CUT)
    c.close()
    valid = Tcp(cap, 40302, 3306).handshake()
    valid.exchange(MYSQL_REQ, MYSQL_OK).close()
    return cap


def lenenc(b):
    return bytes([len(b)]) + b


MYSQL_SELECT = b"SELECT a FROM t"
MYSQL_GAP_AT = 57  # response bytes before the lost row: column count, column definition, EOF, 2 rows


def mysql_result_set_gap():
    """A 5-row result set whose third row's segment the capture lost (the client's ACK proves it was
    sent); then the next query on the connection."""
    cap = Capture()
    c = Tcp(cap, 40303, 3306).handshake()
    c.send(True, mysql_packet(0, b"\x03" + MYSQL_SELECT))
    coldef = b"".join(lenenc(x) for x in (b"def", b"d", b"t", b"t", b"a", b"a"))
    coldef += b"\x0c" + struct.pack("<HIBHB", 33, 11, 3, 0, 0) + b"\0\0"
    eof = b"\xfe\x00\x00\x02\x00"
    rows = [mysql_packet(4 + i, lenenc(b"%d" % i)) for i in range(5)]
    head = mysql_packet(1, b"\x01") + mysql_packet(2, coldef) + mysql_packet(3, eof) + rows[0] + rows[1]
    assert len(head) == MYSQL_GAP_AT
    c.send(False, head, acked=False)
    c.nxt[False] += len(rows[2])  # lost by the capture
    c.send(False, rows[3] + rows[4] + mysql_packet(9, eof))
    c.exchange(MYSQL_REQ, MYSQL_OK).close()
    return cap


def mongo_bad_lengths():
    """messageLength 2^31-1, -1 and -2^31 (each its own segment), then a valid find on the connection."""
    cap = Capture()
    c = Tcp(cap, 40310, 27017).handshake()
    for n in (0x7FFFFFFF, -1, -0x80000000):
        c.send(True, struct.pack("<iiii", n, 5, 0, 2013) + b"\0" * 16)
    c.exchange(MONGO_REQ, MONGO_RESP).close()
    return cap


def mongo_cut_at_close():
    cap = Capture()
    Tcp(cap, 40311, 27017).handshake().send(True, MONGO_REQ[:-10]).close()
    return cap


def pgsql_len_7fffffff():
    cap = Capture()
    c = Tcp(cap, 40320, 5432).handshake()
    c.send(True, b"Q" + struct.pack("!I", 0x7FFFFFFF) + b"SELECT 1\0")
    c.exchange(PG_REQ, PG_RESP).close()
    return cap


def pgsql_cut_at_close():
    cap = Capture()
    Tcp(cap, 40321, 5432).handshake().send(True, PG_REQ[:-4]).close()
    return cap


def redis_huge_array():
    """*2147483647 (no server would wait for that many arguments), then a valid GET on the connection."""
    cap = Capture()
    c = Tcp(cap, 40330, 6379).handshake()
    c.send(True, b"*2147483647\r\n")
    c.exchange(REDIS_REQ, REDIS_RESP).close()
    return cap


REDIS_HUGE_BULK = b"*2\r\n$3\r\nGET\r\n$999999999999\r\nabc"
REDIS_PROTO_ERR = b"-ERR Protocol error: invalid bulk length\r\n"


def redis_huge_bulk():
    """$999999999999 as an argument: the server says protocol error and closes; then a new connection."""
    cap = Capture()
    c = Tcp(cap, 40331, 6379).handshake()
    c.send(True, REDIS_HUGE_BULK)
    c.send(False, REDIS_PROTO_ERR).close(client_first=False)
    Tcp(cap, 40332, 6379).handshake().exchange(REDIS_REQ, REDIS_RESP).close()
    return cap


def memcached_set_huge():
    """set with a 4294967295-byte value: memcached refuses the line; the next command is decoded."""
    cap = Capture()
    c = Tcp(cap, 40340, 11211).handshake()
    c.send(True, b"set k 0 0 4294967295\r\n")
    c.send(False, b"CLIENT_ERROR bad command line format\r\n")
    c.exchange(MEMC_REQ, MEMC_RESP).close()
    return cap


MEMC_VALUE_HUGE = b"VALUE k 0 18446744073709551615\r\nv\r\nEND\r\n"


def memcached_value_huge():
    """A get answered with a 2^64-1-byte VALUE (len + 2 would wrap to 1); then a valid get."""
    cap = Capture()
    c = Tcp(cap, 40341, 11211).handshake()
    c.exchange(MEMC_REQ, MEMC_VALUE_HUGE)
    c.exchange(MEMC_REQ, MEMC_RESP).close()
    return cap


def dns_pointer_loops():
    """Answer name pointing at itself; question name pointing at itself; then a valid query (UDP)."""
    cap = Capture()
    q1 = dns_name("loop.example")
    self_at = 12 + len(q1) + 4
    udp(cap, 50000, 53, dns_query(1, q1))
    udp(cap, 50000, 53, dns_response(1, q1, [(struct.pack("!H", 0xC000 | self_at), 1, b"\x0a\0\0\x01")]), False)
    loop = b"\xc0\x0c"  # the question name at offset 12 points at offset 12
    udp(cap, 50000, 53, dns_query(2, loop))
    udp(cap, 50000, 53, dns_response(2, loop, []), False)
    udp(cap, 50000, 53, DNS_QUERY)
    udp(cap, 50000, 53, DNS_RESP, False)
    return cap


LONG_NAME_OK = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253 characters: the longest legal name


def dns_long_names():
    cap = Capture()
    too_long = dns_name(".".join(["x" * 63] * 5))  # 320 characters
    udp(cap, 50001, 53, dns_query(3, too_long))
    udp(cap, 50001, 53, dns_response(3, too_long, [], rcode=3), False)
    udp(cap, 50001, 53, dns_query(4, dns_name(LONG_NAME_OK)))
    udp(cap, 50001, 53, dns_response(4, dns_name(LONG_NAME_OK), [], rcode=3), False)
    udp(cap, 50001, 53, DNS_QUERY)
    udp(cap, 50001, 53, DNS_RESP, False)
    return cap


def dns_tcp_cut_at_close():
    cap = Capture()
    Tcp(cap, 40350, 53).handshake().send(True, struct.pack("!H", len(DNS_QUERY)) + DNS_QUERY[:-6]).close()
    return cap


# ---------------------------------------------------------------- cases: TCP abuse

def overlap_conflict():
    """Overlapping segments with different bytes (delivered and buffered); first copy wins; then valid."""
    cap = Capture()
    c = Tcp(cap, 40400, 80).handshake()
    req = b"GET /first HTTP/1.1\r\nHost: example\r\n\r\n"
    base = c.nxt[True]
    c.pkt(True, PSH | ACK, req[:10], seq=base)
    c.pkt(True, PSH | ACK, b"GET /evil/", seq=base)            # same bytes, other content
    c.pkt(True, PSH | ACK, req[20:], seq=base + 20)            # after a hole: buffered
    c.pkt(True, PSH | ACK, req[10:20] + b"X-Evil: 1\r\n", seq=base + 10)  # fills the hole, overlaps the buffer
    c.nxt[True] = base + len(req)
    c.pkt(False, ACK)
    c.send(False, HTTP_RESP).exchange(HTTP_REQ, HTTP_RESP).close()
    return cap


def seq_wraparound():
    cap = Capture()
    c = Tcp(cap, 40410, 80, isn_c=0xFFFFFFFF - 20, isn_s=0xFFFFFFFF - 40).handshake()
    c.send(True, HTTP_REQ, mss=16).send(False, HTTP_RESP, mss=16)
    c.exchange(HTTP_REQ, HTTP_RESP).close()
    return cap


RST_POST = b"POST /x HTTP/1.1\r\nHost: example\r\nContent-Length: 100\r\n\r\nabc"


def rst_mid_message():
    cap = Capture()
    c = Tcp(cap, 40420, 80).handshake().send(True, RST_POST)
    c.pkt(True, RST | ACK)
    c = Tcp(cap, 40421, 80).handshake().send(True, HTTP_REQ)
    c.send(False, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
    c.pkt(False, RST | ACK)
    valid_http(cap, 40422)
    return cap


def data_after_fin():
    cap = Capture()
    c = Tcp(cap, 40430, 80).handshake().exchange(HTTP_REQ, HTTP_RESP)
    c.pkt(True, FIN | ACK)
    c.nxt[True] += 1
    c.pkt(True, PSH | ACK, b"GET /evil HTTP/1.1\r\n\r\n")
    c.pkt(False, FIN | ACK)
    c.nxt[False] += 1
    c.pkt(True, ACK)
    return cap


SYN_REQ = b"GET /syn HTTP/1.1\r\nHost: example\r\n\r\n"


def syn_with_payload():
    cap = Capture()
    c = Tcp(cap, 40440, 80).handshake(syn_payload=SYN_REQ)
    c.send(False, HTTP_RESP).exchange(HTTP_REQ, HTTP_RESP).close()
    return cap


REVERSED = 20_000


def reversed_tiny_segments():
    """A POST whose 20,000-byte body arrives as one-byte segments in reverse order, then a valid GET."""
    cap = Capture()
    c = Tcp(cap, 40450, 80).handshake()
    c.send(True, b"POST /rev HTTP/1.1\r\nHost: example\r\nContent-Length: %d\r\n\r\n" % REVERSED, acked=False)
    base = c.nxt[True]
    body = bytes(0x61 + i % 26 for i in range(REVERSED))
    for i in reversed(range(REVERSED)):
        c.pkt(True, PSH | ACK, body[i:i + 1], seq=base + i, dt=0.00001)
    c.nxt[True] = base + REVERSED
    c.pkt(False, ACK)
    c.send(False, HTTP_RESP).exchange(HTTP_REQ, HTTP_RESP).close()
    return cap


PIPELINED = 1100  # requests in flight on one connection: over decode.max_pending_per_flow (1024)


def http_pipeline_overflow():
    """1,100 pipelined GETs, then their 1,100 responses, then one more exchange on the connection."""
    cap = Capture()
    c = Tcp(cap, 40460, 80).handshake()
    c.send(True, HTTP_REQ * PIPELINED)
    c.send(False, HTTP_RESP * PIPELINED)
    c.exchange(HTTP_REQ, HTTP_RESP).close()
    return cap


def baseline():
    """The valid exchange alone: reference for time and memory."""
    cap = Capture()
    valid_http(cap, 40000)
    return cap


CASES = {f.__name__: f for f in (
    baseline, header_only, garbage_after_header, truncated_record, caplen_zero, caplen_above_snaplen,
    caplen_above_max, ipv4_bogus_lengths, tcp_data_offset_below_5, http_content_length_1e18,
    http_chunk_size_huge, http_long_header_line, http_many_headers, mysql_ffffff_chain, mysql_cut_at_close,
    mysql_result_set_gap,
    mongo_bad_lengths, mongo_cut_at_close, pgsql_len_7fffffff, pgsql_cut_at_close, redis_huge_array,
    redis_huge_bulk, memcached_set_huge, memcached_value_huge, dns_pointer_loops, dns_long_names, dns_tcp_cut_at_close,
    overlap_conflict, seq_wraparound, rst_mid_message, data_after_fin, syn_with_payload,
    reversed_tiny_segments, http_pipeline_overflow)}


def write(outdir, name):
    path = os.path.join(outdir, name + ".pcap")
    with open(path, "wb") as f:
        f.write(CASES[name]().to_bytes())
    return path


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    os.makedirs(argv[1], exist_ok=True)
    for name in argv[2:] or CASES:
        print(write(argv[1], name))


if __name__ == "__main__":
    main(sys.argv)
