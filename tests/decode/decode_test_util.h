// Test helpers for decoders: drives a RecordBuilder with crafted flows/chunks and parses the records it emits.
// Runs in the test thread; allocates freely (tests only).
#pragma once

#include <gtest/gtest.h>

#include <cctype>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "spanfeed/decoder.h"
#include "decode/pcap_replay.h"

namespace spanfeed::dectest {

inline constexpr uint64_t kMs = 1'000'000;
inline constexpr uint64_t kT0 = 1'700'000'000ull * kNsPerSec;  // 2023-11-14T22:13:20Z

inline std::span<const std::byte> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

inline IpAddr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  IpAddr ip{};
  ip.bytes[0] = a;
  ip.bytes[1] = b;
  ip.bytes[2] = c;
  ip.bytes[3] = d;
  return ip;
}

inline DecodeConfig small_config() {
  DecodeConfig c;
  c.flow_capacity = 16;
  c.message_pool_size = 256;
  c.carry_buffer_count = 16;
  c.carry_bytes = 4096;
  return c;
}

// A RecordBuilder plus one or more fake flows, fed directly (no Reassembler):
// exact control over chunking, gaps, FINs and time.
class Harness {
 public:
  explicit Harness(DecodeConfig cfg = small_config()) : cfg_(std::move(cfg)) {
    builder_ = std::make_unique<RecordBuilder>(cfg_, sink_);
  }

  // Flow `slot`: client 10.0.0.1:client_port -> server 10.0.0.2:server_port.
  Flow& open(uint16_t server_port, bool udp = false, uint64_t ts = kT0, uint32_t slot = 0,
             uint16_t client_port = 40000) {
    Flow& f = flows_[slot];
    f = Flow{};
    f.key = FlowKey{};
    f.key.addr_a = v4(10, 0, 0, 1);
    f.key.addr_b = v4(10, 0, 0, 2);
    f.key.port_a = client_port;
    f.key.port_b = server_port;
    f.key.proto = udp ? kProtoUdp : kProtoTcp;
    f.key.ip_version = 4;
    f.client_is_a = true;
    f.slot = slot;
    f.serial = ++serial_;
    builder_->on_open(f, ts);
    return f;
  }
  void c2s(std::string_view s, uint64_t ts, uint32_t slot = 0) {
    builder_->on_data(flows_[slot], Direction::kClientToServer, bytes_of(s), ts);
  }
  void s2c(std::string_view s, uint64_t ts, uint32_t slot = 0) {
    builder_->on_data(flows_[slot], Direction::kServerToClient, bytes_of(s), ts);
  }
  // With the ACK of the chunk's packet: `acked` bytes of the other direction's stream (on_data's peer_acked).
  void c2s_acked(std::string_view s, uint64_t ts, uint64_t acked) {
    builder_->on_data(flows_[0], Direction::kClientToServer, bytes_of(s), ts, acked);
  }
  void s2c_acked(std::string_view s, uint64_t ts, uint64_t acked) {
    builder_->on_data(flows_[0], Direction::kServerToClient, bytes_of(s), ts, acked);
  }
  // Feeds `s` in pieces of `step` bytes.
  void dribble(Direction d, std::string_view s, size_t step, uint64_t ts, uint32_t slot = 0) {
    for (size_t i = 0; i < s.size(); i += step) builder_->on_data(flows_[slot], d, bytes_of(s.substr(i, step)), ts);
  }
  void gap(Direction d, uint64_t n, uint64_t ts, uint32_t slot = 0) {
    builder_->on_gap(flows_[slot], d, n, GapReason::kAckPastHole, ts);
  }
  void fin(Direction d, uint64_t ts, uint32_t slot = 0) { builder_->on_fin(flows_[slot], d, ts); }
  void advance_time(uint64_t now) { builder_->advance_time(now); }
  void close(uint64_t ts, uint32_t slot = 0) { builder_->on_close(flows_[slot], CloseReason::kFin, ts); }

  size_t size() const { return sink_.lines.size(); }
  nlohmann::json rec(size_t i) const { return nlohmann::json::parse(sink_.lines.at(i)); }
  const std::vector<std::string>& lines() const { return sink_.lines; }
  RecordBuilder& builder() { return *builder_; }
  const DecodeCounters& counters() const { return builder_->counters(); }

  void expect_ledger() const {
    const DecodeCounters& c = builder_->counters();
    EXPECT_TRUE(c.ledger_balanced()) << "requests=" << c.sum(c.requests) << " matched=" << c.sum(c.matched)
                                     << " timeouts=" << c.timeouts_total() << " pending=" << c.pending_now
                                     << " unmatched=" << c.unmatched << " no_reply=" << c.sum(c.no_reply)
                                     << " responses=" << c.sum(c.responses)
                                     << " of_evicted=" << c.responses_of_evicted
                                     << " emitted=" << c.records_emitted;
    EXPECT_EQ(c.records_emitted, sink_.lines.size());
    EXPECT_EQ(c.flows_opened, c.detect_total() + c.flows_undetected_now);
    for (const std::string& l : sink_.lines) EXPECT_TRUE(nlohmann::json::accept(l)) << l;
  }

 private:
  DecodeConfig cfg_;
  CollectingSink sink_;
  std::unique_ptr<RecordBuilder> builder_;
  Flow flows_[16];
  uint64_t serial_ = 0;
};

// A gtest parameter name from a capture name: anything not [A-Za-z0-9] becomes '_'.
inline std::string test_name(std::string n) {
  for (char& ch : n) {
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return n;
}

inline std::vector<std::string> flags_of(const nlohmann::json& r) {
  std::vector<std::string> v;
  for (const auto& f : r["flags"]) v.push_back(f.get<std::string>());
  return v;
}

}  // namespace spanfeed::dectest
