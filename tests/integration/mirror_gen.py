#!/usr/bin/env python3
"""What a mirror port does to a clean capture, for test_mirror_order.py: every
frame twice (ingress and egress both mirrored: the copy 1 us later, one router
hop on, so TTL/hop limit one lower and the IPv4 header checksum redone), or
consecutive TCP data segments swapped in pairs (whatever their connection and
direction: the two directions reached the mirror over different paths). Each
packet keeps its own timestamp, so the swapped file's timestamps step back.
Plain Python (struct only); reads classic pcap (us or ns) and pcapng (one
link type; written out as classic pcap with ns timestamps), writes classic pcap.

usage: mirror_gen.py doubled|swapped IN.pcap OUT.pcap
"""
import struct
import sys

PCAPNG_SHB, PCAPNG_IDB, PCAPNG_SPB, PCAPNG_EPB = 0x0A0D0D0A, 1, 3, 6


def read_pcapng(data):
    """pcapng -> (endian, classic ns header, linktype, True, pkts); every
    interface must share one link type (a classic pcap has one)."""
    pkts, links, off, endian = [], [], 0, "<"
    tsres = []  # per interface: ticks per second
    linktype = None
    while off + 12 <= len(data):
        (btype,) = struct.unpack(endian + "I", data[off:off + 4])
        if btype == PCAPNG_SHB:
            endian = "<" if data[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            links, tsres = [], []
        (blen,) = struct.unpack(endian + "I", data[off + 4:off + 8])
        if blen < 12 or off + blen > len(data):
            raise ValueError("pcapng: truncated block at %d" % off)
        body = data[off + 8:off + blen - 4]
        if btype == PCAPNG_IDB:
            (lt,) = struct.unpack(endian + "H", body[:2])
            res = 10**6
            o = 8
            while o + 4 <= len(body):  # options: if_tsresol (9)
                code, olen = struct.unpack(endian + "HH", body[o:o + 4])
                if code == 0:
                    break
                if code == 9 and olen >= 1:
                    v = body[o + 4]
                    res = 2 ** (v & 0x7F) if v & 0x80 else 10 ** v
                o += 4 + (olen + 3) // 4 * 4
            links.append(lt)
            tsres.append(res)
            if linktype is not None and lt != linktype:
                raise ValueError("pcapng: interfaces with different link types")
            linktype = lt
        elif btype == PCAPNG_EPB:
            iface, hi, lo, incl, orig = struct.unpack(endian + "IIIII", body[:20])
            ticks = hi << 32 | lo
            ns = ticks * 10**9 // tsres[iface]
            pkts.append([ns // 10**9, ns % 10**9, orig, body[20:20 + incl]])
        elif btype == PCAPNG_SPB:
            (orig,) = struct.unpack(endian + "I", body[:4])
            pkts.append([0, 0, orig, body[4:4 + min(orig, len(body) - 4)]])
        off += blen
    if linktype is None:
        raise ValueError("pcapng: no interface description block")
    header = struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, linktype)
    return "<", header, linktype, True, pkts


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        return read_pcapng(data)
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    header = data[:24]
    (linktype,) = struct.unpack(endian + "I", data[20:24])
    nanos = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    pkts, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        pkts.append([sec, frac, orig, data[off:off + incl]])
        off += incl
    return endian, header, linktype, nanos, pkts


def write_pcap(path, endian, header, pkts):
    with open(path, "wb") as f:
        f.write(header)
        for sec, frac, orig, frame in pkts:
            f.write(struct.pack(endian + "IIII", sec, frac, len(frame), orig) + frame)


def l3_offset(frame, linktype):
    """Offset of the IP header and its version (None when not IP)."""
    if linktype == 1:  # Ethernet, VLAN tags
        off, et = 12, None
        while off + 2 <= len(frame):
            (et,) = struct.unpack("!H", frame[off:off + 2])
            if et in (0x8100, 0x88A8, 0x9100):
                off += 4
                continue
            off += 2
            break
        if et == 0x0800:
            return off, 4
        if et == 0x86DD:
            return off, 6
        return None, None
    if linktype in (101, 12, 14):  # raw IP
        return 0, frame[0] >> 4 if frame else None
    return None, None


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def one_hop_on(frame, linktype):
    """The same packet after one router: TTL/hop limit - 1 (IPv4 checksum redone)."""
    off, ver = l3_offset(frame, linktype)
    b = bytearray(frame)
    if ver == 4 and off + 20 <= len(b):
        ihl = (b[off] & 0xF) * 4
        if b[off + 8] > 1 and off + ihl <= len(b):
            b[off + 8] -= 1
            b[off + 10:off + 12] = b"\0\0"
            b[off + 10:off + 12] = struct.pack("!H", csum(bytes(b[off:off + ihl])))
    elif ver == 6 and off + 40 <= len(b) and b[off + 7] > 1:
        b[off + 7] -= 1
    return bytes(b)


def tcp_info(frame, linktype):
    """(connection, TCP flags, payload bytes, sender, seq, ack) of an unfragmented TCP
    packet, else None. The connection is the sorted pair of (address, port) endpoints."""
    off, ver = l3_offset(frame, linktype)
    if ver == 4 and off + 20 <= len(frame):
        ihl = (frame[off] & 0xF) * 4
        (total,) = struct.unpack("!H", frame[off + 2:off + 4])
        (fragword,) = struct.unpack("!H", frame[off + 6:off + 8])
        if frame[off + 9] != 6 or fragword & 0x3FFF:
            return None
        l4, end = off + ihl, off + total
        src, dst = frame[off + 12:off + 16], frame[off + 16:off + 20]
    elif ver == 6 and off + 40 <= len(frame):
        if frame[off + 6] != 6:
            return None
        (plen,) = struct.unpack("!H", frame[off + 4:off + 6])
        l4, end = off + 40, off + 40 + plen
        src, dst = frame[off + 8:off + 24], frame[off + 24:off + 40]
    else:
        return None
    if l4 + 14 > len(frame):
        return None
    sport, dport = struct.unpack("!HH", frame[l4:l4 + 4])
    doff = (frame[l4 + 12] >> 4) * 4
    conn = tuple(sorted([(src, sport), (dst, dport)]))
    seq, ack = struct.unpack("!II", frame[l4 + 4:l4 + 12])
    return conn, frame[l4 + 13], max(0, min(end, len(frame)) - (l4 + doff)), (src, sport), seq, ack


def tcp_payload_len(frame, linktype):
    """TCP payload bytes of an unfragmented packet (0 when not TCP or no data)."""
    info = tcp_info(frame, linktype)
    return info[2] if info else 0


def doubled(pkts, linktype, nanos):
    out = []
    step = 1000 if nanos else 1
    for sec, frac, orig, frame in pkts:
        out.append([sec, frac, orig, frame])
        f2 = frac + step
        out.append([sec + f2 // (10**9 if nanos else 10**6), f2 % (10**9 if nanos else 10**6), orig,
                    one_hop_on(frame, linktype)])
    return out


def swapped(pkts, linktype, across_rst=True):
    """Consecutive TCP data segments swapped in pairs: 1st<->2nd, 3rd<->4th, ...
    except where nothing in the capture proves the original order, which is
    then the only evidence (an ambiguity no reordering by ACKs can undo):
    - (with across_rst False) a swap that carries a segment across a RST of its
      own connection: the reassembler's RST wait (docs/reassembly.md) is what
      lets a segment captured after the RST that ended its connection still count;
    - the two directions of one connection sent concurrently: neither
      segment's ACK covers the other's bytes (each was sent before the other
      arrived), e.g. a gRPC client's last upload message and the server's
      error that ends the stream."""
    out = [list(p) for p in pkts]
    info = [tcp_info(p[3], linktype) for p in pkts]
    data = [i for i, t in enumerate(info) if t and t[2] > 0]
    pairs = 0
    for a, b in zip(data[0::2], data[1::2]):
        ta, tb = info[a], info[b]
        if not across_rst and any(info[k] and info[k][1] & 0x04 and info[k][0] in (ta[0], tb[0])
                                  for k in range(a + 1, b)):
            continue
        if ta[0] == tb[0] and ta[3] != tb[3]:
            def covers(x, y):  # x's ACK covers y's bytes (wrap-safe)
                return x[1] & 0x10 and ((x[5] - (y[4] + y[2])) & 0xFFFFFFFF) < 0x80000000
            if not covers(ta, tb) and not covers(tb, ta):
                continue
        out[a], out[b] = out[b], out[a]
        pairs += 1
    return out, pairs


def main(argv):
    if len(argv) != 4 or argv[1] not in ("doubled", "swapped"):
        print(__doc__, file=sys.stderr)
        return 2
    endian, header, linktype, nanos, pkts = read_pcap(argv[2])
    out = doubled(pkts, linktype, nanos) if argv[1] == "doubled" else swapped(pkts, linktype)[0]
    write_pcap(argv[3], endian, header, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
