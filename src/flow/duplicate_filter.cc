// Mirror-duplicate filter (see include/spanfeed/duplicate_filter.h).
// Runs on one worker lcore; allocates only in the constructor.
#include "spanfeed/duplicate_filter.h"

#include "spanfeed/word_hash.h"

#include <algorithm>
#include <bit>
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
  if (p.ip_version == 6) {
    h = mix(h, load64(p.src.bytes));
    h = mix(h, load64(p.src.bytes + 8));
    h = mix(h, load64(p.dst.bytes));
    h = mix(h, load64(p.dst.bytes + 8));
  } else {
    h = mix(h, load32(p.src.bytes) | load32(p.dst.bytes) << 32);  // IPv4: the first 4 bytes
  }
  h = mix(h, uint64_t{p.src_port} | uint64_t{p.dst_port} << 16 | uint64_t{p.l4_proto} << 32 |
                 uint64_t{p.ip_version} << 40 | uint64_t{p.tcp_flags} << 48);
  h = mix(h, uint64_t{p.ip_payload_len} | uint64_t{p.payload_len} << 32);
  h = mix(h, uint64_t{p.tcp_seq} | uint64_t{p.tcp_ack} << 32);
  // IPv4: identification and fragment field (one word); IPv6: the flow
  // label. 2^32: not in the frame (a value no field can take).
  const size_t l3 = p.l3_offset;
  uint64_t ip_id = uint64_t{1} << 32;
  if (p.ip_version == 6) {
    if (l3 + 4 <= n) ip_id = be32(f + l3) & 0xfffff;
  } else if (l3 + 8 <= n) {
    ip_id = be32(f + l3 + 4);
  }
  uint64_t csum = 0x20000;  // no L4 header (or neither TCP nor UDP): no checksum
  if (p.l4_offset != 0 && (p.l4_proto == kProtoTcp || p.l4_proto == kProtoUdp)) {
    const size_t off = size_t{p.l4_offset} + (p.l4_proto == kProtoTcp ? 16 : 6);
    csum = off + 2 <= n ? be16(f + off) : 0x10000;  // 0x10000: cut off by the snaplen
  }
  h = mix(h, ip_id | csum << 33);
  h = fmix64(h);
  return h != 0 ? h : 1;  // 0 marks an empty entry
}

bool DuplicateFilter::seen(std::span<const std::byte> frame, const ParsedPacket& p, uint64_t ts_ns) {
  if (window_ns_ == 0) return false;
  const bool announced = ahead_parsed_ == &p && ahead_frame_.data() == frame.data() &&
                         ahead_frame_.size() == frame.size();
  ahead_parsed_ = nullptr;
  const uint64_t fp = announced ? ahead_fp_ : fingerprint(frame, p);
  Line& line = lines_[line_of(fp)];
  Entry* victim = &line.e[0];
  for (Entry& e : line.e) {
    if (e.fp == fp) {
      const uint64_t age = ts_ns >= e.ts_ns ? ts_ns - e.ts_ns : e.ts_ns - ts_ns;
      if (age < window_ns_) return true;  // the copy: the first one's time stays
      e.ts_ns = ts_ns;  // same identity, long after: a retransmission, remembered anew
      return false;
    }
    if (e.ts_ns < victim->ts_ns || e.fp == 0) victim = &e;
    if (e.fp == 0) break;
  }
  if (victim->fp != 0 && ts_ns - victim->ts_ns < window_ns_ && ts_ns >= victim->ts_ns) ++evicted_live_;
  victim->fp = fp;
  victim->ts_ns = ts_ns;
  return false;
}

}  // namespace spanfeed
