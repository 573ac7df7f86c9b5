// Symmetric flow hash (MurmurHash3 over the canonical 5-tuple) and the
// hash-to-worker mapping. Runs on RX lcores (inline in the RX loop); no allocation.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

#include "spanfeed/packet.h"

namespace spanfeed {

// Seed for the flow hash; any constant works, it only has to be the same on
// every RX lcore of one process.
inline constexpr uint32_t kFlowHashSeed = 0x5fa1feedu;

namespace flow_hash_detail {

// MurmurHash3 x86_32 written out for the one 44-byte canonical tuple: the same value as
// libmurmurhash's lmmh_x86_32 over that tuple (flow_hash_test checks it for random tuples, so the
// worker of every flow stays where it was). The canonical tuple as hashed (11 little-endian words):
//   0-3 lower endpoint address, 4-7 higher endpoint address (16 bytes each),
//   8 port_lo | port_hi << 16, 9 proto | tunnel key type << 8, 10 vlan ^ tunnel key id * golden.
inline constexpr uint32_t kTupleBytes = 44;

inline uint32_t word(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
  return v;
}

inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

inline uint64_t be64(const uint8_t* p) {
  uint64_t v = load64(p);
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap64(v);
  return v;
}

// memcmp(a, b, 16) < 0, == 0 as two big-endian 64-bit compares.
inline int compare16(const uint8_t* a, const uint8_t* b) {
  const uint64_t a0 = be64(a), b0 = be64(b);
  if (a0 != b0) return a0 < b0 ? -1 : 1;
  const uint64_t a1 = be64(a + 8), b1 = be64(b + 8);
  return a1 == b1 ? 0 : a1 < b1 ? -1 : 1;
}

struct Murmur3 {
  uint32_t h;
  void block(uint32_t k) {
    k *= 0xcc9e2d51u;
    k = std::rotl(k, 15);
    k *= 0x1b873593u;
    h ^= k;
    h = std::rotl(h, 13);
    h = h * 5 + 0xe6546b64u;
  }
  // block(0): the key's mixing of a zero word is zero.
  void zero_block() {
    h = std::rotl(h, 13);
    h = h * 5 + 0xe6546b64u;
  }
  void addr(const uint8_t* a) {
    block(word(a));
    block(word(a + 4));
    block(word(a + 8));
    block(word(a + 12));
  }
  // An IPv4 address as kept in IpAddr: its 4 bytes, then 12 zero bytes.
  void addr4(uint32_t first_word) {
    block(first_word);
    zero_block();
    zero_block();
    zero_block();
  }
  uint32_t finish(uint32_t len) {
    h ^= len;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
  }
};

// The canonical tuple's hash with the ports given (symmetric_flow_hash zeroes
// them for fragments; datagram_flow_hash keeps a first fragment's).
inline uint32_t tuple_hash(const ParsedPacket& p, uint16_t sp, uint16_t dp, bool include_vlan) {
  const uint32_t vlan = (include_vlan ? p.vlan : 0) ^ (p.tunnel.key_id * 0x9E3779B1u);
  const uint32_t proto = uint32_t{p.l4_proto} | uint32_t{static_cast<uint8_t>(p.tunnel.key_type)} << 8;
  Murmur3 m{kFlowHashSeed};
  bool src_first;
  const uint64_t s0 = load64(p.src.bytes), d0 = load64(p.dst.bytes);
  if (std::endian::native == std::endian::little &&
      ((s0 | d0) >> 32 | load64(p.src.bytes + 8) | load64(p.dst.bytes + 8)) == 0) {
    const auto s = static_cast<uint32_t>(s0), d = static_cast<uint32_t>(d0);
    const uint32_t sb = __builtin_bswap32(s), db = __builtin_bswap32(d);
    src_first = sb < db || (sb == db && sp <= dp);
    m.addr4(src_first ? s : d);
    m.addr4(src_first ? d : s);
  } else {
    const int c = compare16(p.src.bytes, p.dst.bytes);
    src_first = c < 0 || (c == 0 && sp <= dp);
    m.addr(src_first ? p.src.bytes : p.dst.bytes);
    m.addr(src_first ? p.dst.bytes : p.src.bytes);
  }
  const uint32_t port_lo = src_first ? sp : dp;
  const uint32_t port_hi = src_first ? dp : sp;
  m.block(port_lo | port_hi << 16);
  m.block(proto);
  m.block(vlan);
  return m.finish(kTupleBytes);
}
}  // namespace flow_hash_detail

// MurmurHash3 (x86_32) of the canonical tuple: the (address, port) endpoints
// are ordered so that A->B and B->A produce the same bytes. Fragments without
// an L4 header hash on addresses + protocol only (ports 0), and so do all
// fragments of a datagram, so that they meet on one worker. VLAN is mixed in
// when include_vlan is set. Two addresses whose last 12 bytes are zero (IPv4,
// decided by the bytes, not by ip_version, so the value never depends on it)
// skip the zero words' key mixing: ~75 instructions inline instead of ~120.
inline uint32_t symmetric_flow_hash(const ParsedPacket& p, bool include_vlan) {
  // All fragments of a datagram, first included, must meet the later ones
  // (which carry no ports) on one worker.
  uint16_t sp = p.src_port;
  uint16_t dp = p.dst_port;
  if (p.flags & packet_flag::kFragment) sp = dp = 0;
  return flow_hash_detail::tuple_hash(p, sp, dp, include_vlan);
}

// The hash a first fragment's datagram has once reassembled: its ports kept
// (fragment_steer.h steers the datagram's fragments to that flow's worker).
inline uint32_t datagram_flow_hash(const ParsedPacket& p, bool include_vlan) {
  return flow_hash_detail::tuple_hash(p, p.src_port, p.dst_port, include_vlan);
}

// Maps a 32-bit hash uniformly onto [0, n) without a division
// (Lemire's multiply-shift); n > 0.
inline uint32_t worker_for_hash(uint32_t hash, uint32_t n) {
  return static_cast<uint32_t>((static_cast<uint64_t>(hash) * n) >> 32);
}

}  // namespace spanfeed
