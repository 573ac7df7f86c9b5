// Which worker an IP fragment goes to. Runs on one RX lcore (one table per RX
// lcore); allocates only in the constructor.
//
// The flow hash gives every fragment of a datagram the addresses-only hash
// (later fragments carry no ports), so the datagram is reassembled on the
// worker of its address pair, while the unfragmented packets of its flow (the
// DNS query whose answer came in fragments) go to the worker of its 5-tuple:
// with two or more workers, half of such answers were reassembled where their
// query was not, and came out as a timeout plus an unmatched answer. The steer
// remembers, per datagram (addresses, protocol, IP id), the worker hash its
// first-seen fragment decided on: the 5-tuple hash when that is the first
// fragment (it has the ports; mirrors and Linux send fragments in order), the
// addresses-only hash otherwise. Every fragment of a datagram then goes to one
// worker, and in the usual order that is its flow's worker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "spanfeed/flow_hash.h"
#include "spanfeed/packet.h"
#include "spanfeed/word_hash.h"

namespace spanfeed {

class FragmentSteer {
 public:
  // `min_entries` is rounded up to a power of two; an entry lives `ttl_ns` of
  // packet time (the reassembly timeout: the datagram is dropped after it).
  FragmentSteer(size_t min_entries, uint64_t ttl_ns) : ttl_ns_(ttl_ns) {
    size_t n = 64;
    while (n < min_entries) n <<= 1;
    table_.resize(n);
    mask_ = n - 1;
  }

  // The hash that picks `p`'s worker. `p` is a fragment parsed from `frame`;
  // `addr_hash` is symmetric_flow_hash(p) (addresses + protocol).
  uint32_t hash_for(const ParsedPacket& p, std::span<const std::byte> frame, uint64_t ts_ns, bool include_vlan,
                    uint32_t addr_hash) {
    const size_t l3 = p.l3_offset;
    uint32_t id;
    if (p.ip_version == 4 && l3 + 20 <= frame.size()) {
      id = rd(frame, l3 + 4, 2);
    } else if (p.ip_version == 6 && l3 + 48 <= frame.size() && frame[l3 + 6] == std::byte{44}) {
      id = rd(frame, l3 + 44, 4);  // the fragment header right after the fixed one (what rte_ip_frag takes)
    } else {
      ++unkeyed_;
      return addr_hash;
    }
    // The datagram: the address pair, protocol, VLAN and tunnel key (all in
    // addr_hash) and the IP id.
    const uint64_t tag = (uint64_t{addr_hash} << 32 | id) ^ (uint64_t{p.ip_version} << 62);
    Entry& e = table_[word_hash::fmix64(tag) & mask_];
    if (e.used && e.tag == tag && ts_ns <= e.expires_ns) {
      ++followed_;
      return e.hash;
    }
    const bool first = !(p.flags & packet_flag::kLaterFragment) && p.l4_offset != 0;
    e = Entry{tag, ts_ns + ttl_ns_, first ? datagram_flow_hash(p, include_vlan) : addr_hash, true};
    ++(first ? by_ports_ : by_addresses_);
    return e.hash;
  }

  // Datagrams steered by their first fragment's ports / by their addresses
  // (a later fragment came first), fragments that followed an entry, and
  // fragments with no key read (IPv6 fragment header behind other headers).
  uint64_t by_ports() const { return by_ports_; }
  uint64_t by_addresses() const { return by_addresses_; }
  uint64_t followed() const { return followed_; }
  uint64_t unkeyed() const { return unkeyed_; }
  size_t entries() const { return table_.size(); }

 private:
  struct Entry {
    uint64_t tag = 0;
    uint64_t expires_ns = 0;
    uint32_t hash = 0;
    bool used = false;
  };
  static uint32_t rd(std::span<const std::byte> f, size_t at, int n) {
    uint32_t v = 0;
    for (int i = 0; i < n; ++i) v = v << 8 | std::to_integer<uint32_t>(f[at + i]);
    return v;
  }
  std::vector<Entry> table_;
  size_t mask_ = 0;
  uint64_t ttl_ns_;
  uint64_t by_ports_ = 0;
  uint64_t by_addresses_ = 0;
  uint64_t followed_ = 0;
  uint64_t unkeyed_ = 0;
};

}  // namespace spanfeed
