// RecordBuilder carry buffers: FlowContext::next_line / take keep a line or a header split over chunks in a
// per-flow buffer from the builder's fixed pool. Runs on one worker lcore; no allocation (pool made at start-up).
#include <algorithm>
#include <cstring>

#include "record_builder_internal.h"

#include "spanfeed/decoder.h"

namespace spanfeed {

using namespace builder;

namespace {

std::string_view strip_cr(std::string_view s) {
  if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
  return s;
}

}  // namespace

// ---------------------------------------------------------------- FlowContext

static_assert(kCarryClearPending == 1, "FlowContext::has_carry (decoder.h) tests bit 1");

void FlowContext::drop_carry(Direction dir) { b_.release_carry(s_, index_of(dir)); }

std::span<const std::byte> FlowContext::kept(Direction dir) const {
  const size_t d = index_of(dir);
  if (!has_carry(dir) || s_.carry[d] == kNoBuf) return {};
  return {b_.carry_data(s_.carry[d]), s_.carry_len[d]};
}

Take FlowContext::next_line_slow(Direction dir, std::span<const std::byte>& data, std::string_view& line, bool* cut) {
  const size_t d = index_of(dir);
  const size_t cap = b_.cfg_.carry_bytes;
  *cut = false;
  if (s_.carry_mode[d] & kCarryClearPending) b_.release_carry(s_, d);
  const auto* begin = reinterpret_cast<const char*>(data.data());
  const auto* nl = static_cast<const char*>(data.empty() ? nullptr : std::memchr(begin, '\n', data.size()));

  auto carry_view = [&]() {
    const char* p = s_.carry[d] == kNoBuf ? "" : reinterpret_cast<const char*>(b_.carry_data(s_.carry[d]));
    return std::string_view(p, s_.carry_len[d]);
  };
  auto append = [&](const char* p, size_t n) -> bool {  // false: no buffer
    if (n == 0) return true;
    if (s_.carry[d] == kNoBuf) {
      s_.carry[d] = b_.alloc_carry();
      if (s_.carry[d] == kNoBuf) {
        ++b_.counters_.carry_pool_exhausted;
        return false;
      }
    }
    std::memcpy(b_.carry_data(s_.carry[d]) + s_.carry_len[d], p, n);
    s_.carry_len[d] += static_cast<uint32_t>(n);
    return true;
  };

  if (s_.carry_mode[d] & kCarrySkipLine) {
    if (nl == nullptr) {
      data = {};
      return Take::kNeedMore;
    }
    data = data.subspan(static_cast<size_t>(nl - begin) + 1);
    s_.carry_mode[d] = kCarryClearPending;
    line = strip_cr(carry_view());
    *cut = true;
    return Take::kOk;
  }

  if (s_.carry_len[d] == 0) {
    if (nl != nullptr) {
      size_t len = static_cast<size_t>(nl - begin);
      line = strip_cr(std::string_view(begin, len));
      if (len > cap) {
        line = std::string_view(begin, cap);
        *cut = true;
        ++b_.counters_.carry_overflow;
      }
      data = data.subspan(len + 1);
      return Take::kOk;
    }
    if (data.size() > cap) {
      ++b_.counters_.carry_overflow;
      append(begin, cap);
      s_.carry_mode[d] = kCarrySkipLine;
    } else if (!append(begin, data.size())) {
      s_.carry_mode[d] = kCarrySkipLine;  // the line comes out cut (empty)
    }
    data = {};
    return Take::kNeedMore;
  }

  const size_t n = nl != nullptr ? static_cast<size_t>(nl - begin) : data.size();
  const size_t room = cap - s_.carry_len[d];
  bool over = false;
  if (n <= room) {
    append(begin, n);
  } else {
    append(begin, room);
    over = true;
    ++b_.counters_.carry_overflow;
  }
  if (nl != nullptr) {
    data = data.subspan(n + 1);
    line = strip_cr(carry_view());
    *cut = over;
    s_.carry_mode[d] = kCarryClearPending;
    return Take::kOk;
  }
  data = {};
  if (over) s_.carry_mode[d] = kCarrySkipLine;
  return Take::kNeedMore;
}

Take FlowContext::take_slow(Direction dir, std::span<const std::byte>& data, size_t n, std::span<const std::byte>& out) {
  const size_t d = index_of(dir);
  if (s_.carry_mode[d] & kCarryClearPending) b_.release_carry(s_, d);
  if (n > b_.cfg_.carry_bytes) n = b_.cfg_.carry_bytes;  // callers never ask for more; keep the arena safe
  if (s_.carry_len[d] == 0 && data.size() >= n) {
    out = data.first(n);
    data = data.subspan(n);
    return Take::kOk;
  }
  if (s_.carry[d] == kNoBuf) {
    s_.carry[d] = b_.alloc_carry();
    if (s_.carry[d] == kNoBuf) {
      ++b_.counters_.carry_pool_exhausted;
      return Take::kNoMemory;
    }
  }
  const size_t k = std::min(n - s_.carry_len[d], data.size());
  std::memcpy(b_.carry_data(s_.carry[d]) + s_.carry_len[d], data.data(), k);
  s_.carry_len[d] += static_cast<uint32_t>(k);
  data = data.subspan(k);
  if (s_.carry_len[d] == n) {
    out = std::span<const std::byte>(b_.carry_data(s_.carry[d]), n);
    s_.carry_mode[d] = kCarryClearPending;
    return Take::kOk;
  }
  return Take::kNeedMore;
}
// ---------------------------------------------------------------- RecordBuilder

uint32_t RecordBuilder::alloc_carry() {
  if (carry_free_.empty()) return kNoBuf;
  const uint32_t b = carry_free_.back();
  carry_free_.pop_back();
  ++carry_in_use_;
  return b;
}

void RecordBuilder::free_carry(uint32_t buf) {
  carry_free_.push_back(buf);  // capacity reserved for every buffer: never reallocates
  --carry_in_use_;
}

void RecordBuilder::release_carry(FlowSession& s, size_t d) {
  if (s.carry[d] != kNoBuf) free_carry(s.carry[d]);
  s.carry[d] = kNoBuf;
  s.carry_len[d] = 0;
  s.carry_mode[d] = 0;
}
}  // namespace spanfeed
