// Shared by the crafted-stream decoder benchmarks (db_bench.cc, kafka_bench.cc): one request / response pair
// fed again and again on one flow. Benchmark thread only; allocates while building streams and the builder.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "spanfeed/decoder.h"

namespace spanfeed::bench {

class CountingSink final : public RecordSink {
 public:
  void emit(const Record& /*r*/) override { ++records; }
  uint64_t records = 0;
};

// One request chunk and one response chunk per roundtrip.
struct Stream {
  std::string request;
  std::string response;
};

// Big-endian integers as wire bytes.
inline std::string be16(uint16_t v) { return std::string{static_cast<char>(v >> 8), static_cast<char>(v & 0xFF)}; }
inline std::string be32(uint32_t v) { return be16(static_cast<uint16_t>(v >> 16)) + be16(static_cast<uint16_t>(v)); }
inline std::string be64(uint64_t v) { return be32(static_cast<uint32_t>(v >> 32)) + be32(static_cast<uint32_t>(v)); }

// Decodes `s` once per iteration on one TCP flow to `port` (its protocol: `p`, whose decode errors are
// reported). Items/s: records per second; bytes/s: stream bytes per second.
inline void run_stream(benchmark::State& state, uint16_t port, Protocol p, const Stream& s) {
  DecodeConfig cfg;
  cfg.flow_capacity = 4;
  cfg.message_pool_size = 64;
  cfg.carry_buffer_count = 8;
  CountingSink sink;
  auto b = std::make_unique<RecordBuilder>(cfg, sink);
  Flow f{};
  f.key.addr_a.bytes[0] = 10;
  f.key.addr_b.bytes[0] = 11;
  f.key.port_a = 40000;
  f.key.port_b = port;
  f.key.proto = kProtoTcp;
  f.key.ip_version = 4;
  f.client_is_a = true;
  f.slot = 0;
  uint64_t ts = 1'700'000'000ull * kNsPerSec;
  b->on_open(f, ts);
  const std::span<const std::byte> req(reinterpret_cast<const std::byte*>(s.request.data()), s.request.size());
  const std::span<const std::byte> resp(reinterpret_cast<const std::byte*>(s.response.data()), s.response.size());
  for (auto _ : state) {
    ts += 1000;
    b->on_data(f, Direction::kClientToServer, req, ts);
    b->on_data(f, Direction::kServerToClient, resp, ts + 500);
  }
  b->on_close(f, CloseReason::kFin, ts);
  state.SetItemsProcessed(static_cast<int64_t>(sink.records));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (s.request.size() + s.response.size())));
  state.counters["records"] = static_cast<double>(sink.records);
  state.counters["decode_errors"] = static_cast<double>(b->counters().decode_errors[static_cast<size_t>(p)]);
}

}  // namespace spanfeed::bench
