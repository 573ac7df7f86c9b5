// Micro-benchmarks: Kafka roundtrips decoded per second per core (Produce v9 with record batches, Fetch v11
// returning 64 KiB of batches, Metadata v9) from crafted streams. Runs in the benchmark thread; allocates only
// while building the streams and the RecordBuilder (once).
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "spanfeed/decoder.h"

namespace spanfeed {
namespace {

class CountingSink final : public RecordSink {
 public:
  void emit(const Record& /*r*/) override { ++records; }
  uint64_t records = 0;
};

std::string be16(uint16_t v) { return std::string{static_cast<char>(v >> 8), static_cast<char>(v & 0xFF)}; }
std::string be32(uint32_t v) { return be16(static_cast<uint16_t>(v >> 16)) + be16(static_cast<uint16_t>(v)); }
std::string be64(uint64_t v) { return be32(static_cast<uint32_t>(v >> 32)) + be32(static_cast<uint32_t>(v)); }
std::string cstr(const std::string& s) { return std::string(1, static_cast<char>(s.size() + 1)) + s; }
std::string varint(uint32_t v) {
  std::string s;
  for (; v >= 0x80; v >>= 7) s += static_cast<char>((v & 0x7f) | 0x80);
  return s + static_cast<char>(v);
}
std::string frame(const std::string& b) { return be32(static_cast<uint32_t>(b.size())) + b; }
std::string request(uint16_t api, uint16_t ver, bool flex, const std::string& body) {
  return frame(be16(api) + be16(ver) + be32(7) + be16(11) + "bench-kcat1" + (flex ? std::string(1, '\0') : "") + body);
}
std::string response(bool flex, const std::string& body) {
  return frame(be32(7) + (flex ? std::string(1, '\0') : "") + body);
}
std::string batch(uint32_t count, size_t bytes) {
  const std::string rest = be32(0) + '\x02' + be32(0) + be16(0) + be32(count - 1) + be64(0) + be64(0) +
                           be64(~0ull) + be16(0xFFFF) + be32(0xFFFFFFFF) + be32(count) + std::string(bytes, 'r');
  return be64(0) + be32(static_cast<uint32_t>(rest.size())) + rest;
}

struct Stream {
  std::string request;
  std::string response;
};

Stream produce_stream() {
  const std::string records = batch(10, 1000);
  const std::string part = be32(0) + varint(static_cast<uint32_t>(records.size() + 1)) + records + '\0';
  Stream s;
  s.request = request(0, 9, true, std::string(1, '\0') + be16(0xFFFF) + be32(30000) + varint(2) + cstr("orders") +
                                      varint(2) + part + '\0' + '\0');
  const std::string rpart = be32(0) + be16(0) + be64(35) + be64(~0ull) + be64(0) + varint(1) + '\0' + '\0';
  s.response = response(true, varint(2) + cstr("orders") + varint(2) + rpart + '\0' + be32(0) + '\0');
  return s;
}

Stream fetch_stream() {
  std::string records;
  for (int i = 0; i < 16; ++i) records += batch(50, 4000);
  const std::string part = be32(0) + be32(0) + be64(100) + be64(0) + be32(1 << 20);
  Stream s;
  s.request = request(1, 11, false, be32(0xFFFFFFFF) + be32(500) + be32(1) + be32(52428800) + '\0' + be32(0) +
                                        be32(0xFFFFFFFF) + be32(1) + be16(6) + "orders" + be32(1) + part + be32(0) +
                                        be16(0));
  const std::string rpart = be32(0) + be16(0) + be64(900) + be64(900) + be64(0) + be32(0) + be32(0xFFFFFFFF) +
                            be32(static_cast<uint32_t>(records.size())) + records;
  s.response = response(false, be32(0) + be16(0) + be32(1) + be32(1) + be16(6) + "orders" + be32(1) + rpart);
  return s;
}

Stream metadata_stream() {
  Stream s;
  s.request = request(3, 9, true, varint(3) + cstr("orders") + '\0' + cstr("events") + '\0' + '\x01' + '\0' + '\0' + '\0');
  std::string topics = varint(3);
  for (const char* t : {"orders", "events"}) {
    topics += be16(0) + cstr(t) + '\0' + varint(4);
    for (uint32_t p = 0; p < 3; ++p) {
      topics += be16(0) + be32(p) + be32(1) + be32(0) + varint(2) + be32(1) + varint(2) + be32(1) + varint(1) + '\0';
    }
    topics += be32(0) + '\0';
  }
  s.response = response(true, be32(0) + varint(2) + be32(1) + cstr("broker-1") + be32(9092) + '\0' + '\0' +
                                   cstr("cluster") + be32(1) + topics + be32(0) + '\0');
  return s;
}

void run(benchmark::State& state, const Stream& s) {
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
  f.key.port_b = 9092;
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
  state.counters["decode_errors"] = static_cast<double>(b->counters().decode_errors[static_cast<size_t>(Protocol::kKafka)]);
}

void BM_KafkaProduceV9(benchmark::State& st) { run(st, produce_stream()); }
void BM_KafkaFetchV11_64KiB(benchmark::State& st) { run(st, fetch_stream()); }
void BM_KafkaMetadataV9(benchmark::State& st) { run(st, metadata_stream()); }
BENCHMARK(BM_KafkaProduceV9);
BENCHMARK(BM_KafkaFetchV11_64KiB);
BENCHMARK(BM_KafkaMetadataV9);

}  // namespace
}  // namespace spanfeed

BENCHMARK_MAIN();
