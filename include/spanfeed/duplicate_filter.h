// Mirror-duplicate filter: remembers the L3/L4 identity of recent packets so a second copy
// seen within a short window (ingress + egress mirrored) is dropped before reassembly.
// Runs on one worker lcore, no locks; allocates only in the constructor, never per packet.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

#include "spanfeed/packet.h"
#include "spanfeed/word_hash.h"

namespace spanfeed {

// A packet's identity: addresses, ports, protocol, IP id (IPv4) or flow
// label (IPv6), fragment field, IP payload length, TCP sequence, ack and
// flags, and the L4 checksum (it covers the payload). Layer 2 (MACs, VLAN),
// TTL and the IP header checksum are left out: a router between the two
// mirror points changes them. A retransmission differs in the IP id (Linux,
// Windows) or the checksum (TCP timestamps), and the window is far shorter
// than any retransmission timer; an identical copy within it is the mirror's.
//
// Set-associative table of 64-bit fingerprints (keyed with a per-run seed,
// so crafted collisions cannot be aimed): one cache line of 4 entries per
// lookup; a full line replaces its oldest entry.
class DuplicateFilter {
 public:
  // window_ns 0: off (seen() is never true). entries is rounded up to a
  // multiple of 4 (a power of two of lines).
  DuplicateFilter(uint64_t window_ns, uint32_t entries, uint64_t seed);

  bool enabled() const { return window_ns_ != 0; }
  uint64_t window_ns() const { return window_ns_; }
  uint32_t entries() const { return entries_; }

  // True when a packet with the same identity was seen less than the window
  // before (or after: timestamps of two RX queues may step back): a copy to
  // drop. Otherwise remembers this one and returns false.
  bool seen(std::span<const std::byte> frame, const ParsedPacket& p, uint64_t ts_ns) {
    return window_ns_ != 0 && seen_fingerprint(fingerprint(frame, p), ts_ns);
  }
  // The same for a packet whose fingerprint() is known (enabled() only).
  bool seen_fingerprint(uint64_t fp, uint64_t ts_ns);

  // Fetches the table line seen_fingerprint(fp) will read (enabled() only):
  // the reassembler computes the next packet's fingerprint while it handles
  // this one, so that call does not wait for memory.
  void prefetch(uint64_t fp) const { __builtin_prefetch(&lines_[line_of(fp)], 1); }

  // Entries still inside the window overwritten by a newer packet: a copy of
  // them arriving later passes as new. Non-zero: the table is small for the
  // packet rate (entries per window).
  uint64_t evicted_live() const { return evicted_live_; }

  // The fingerprint seen() keys on. Inline: the reassembler computes one per
  // packet (lookahead), right after the same packet's flow key.
  uint64_t fingerprint(std::span<const std::byte> frame, const ParsedPacket& p) const;

 private:
  static constexpr uint32_t kWays = 4;
  struct Entry {
    uint64_t fp = 0;  // 0: empty
    uint64_t ts_ns = 0;
  };
  struct alignas(64) Line {
    Entry e[kWays];
  };

  uint32_t line_of(uint64_t fp) const { return static_cast<uint32_t>(fp >> 40) & mask_; }

