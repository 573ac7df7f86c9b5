// Symmetric MurmurHash3 flow hash. Runs on RX lcores; no allocation.
#include "spanfeed/flow_hash.h"

#include <murmurhash.h>

#include <cstring>

namespace spanfeed {
namespace {

// Canonical tuple as hashed: packed, no padding bytes left uninitialised.
struct CanonicalTuple {
  uint8_t addr_lo[16];
  uint8_t addr_hi[16];
  uint16_t port_lo;
  uint16_t port_hi;
  uint8_t proto;
  uint8_t pad[3];
  uint32_t vlan;
};
static_assert(sizeof(CanonicalTuple) == 44);

}  // namespace

uint32_t symmetric_flow_hash(const ParsedPacket& p, bool include_vlan) {
  CanonicalTuple t;
  std::memset(&t, 0, sizeof(t));
  uint16_t sp = p.src_port;
  uint16_t dp = p.dst_port;
  if (p.flags & packet_flag::kFragment) {
    // All fragments of a datagram, first included, must meet the later ones
    // (which carry no ports) on one worker.
    sp = dp = 0;
  }
  int c = std::memcmp(p.src.bytes, p.dst.bytes, 16);
  bool src_first = c < 0 || (c == 0 && sp <= dp);
  const IpAddr& lo = src_first ? p.src : p.dst;
  const IpAddr& hi = src_first ? p.dst : p.src;
  std::memcpy(t.addr_lo, lo.bytes, 16);
  std::memcpy(t.addr_hi, hi.bytes, 16);
  t.port_lo = src_first ? sp : dp;
  t.port_hi = src_first ? dp : sp;
  t.proto = p.l4_proto;
  t.vlan = include_vlan ? p.vlan : 0;
  // Tunnel identity (when the parser was told to key on it): zero for bare
  // packets, so their hash is what it always was.
  t.pad[0] = static_cast<uint8_t>(p.tunnel.key_type);
  t.vlan ^= p.tunnel.key_id * 0x9E3779B1u;
  uint32_t out[1];
  lmmh_x86_32(&t, sizeof(t), kFlowHashSeed, out);
  return out[0];
}

}  // namespace spanfeed
