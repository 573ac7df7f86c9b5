// Mirror-duplicate filter (see include/spanfeed/duplicate_filter.h).
// Runs on one worker lcore; allocates only in the constructor.
#include "spanfeed/duplicate_filter.h"

#include "spanfeed/word_hash.h"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>

namespace spanfeed {

namespace {

using word_hash::fmix64;
using word_hash::load64;
using word_hash::mix;

inline uint32_t be16(const std::byte* b) {
  return (std::to_integer<uint32_t>(b[0]) << 8) | std::to_integer<uint32_t>(b[1]);
}

inline uint32_t be32(const std::byte* b) {
  uint32_t v;
  std::memcpy(&v, b, sizeof(v));
  return __builtin_bswap32(v);
}

inline uint64_t load32(const void* b) {
  uint32_t v;
  std::memcpy(&v, b, sizeof(v));
  return v;
}

}  // namespace

DuplicateFilter::DuplicateFilter(uint64_t window_ns, uint32_t entries, uint64_t seed)
    : window_ns_(window_ns), seed_(seed | 1) {
  if (window_ns_ == 0) return;
  const uint32_t lines = std::bit_ceil(std::max<uint32_t>(entries, kWays) / kWays);
  mask_ = lines - 1;
  entries_ = lines * kWays;
  lines_ = std::make_unique<Line[]>(lines);  // value-initialised: every entry empty
}

uint64_t DuplicateFilter::fingerprint(std::span<const std::byte> frame, const ParsedPacket& p) const {
  const std::byte* f = frame.data();
  const size_t n = frame.size();
  uint64_t h = seed_;
  if (p.ip_version == 6) [[unlikely]] {
    h = mix(h, load64(p.src.bytes));
    h = mix(h, load64(p.src.bytes + 8));
    h = mix(h, load64(p.dst.bytes));
    h = mix(h, load64(p.dst.bytes + 8));
  } else {
    h = mix(h, load32(p.src.bytes) | load32(p.dst.bytes) << 32);  // IPv4: the first 4 bytes
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
  // IPv4: identification and fragment field (one word); IPv6: the flow
  // label. 2^32: not in the frame (a value no field can take).
  const size_t l3 = p.l3_offset;
  uint64_t ip_id = uint64_t{1} << 32;
  if (p.ip_version == 6) [[unlikely]] {
    if (l3 + 4 <= n) ip_id = be32(f + l3) & 0xfffff;
  } else if (l3 + 8 <= n) [[likely]] {
    ip_id = be32(f + l3 + 4);
  }
  uint64_t csum = 0x20000;  // no L4 header (or neither TCP nor UDP): no checksum
  if (p.l4_offset != 0 && (p.l4_proto == kProtoTcp || p.l4_proto == kProtoUdp)) [[likely]] {
    const size_t off = size_t{p.l4_offset} + (p.l4_proto == kProtoTcp ? 16 : 6);
    csum = off + 2 <= n ? be16(f + off) : 0x10000;  // 0x10000: cut off by the snaplen
  }
  h = mix(h, ip_id | csum << 33);
  h = fmix64(h);
  return h != 0 ? h : 1;  // 0 marks an empty entry
}

bool DuplicateFilter::seen_fingerprint(uint64_t fp, uint64_t ts_ns) {
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