  uint64_t window_ns_;
  uint64_t seed_;
  uint32_t mask_ = 0;
  uint32_t entries_ = 0;
  std::unique_ptr<Line[]> lines_;
  uint64_t evicted_live_ = 0;
};


// ---------------------------------------------------------------------------
// Inline definitions (per packet on the worker)

inline uint64_t DuplicateFilter::fingerprint(std::span<const std::byte> frame, const ParsedPacket& p) const {
  using word_hash::load64;
  using word_hash::mix;
  auto load32 = [](const void* b) -> uint64_t {
    uint32_t v;
    std::memcpy(&v, b, sizeof(v));
    return v;
  };
  // The frame's fields are taken as they lie (no byte swap: the same bytes,
  // the same identity). 2^32: the IP id/flow label field is not in the frame
  // (a value no field can take).
  const std::byte* f = frame.data();
  const size_t n = frame.size();
  const size_t l3 = p.l3_offset;
  uint64_t h = seed_;
  uint64_t ip_id = uint64_t{1} << 32;
  if (p.ip_version == 6) [[unlikely]] {
    h = mix(h, load64(p.src.bytes));
    h = mix(h, load64(p.src.bytes + 8));
    h = mix(h, load64(p.dst.bytes));
    h = mix(h, load64(p.dst.bytes + 8));
    // The flow label: the low 20 bits of the first word (big-endian), i.e.
    // byte 1's low nibble and bytes 2-3.
    if (l3 + 4 <= n) ip_id = load32(f + l3) & (std::endian::native == std::endian::little ? 0xffff0f00u : 0x000fffffu);
  } else {
    h = mix(h, load32(p.src.bytes) | load32(p.dst.bytes) << 32);  // IPv4: the first 4 bytes
    // Identification and the flags/fragment field (one word).
    if (l3 + 8 <= n) [[likely]] ip_id = load32(f + l3 + 4);
  }
  // The ports (src_port, dst_port: one 32-bit load) with the IP version,
  // protocol and TCP flags (ip_version, l4_proto, tcp_flags: three bytes of
  // one 32-bit load; the fourth, packet_flag bits, is left out).
  static_assert(offsetof(ParsedPacket, dst_port) == offsetof(ParsedPacket, src_port) + 2 &&
                offsetof(ParsedPacket, l4_proto) == offsetof(ParsedPacket, ip_version) + 1 &&
                offsetof(ParsedPacket, tcp_flags) == offsetof(ParsedPacket, ip_version) + 2 &&
                offsetof(ParsedPacket, flags) == offsetof(ParsedPacket, ip_version) + 3 &&
                offsetof(ParsedPacket, tcp_ack) == offsetof(ParsedPacket, tcp_seq) + 4 &&
                std::endian::native == std::endian::little);
  h = mix(h, load32(&p.src_port) | (load32(&p.ip_version) & 0xffffff) << 32);
  h = mix(h, uint64_t{p.ip_payload_len} | uint64_t{p.payload_len} << 32);
  h = mix(h, load64(&p.tcp_seq));  // tcp_seq | tcp_ack << 32
  uint64_t csum = 0x20000;  // no L4 header (or neither TCP nor UDP): no checksum
  if (p.l4_offset != 0 && (p.l4_proto == kProtoTcp || p.l4_proto == kProtoUdp)) [[likely]] {
    const size_t off = size_t{p.l4_offset} + (p.l4_proto == kProtoTcp ? 16 : 6);
    if (off + 2 <= n) [[likely]] {
      uint16_t c;
      std::memcpy(&c, f + off, sizeof(c));
      csum = c;
    } else {
      csum = 0x10000;  // cut off by the snaplen
    }
  }
  h = mix(h, ip_id | csum << 33);
  // A bijective finish (the identity classes are the mix chain's): the high
  // half folded down, then one multiply carries every bit into the high bits
  // line_of() reads.
  h ^= h >> 32;
  h *= word_hash::kMul;
  return h != 0 ? h : 1;  // 0 marks an empty entry
}

// Inline: once per packet, in Reassembler::process.
inline bool DuplicateFilter::seen_fingerprint(uint64_t fp, uint64_t ts_ns) {
  Entry* const e = lines_[line_of(fp)].e;
  auto again = [&](Entry& x) {
    const uint64_t age = ts_ns >= x.ts_ns ? ts_ns - x.ts_ns : x.ts_ns - ts_ns;
    if (age < window_ns_) return true;  // the copy: the first one's time stays
    x.ts_ns = ts_ns;  // same identity, long after: a retransmission, remembered anew
    return false;
  };
  // Entries fill from the front and are never emptied: the used ones are a
  // prefix of the line, and the first empty one (if any) is the one to take.
  Entry* victim;
  if (e[kWays - 1].fp != 0) [[likely]] {
    // A full line (most lines, once the run has warmed up): no empty entry
    // to look for (a fingerprint is never 0).
    for (uint32_t i = 0; i < kWays; ++i) {
      if (e[i].fp == fp) return again(e[i]);
    }
    // The oldest entry goes (the first of equals).
    static_assert(kWays == 4);
    Entry* const a = e[1].ts_ns < e[0].ts_ns ? &e[1] : &e[0];
    Entry* const b = e[3].ts_ns < e[2].ts_ns ? &e[3] : &e[2];
    victim = b->ts_ns < a->ts_ns ? b : a;
    if (ts_ns - victim->ts_ns < window_ns_ && ts_ns >= victim->ts_ns) ++evicted_live_;
  } else {
    uint32_t i = 0;
    for (; e[i].fp != 0; ++i) {  // stops at the empty last entry at the latest
      if (e[i].fp == fp) return again(e[i]);
    }
    victim = &e[i];
  }
  victim->fp = fp;
  victim->ts_ns = ts_ns;
  return false;
}

}  // namespace spanfeed
