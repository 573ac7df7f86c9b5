// Mirror-duplicate filter: remembers the L3/L4 identity of recent packets so a second copy
// seen within a short window (ingress + egress mirrored) is dropped before reassembly.
// Runs on one worker lcore, no locks; allocates only in the constructor, never per packet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "spanfeed/packet.h"

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

  // The fingerprint seen() keys on (tests, benches).
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

}  // namespace spanfeed
