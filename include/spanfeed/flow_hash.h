// Symmetric flow hash (MurmurHash3 over the canonical 5-tuple) and the
// hash-to-worker mapping. Runs on RX lcores; no allocation.
#pragma once

#include <cstdint>

#include "spanfeed/packet.h"

namespace spanfeed {

// Seed for the flow hash; any constant works, it only has to be the same on
// every RX lcore of one process.
inline constexpr uint32_t kFlowHashSeed = 0x5fa1feedu;

// MurmurHash3 (x86_32) of the canonical tuple: the (address, port) endpoints
// are ordered so that A->B and B->A produce the same bytes. Fragments without
// an L4 header hash on addresses + protocol only (ports 0), and so do all
// fragments of a datagram, so that they meet on one worker. VLAN is mixed in
// when include_vlan is set.
uint32_t symmetric_flow_hash(const ParsedPacket& p, bool include_vlan);

// Maps a 32-bit hash uniformly onto [0, n) without a division
// (Lemire's multiply-shift); n > 0.
inline uint32_t worker_for_hash(uint32_t hash, uint32_t n) {
  return static_cast<uint32_t>((static_cast<uint64_t>(hash) * n) >> 32);
}

}  // namespace spanfeed
