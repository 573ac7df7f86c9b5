#!/usr/bin/env python3
"""Writes a classic pcap of small TCP frames (78 bytes: Ethernet, IPv4, TCP, 8 payload bytes)
over 4,096 flows, for measuring the RX lcore's packet rate where per-packet work, not bytes,
is the cost:
    python3 bench/small-frames.py /dev/shm/small.pcap [PACKETS=4000000]
    build/src/spanfeed --pcap /dev/shm/small.pcap --job payload-sum -w 1 -q --metrics off --log-level info
(the `RX lcore` line gives packets per RX CPU-second)."""
import struct
import sys

out_path = sys.argv[1]
packets = int(sys.argv[2]) if len(sys.argv) > 2 else 4_000_000
frames = []
for f in range(4096):
    tcp = struct.pack("!HHIIBBHHH", 20000 + f, 80, 1000, 0, 0x50, 0x18, 65535, 0, 0) + b"GET / HT"
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0,
                     bytes([10, 0, f >> 8, f & 255]), bytes([10, 1, 0, 1]))
    frames.append(b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + tcp)
with open(out_path, "wb") as out:
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    t = 1_700_000_000_000_000
    buf = []
    for i in range(packets):
        fr = frames[i & 4095]
        t += 1
        buf.append(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(fr), len(fr)) + fr)
        if len(buf) == 100_000:
            out.write(b"".join(buf))
            buf = []
    out.write(b"".join(buf))
