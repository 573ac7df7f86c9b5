#!/usr/bin/env python3
"""Independent oracle: what tshark says a capture holds.

payload_sum(path) -> (ip_packets, payload_bytes) computed by tshark alone:
for each frame, the IP header spanfeed processes (the first 'ip' or 'ipv6'
in frame.protocols, or the innermost one after the GRE/ERSPAN/VXLAN/NSH/
Geneve/IP-in-IP layers spanfeed removes): IPv4 total length - header length,
IPv6 payload length.
"""
import re
import subprocess
import sys

# tshark writes this text into a raw follow where it saw bytes missing.
_MISSING = re.compile(rb"^\[(\d+) bytes missing in capture file\]\x00?$")


def _fields(path, fields, display_filter=None):
    cmd = ["tshark", "-n", "-r", path, "-T", "fields", "-E", "separator=\t",
           "-E", "occurrence=a", "-E", "aggregator=,"]
    if display_filter:
        cmd += ["-Y", display_filter]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        yield line.split("\t")


# Layers after which tshark's next IP header is an encapsulated packet that
# spanfeed's parser decapsulates (docs/encapsulation.md); an IP header right
# after another one is IP-in-IP.
_TUNNELS = {"gre", "erspan", "vxlan", "geneve", "nsh"}


def delivered_ip_layer(layers):
    """Index into `layers` of the IP header spanfeed processes: the outermost one, or the
    innermost after the tunnels it removes. None when the frame is not IP or the packet inside
    the tunnel is not IP (CDP, LLDP mirrored in ERSPAN or GRE-TEB)."""
    cur = next((i for i, l in enumerate(layers) if l in ("ip", "ipv6")), None)
    if cur is None:
        return None
    tunnel = False
    for i in range(cur + 1, len(layers)):
        l = layers[i]
        if l in _TUNNELS:
            tunnel = True
        elif l in ("ip", "ipv6") and (tunnel or i == cur + 1):
            cur, tunnel = i, False
        elif l in ("icmp", "icmpv6", "tcp"):
            break  # an ICMP error quotes an IP header: not a tunnel
    return None if tunnel else cur


def payload_sum(path):
    """(packets, payload bytes) of the IP headers spanfeed processes: IPv4 total length - header
    length, IPv6 payload length, of the outermost IP header or, in a tunnel spanfeed removes, of
    the inner one."""
    packets = 0
    total = 0
    for protos, ip_len, ip_hl, ip6_plen in _fields(
            path, ["frame.protocols", "ip.len", "ip.hdr_len", "ipv6.plen"]):
        layers = protos.split(":")
        at = delivered_ip_layer(layers)
        if at is None:
            continue
        nth = layers[:at].count(layers[at])  # which ip (or ipv6) occurrence
        if layers[at] == "ip" and ip_len:
            lens, hls = ip_len.split(","), ip_hl.split(",")
            if nth < len(lens):
                total += int(lens[nth]) - int(hls[nth])
                packets += 1
        elif layers[at] == "ipv6" and ip6_plen:
            plens = ip6_plen.split(",")
            if nth < len(plens):
                total += int(plens[nth])
                packets += 1
    return packets, total


def frame_count(path):
    out = subprocess.run(["capinfos", "-c", "-M", path], check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "Number of packets" in line:
            return int(line.split(":")[1].strip())
    raise RuntimeError("capinfos gave no packet count for " + path)


if __name__ == "__main__":
    for p in sys.argv[1:]:
        n, b = payload_sum(p)
        print(f"{p}\tframes={frame_count(p)}\tip_packets={n}\tpayload_bytes={b}")


def tcp_stream_ids(path):
    ids = set()
    for (sid,) in _fields(path, ["tcp.stream"], display_filter="tcp"):
        if sid:
            ids.add(int(sid.split(",")[0]))
    return sorted(ids)


def follow_tcp(path):
    """Every TCP connection's reassembled bytes per direction, as tshark's
    `-z follow,tcp,raw,N` gives them (one tshark pass for all streams).
    Returns a list of dicts: node0/node1 ("ip:port"), data0/data1 (bytes sent
    by node0 / node1), and missing0/missing1 where tshark marked bytes as
    missing (its marker text is not part of the data)."""
    ids = tcp_stream_ids(path)
    if not ids:
        return []
    cmd = ["tshark", "-n", "-r", path, "-q"]
    for i in ids:
        cmd += ["-z", f"follow,tcp,raw,{i}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    streams, cur = [], None
    for line in out.splitlines():
        if line.startswith("Follow: tcp,raw"):
            cur = {"node0": None, "node1": None, "data0": bytearray(), "data1": bytearray()}
            streams.append(cur)
        elif cur is None or line.startswith("=====") or line.startswith("Filter:"):
            continue
        elif line.startswith("Node 0: "):
            cur["node0"] = line[8:].strip()
        elif line.startswith("Node 1: "):
            cur["node1"] = line[8:].strip()
        elif line.strip():
            chunk = bytes.fromhex(line.strip())
            m = _MISSING.match(chunk)
            side = "1" if line.startswith("\t") else "0"
            if m:
                cur["missing" + side] = cur.get("missing" + side, 0) + int(m.group(1))
            else:
                cur["data" + side] += chunk
    return streams


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"
