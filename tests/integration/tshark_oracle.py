#!/usr/bin/env python3
"""Independent oracle: what tshark says a capture holds.

payload_sum(path) -> (ip_packets, payload_bytes) computed by tshark alone:
for each frame, the outermost IP header (first 'ip' or 'ipv6' in
frame.protocols): IPv4 total length - header length, IPv6 payload length.
"""
import subprocess
import sys


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


def payload_sum(path):
    packets = 0
    total = 0
    for protos, ip_len, ip_hl, ip6_plen in _fields(
            path, ["frame.protocols", "ip.len", "ip.hdr_len", "ipv6.plen"]):
        layers = protos.split(":")
        first = next((l for l in layers if l in ("ip", "ipv6")), None)
        if first == "ip" and ip_len:
            total += int(ip_len.split(",")[0]) - int(ip_hl.split(",")[0])
            packets += 1
        elif first == "ipv6" and ip6_plen:
            total += int(ip6_plen.split(",")[0])
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
