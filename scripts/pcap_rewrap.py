#!/usr/bin/env python3
"""Rewrap an Ethernet classic-pcap capture into another link type or format.

Used by the tests to produce the capture files users actually bring
(tcpdump -i any, BSD loopback, raw IP, big-endian, nanosecond, pcapng) from
the Ethernet reference captures. tshark then reads each variant on its own as
the oracle, so nothing here needs to be trusted beyond "it wrote a file".

usage: pcap_rewrap.py VARIANT IN.pcap OUT
  VARIANT: sll | sll2 | null | loop | raw | be | nsec | pcapng | dlt=N
Frames that the target link type cannot carry (non-IP for null/loop/raw) are
left out of the output.
"""
import os
import struct
import subprocess
import sys

DLT = {"eth": 1, "null": 0, "raw": 101, "loop": 108, "sll": 113, "sll2": 276}


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise SystemExit(f"{path}: not a classic pcap file")
    nsec = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    snaplen, linktype = struct.unpack(e + "II", data[16:24])
    if linktype != 1:
        raise SystemExit(f"{path}: link type {linktype}, expected Ethernet (1)")
    off = 24
    records = []
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(e + "IIII", data[off:off + 16])
        off += 16
        if not nsec:
            frac *= 1000
        records.append((sec, frac, orig, data[off:off + incl]))
        off += incl
    return snaplen, records


def ip_after_ethernet(frame):
    """(ip_version, offset of IP header) skipping VLAN tags, or None."""
    if len(frame) < 14:
        return None
    et = struct.unpack(">H", frame[12:14])[0]
    off = 14
    while et in (0x8100, 0x88A8, 0x9100) and off + 4 <= len(frame):
        et = struct.unpack(">H", frame[off + 2:off + 4])[0]
        off += 4
    if et == 0x0800:
        return 4, off
    if et == 0x86DD:
        return 6, off
    return None


def convert(variant, frame):
    if variant in ("eth", "be", "nsec", "pcapng"):
        return frame
    if variant == "sll":
        if len(frame) < 14:
            return None
        hdr = struct.pack(">HHH", 0, 1, 6) + frame[6:12] + b"\0\0" + frame[12:14]
        return hdr + frame[14:]
    if variant == "sll2":
        if len(frame) < 14:
            return None
        hdr = frame[12:14] + struct.pack(">HIHBB", 0, 2, 1, 0, 6) + frame[6:12] + b"\0\0"
        return hdr + frame[14:]
    ip = ip_after_ethernet(frame)
    if ip is None:
        return None
    version, off = ip
    if variant == "raw":
        return frame[off:]
    if variant == "null":  # host order of a little-endian BSD box; AF_INET6 = 24
        return struct.pack("<I", 2 if version == 4 else 24) + frame[off:]
    if variant == "loop":  # network order; OpenBSD AF_INET6 = 24
        return struct.pack(">I", 2 if version == 4 else 24) + frame[off:]
    raise SystemExit(f"unknown variant {variant}")


def write_pcap(path, records, linktype, snaplen, endian="<", nsec=False):
    magic = 0xA1B23C4D if nsec else 0xA1B2C3D4
    with open(path, "wb") as f:
        f.write(struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        for sec, ns, orig, frame in records:
            frac = ns if nsec else ns // 1000
            f.write(struct.pack(endian + "IIII", sec, frac, len(frame), orig))
            f.write(frame)


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    variant, src, dst = sys.argv[1:]
    snaplen, records = read_pcap(src)
    if variant.startswith("dlt="):
        write_pcap(dst, records, int(variant[4:]), snaplen)
        return
    out = []
    for sec, ns, orig, frame in records:
        conv = convert(variant, frame)
        if conv is None:
            continue
        # keep the original wire length's relation to the captured bytes
        out.append((sec, ns, max(len(conv), orig - (len(frame) - len(conv))), conv))
    linktype = DLT.get(variant, 1)
    if variant == "be":
        write_pcap(dst, out, 1, snaplen, endian=">")
    elif variant == "nsec":
        write_pcap(dst, out, 1, snaplen, nsec=True)
    elif variant == "pcapng":
        tmp = dst + ".tmp.pcap"
        write_pcap(tmp, out, 1, snaplen)
        subprocess.run(["editcap", "-F", "pcapng", tmp, dst], check=True)
        os.remove(tmp)
    else:
        write_pcap(dst, out, linktype, max(snaplen, 65535))


if __name__ == "__main__":
    main()
