// Test helper: builds Ethernet/VLAN/IPv4/IPv6/TCP/UDP frames byte by byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

namespace spanfeed::test {

class Frame {
 public:
  Frame& u8(uint8_t v) { b_.push_back(v); return *this; }
  Frame& u16(uint16_t v) { u8(v >> 8); return u8(v & 0xff); }
  Frame& u32(uint32_t v) { u16(v >> 16); return u16(v & 0xffff); }
  Frame& bytes(std::initializer_list<uint8_t> v) { b_.insert(b_.end(), v); return *this; }
  Frame& zeros(size_t n) { b_.insert(b_.end(), n, 0); return *this; }
  Frame& eth(uint16_t ethertype) {
    zeros(6);                                   // dst mac
    bytes({0x02, 0, 0, 0, 0, 1});               // src mac
    return u16(ethertype);
  }
  Frame& vlan(uint16_t vid, uint16_t next) { u16(vid & 0x0fff); return u16(next); }
  // IPv4 header; total_len covers header + everything after it.
  Frame& ipv4(uint32_t src, uint32_t dst, uint8_t proto, uint16_t total_len,
              uint8_t ihl_words = 5, uint16_t frag = 0) {
    u8(0x40 | ihl_words).u8(0).u16(total_len).u16(0x1234).u16(frag).u8(64).u8(proto).u16(0);
    u32(src).u32(dst);
    for (int i = 5; i < ihl_words; ++i) u32(0x01010101);  // NOP options
    return *this;
  }
  Frame& ipv6(uint8_t last_byte_src, uint8_t last_byte_dst, uint8_t next, uint16_t payload_len) {
    u32(0x60000000).u16(payload_len).u8(next).u8(64);
    zeros(15).u8(last_byte_src);
    zeros(15).u8(last_byte_dst);
    return *this;
  }
  Frame& tcp(uint16_t sp, uint16_t dp, uint32_t seq = 1000, uint32_t ack = 0,
             uint8_t flags = 0x18, uint8_t data_words = 5) {
    u16(sp).u16(dp).u32(seq).u32(ack).u8(data_words << 4).u8(flags).u16(65535).u16(0).u16(0);
    for (int i = 5; i < data_words; ++i) u32(0x01010101);
    return *this;
  }
  Frame& udp(uint16_t sp, uint16_t dp, uint16_t len) { return u16(sp).u16(dp).u16(len).u16(0); }
  std::span<const std::byte> span() const {
    return {reinterpret_cast<const std::byte*>(b_.data()), b_.size()};
  }
  std::span<const std::byte> prefix(size_t n) const { return span().first(n); }
  size_t size() const { return b_.size(); }
  std::vector<uint8_t>& raw() { return b_; }

 private:
  std::vector<uint8_t> b_;
};

}  // namespace spanfeed::test
