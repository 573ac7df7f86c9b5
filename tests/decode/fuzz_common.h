// Shared driver of the decoder fuzz targets: interprets the input as a script of flow events for a RecordBuilder.
// Runs in the fuzzer / test thread; the builder is created once (allocates once), inputs reuse it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "spanfeed/decoder.h"

namespace spanfeed::fuzz {

// Script format (all lengths from the input itself, so every byte string is valid):
//   byte 0: bit0 = UDP flow, bit1 = redaction off
//   then ops: op byte, low 3 bits:
//     0,1: client->server data, length = next byte + 1 (and bit 3 of op: x16)
//     2,3: server->client data, same length rule
//     4:   gap in direction bit 3, missing = next byte * (1 + op >> 4)
//     5:   FIN in direction bit 3
//     6:   advance_time by (op >> 3) seconds
//     7:   close the flow and open the other slot
// Time moves 1 ms per op. At the end every flow is closed and invariants are
// checked: no message or carry buffer left in use, the ledger balances, every
// record is valid JSON. A failed check aborts (the fuzzer reports it).
class ValidatingSink final : public JsonLinesSink {
 public:
  void write_line(std::string_view line) override {
    ++lines;
    if (!nlohmann::json::accept(line)) {
      std::fprintf(stderr, "invalid JSON record: %.*s\n", static_cast<int>(line.size()), line.data());
      std::abort();
    }
  }
  uint64_t lines = 0;
};

inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant failed: %s\n", what);
    std::abort();
  }
}

inline int run_script(uint16_t port, const uint8_t* data, size_t size) {
  static ValidatingSink sink;
  static std::unique_ptr<RecordBuilder> builders[2];  // [redact on, redact off]
  if (size == 0) return 0;
  const bool udp = data[0] & 1;
  const size_t which = (data[0] >> 1) & 1;
  if (!builders[which]) {
    DecodeConfig cfg;
    cfg.flow_capacity = 2;
    cfg.message_pool_size = 64;
    cfg.max_pending_per_flow = 8;
    cfg.carry_bytes = 512;  // small: lines over the cap are common in fuzz input
    cfg.carry_buffer_count = 3;
    cfg.redact_secrets = which == 0;
    builders[which] = std::make_unique<RecordBuilder>(cfg, sink);
  }
  RecordBuilder& b = *builders[which];
  Flow flows[2];
  for (uint32_t i = 0; i < 2; ++i) {
    Flow& f = flows[i];
    f.key = FlowKey{};
    f.key.addr_a.bytes[0] = 10;
    f.key.addr_a.bytes[3] = 1;
    f.key.addr_b.bytes[0] = 10;
    f.key.addr_b.bytes[3] = 2;
    f.key.port_a = static_cast<uint16_t>(40000 + i);
    f.key.port_b = port;
    f.key.proto = udp ? kProtoUdp : kProtoTcp;
    f.key.ip_version = 4;
    f.client_is_a = true;
    f.slot = i;
  }
  uint64_t now = 1'700'000'000ull * kNsPerSec;
  uint32_t cur = 0;
  bool open[2] = {true, false};
  b.on_open(flows[0], now);
  size_t i = 1;
  while (i < size) {
    const uint8_t op = data[i++];
    now += 1'000'000;
    const Direction dir = (op & 8) ? Direction::kServerToClient : Direction::kClientToServer;
    switch (op & 7) {
      case 0: case 1: case 2: case 3: {
        if (i >= size) break;
        size_t len = (static_cast<size_t>(data[i++]) + 1) * ((op & 8) ? 16 : 1);
        if (len > size - i) len = size - i;
        if (len == 0) break;
        const Direction d = (op & 7) < 2 ? Direction::kClientToServer : Direction::kServerToClient;
        b.on_data(flows[cur], d, {reinterpret_cast<const std::byte*>(data + i), len}, now);
        i += len;
        break;
      }
      case 4: {
        if (i >= size) break;
        const uint64_t missing = static_cast<uint64_t>(data[i++]) * (1 + (op >> 4));
        if (missing > 0) b.on_gap(flows[cur], dir, missing, GapReason::kAckPastHole, now);
        break;
      }
      case 5: b.on_fin(flows[cur], dir, now); break;
      case 6:
        now += static_cast<uint64_t>(op >> 3) * kNsPerSec;
        b.advance_time(now);
        break;
      case 7:
        b.on_close(flows[cur], CloseReason::kFin, now);
        open[cur] = false;
        cur ^= 1;
        if (!open[cur]) {
          b.on_open(flows[cur], now);
          open[cur] = true;
        }
        break;
    }
  }
  for (uint32_t k = 0; k < 2; ++k) {
    if (open[k]) b.on_close(flows[k], CloseReason::kShutdown, now);
  }
  b.finish(now);
  const DecodeCounters& c = b.counters();
  check(b.messages_in_use() == 0, "messages left in use after close");
  check(b.carry_buffers_in_use() == 0, "carry buffers left in use after close");
  check(c.pending_now == 0, "pending requests after close");
  check(c.ledger_balanced(), "decode ledger");
  check(c.flows_undetected_now == 0, "flows left undetected after close");
  check(c.flows_opened == c.detect_total(), "detection ledger");
  return 0;
}

// Builds a script from (direction, bytes) chunks: seeds for corpora and tests.
struct Chunk {
  bool s2c;
  std::string bytes;
};
inline std::string make_script(bool udp, const std::vector<Chunk>& chunks) {
  std::string s(1, static_cast<char>(udp ? 1 : 0));
  for (const Chunk& c : chunks) {
    for (size_t off = 0; off < c.bytes.size(); off += 256) {
      const size_t n = c.bytes.size() - off < 256 ? c.bytes.size() - off : 256;
      s.push_back(static_cast<char>(c.s2c ? 2 : 0));
      s.push_back(static_cast<char>(n - 1));
      s.append(c.bytes, off, n);
    }
  }
  return s;
}

}  // namespace spanfeed::fuzz
