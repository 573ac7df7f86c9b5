// One decapsulation step: recognises the tunnel header that follows an IP
// header (GRE/ERSPAN, VXLAN, VXLAN-GPE/NSH, Geneve, IP-in-IP) and says where
// the inner packet starts. Runs on RX lcores (inside parse_packet) and in
// tests; no allocation. Internal to src/core.
#pragma once

#include <cstddef>
#include <cstdint>

#include "spanfeed/packet.h"

namespace spanfeed::detail {

enum class DecapKind : uint8_t {
  kNone,       // not a tunnel we decapsulate: the packet is what it is
  kEthernet,   // an Ethernet frame starts at inner_offset
  kEthertype,  // the bytes at inner_offset are what `ethertype` announces (IP, MPLS, VLAN...)
  kIp,         // an IP header (version ip_version) starts at inner_offset
  kTruncated,  // the tunnel header is cut off by the capture
  kMalformed,  // the tunnel header contradicts itself
};

struct DecapStep {
  DecapKind kind = DecapKind::kNone;
  TunnelType type = TunnelType::kNone;
  uint32_t id = 0;
  bool has_id = false;
  size_t inner_offset = 0;
  uint16_t ethertype = 0;
  uint8_t ip_version = 0;
};

// The IP protocols decap_step looks into (UDP, GRE, IPv4/IPv6 in IP): for any
// other (TCP, ICMP...) it finds no tunnel, so the parser need not ask it.
inline bool may_carry_tunnel(uint8_t l4_proto) {
  return l4_proto == 17 || l4_proto == 47 || l4_proto == 4 || l4_proto == 41;
}

// `p` has been parsed up to L4 (l4_offset, ports, l4_proto set; not a later
// fragment). `end` is where the IP datagram ends in the captured bytes.
DecapStep decap_step(const uint8_t* d, size_t end, const ParsedPacket& p, const DecapConfig& cfg);

}  // namespace spanfeed::detail
