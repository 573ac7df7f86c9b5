// WireReader: the bounds-checked big-endian reader of the binary decoders (AMQP arguments, MQTT packets, TLS
// handshakes). Pure, over caller-owned bytes; run on worker lcores; never allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "db_util.h"

namespace spanfeed {

// Reads from the front of [data, data + size). A read past the end returns 0 (or an empty view), clears ok()
// for good and leaves nothing to read; the position stays where the failed read began. A sub-reader from
// take() is independent: ok, over exactly its bytes (empty when the parent was short).
class WireReader {
 public:
  WireReader() = default;
  WireReader(const uint8_t* data, size_t size) : p_(data), end_(size) {}
  explicit WireReader(std::span<const std::byte> s) : WireReader(db::u8p(s), s.size()) {}

  bool ok() const { return ok_; }
  size_t pos() const { return i_; }              // bytes consumed so far
  size_t remaining() const { return end_ - i_; }
  const uint8_t* cur() const { return p_ + i_; }  // the next unread byte
  // The rest, unread (empty once failed).
  std::string_view text() const { return {reinterpret_cast<const char*>(p_ + i_), end_ - i_}; }
  std::span<const std::byte> bytes() const { return {reinterpret_cast<const std::byte*>(p_ + i_), end_ - i_}; }

  // Marks the input malformed: ok() false, nothing left to read.
  void fail() {
    ok_ = false;
    end_ = i_;
  }
  // At least k bytes left? If not, fail().
  bool need(size_t k) {
    if (!ok_ || end_ - i_ < k) fail();
    return ok_;
  }

  uint8_t u8() { return need(1) ? p_[i_++] : 0; }
  uint16_t u16() { return need(2) ? (i_ += 2, db::be16(p_ + i_ - 2)) : 0; }
  uint32_t u24() {
    if (!need(3)) return 0;
    i_ += 3;
    return uint32_t{p_[i_ - 3]} << 16 | uint32_t{p_[i_ - 2]} << 8 | p_[i_ - 1];
  }
  uint32_t u32() { return need(4) ? (i_ += 4, db::be32(p_ + i_ - 4)) : 0; }
  uint64_t u64() {
    const uint64_t hi = u32();
    return hi << 32 | u32();
  }
  void skip(size_t k) {
    if (need(k)) i_ += k;
  }
  // The next k bytes as text.
  std::string_view view(size_t k) {
    if (!need(k)) return {};
    i_ += k;
    return {reinterpret_cast<const char*>(p_ + i_ - k), k};
  }
  // Length-prefixed strings: a u8, u16 or u32 length, then that many bytes.
  std::string_view str8() { return view(u8()); }
  std::string_view str16() { return view(u16()); }
  std::string_view str32() { return view(u32()); }
  // The next k bytes as a reader of their own.
  WireReader take(size_t k) {
    if (!need(k)) return {p_ + i_, 0};
    i_ += k;
    return {p_ + i_ - k, k};
  }

 private:
  const uint8_t* p_ = nullptr;
  size_t end_ = 0;
  size_t i_ = 0;
  bool ok_ = true;
};

}  // namespace spanfeed
