// Per-flow session encodings shared by the RecordBuilder's files (record_builder.cc, carry.cc, detect.cc,
// matcher.cc): detection states, carry modes, the sniff prefix kept in FlowSession::state. Internal to
// src/decode/; any thread (constants and a cast); no allocation.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "spanfeed/decoder.h"

namespace spanfeed::builder {

// FlowSession::detect_state
constexpr uint8_t kDetectNone = 0;       // no data yet, no port match
constexpr uint8_t kDetectPort = 1;       // port matched at open, no data yet
constexpr uint8_t kDetectSniffing = 2;   // data seen, no decoder yet
constexpr uint8_t kDetectActive = 3;     // decoder running
constexpr uint8_t kDetectIgnored = 4;    // unknown / no decoder: bytes are not decoded

// FlowSession::carry_mode bits
constexpr uint8_t kCarryClearPending = 1;  // carry content was handed out: empty it on the next call
constexpr uint8_t kCarrySkipLine = 2;      // line over the cap: carry holds its cut prefix, skip to '\n'

constexpr uint32_t kNoBuf = UINT32_MAX;

// While a flow is sniffed (no decoder yet), FlowSession::state keeps each
// direction's first bytes when they arrive in chunks too short to classify
// ("GE" then "T / HTTP/1.1"); a decoder that takes the flow gets them first.
constexpr size_t kSniffPrefixBytes = 120;
struct SniffPrefix {
  std::array<uint8_t, 2> len;
  std::array<uint8_t, 6> pad;
  std::array<std::array<std::byte, kSniffPrefixBytes>, 2> bytes;
};
static_assert(sizeof(SniffPrefix) <= kDecoderStateBytes);
inline SniffPrefix& sniff_prefix(FlowSession& s) { return *reinterpret_cast<SniffPrefix*>(s.state.data()); }

}  // namespace spanfeed::builder
