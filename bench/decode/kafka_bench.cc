// Micro-benchmarks: Kafka roundtrips decoded per second per core (Produce v9 with record batches, Fetch v11
// returning 64 KiB of batches, Metadata v9) from crafted streams. Runs in the benchmark thread; allocates only
// while building the streams and the RecordBuilder (once).
#include <string>

#include "stream_bench.h"

namespace spanfeed {
namespace {

using bench::be16;
using bench::be32;
using bench::be64;
using bench::Stream;

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

void BM_KafkaProduceV9(benchmark::State& st) { bench::run_stream(st, 9092, Protocol::kKafka, produce_stream()); }
void BM_KafkaFetchV11_64KiB(benchmark::State& st) { bench::run_stream(st, 9092, Protocol::kKafka, fetch_stream()); }
void BM_KafkaMetadataV9(benchmark::State& st) { bench::run_stream(st, 9092, Protocol::kKafka, metadata_stream()); }
BENCHMARK(BM_KafkaProduceV9);
BENCHMARK(BM_KafkaFetchV11_64KiB);
BENCHMARK(BM_KafkaMetadataV9);

}  // namespace
}  // namespace spanfeed

BENCHMARK_MAIN();
