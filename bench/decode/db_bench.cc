// Micro-benchmarks: MySQL / PostgreSQL / MongoDB roundtrips decoded per second per core, from crafted streams.
// Runs in the benchmark thread; allocates only while building the streams and the RecordBuilder (once).
#include <benchmark/benchmark.h>

#include <cstring>
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

std::string le16(uint16_t v) { return std::string{static_cast<char>(v & 0xFF), static_cast<char>(v >> 8)}; }
std::string le24(uint32_t v) {
  return std::string{static_cast<char>(v & 0xFF), static_cast<char>((v >> 8) & 0xFF), static_cast<char>(v >> 16)};
}
std::string le32(uint32_t v) { return le16(static_cast<uint16_t>(v)) + le16(static_cast<uint16_t>(v >> 16)); }
std::string be32(uint32_t v) {
  return std::string{static_cast<char>(v >> 24), static_cast<char>((v >> 16) & 0xFF), static_cast<char>((v >> 8) & 0xFF),
                     static_cast<char>(v & 0xFF)};
}

// One request chunk and one response chunk per roundtrip, fed again and again on one flow.
struct Stream {
  std::string request;
  std::string response;
};

Stream mysql_stream() {
  auto pkt = [](uint8_t seq, const std::string& p) {
    return le24(static_cast<uint32_t>(p.size())) + std::string(1, static_cast<char>(seq)) + p;
  };
  Stream s;
  s.request = pkt(0, "\x03SELECT id, name, email FROM users WHERE id = 12345 AND status IN ('a', 'b') LIMIT 10");
  uint8_t q = 1;
  s.response = pkt(q++, "\x03");
  for (int c = 0; c < 3; ++c)
    s.response += pkt(q++, std::string("\x03" "def\x02" "db\x01t\x01t\x02" "c") + static_cast<char>('0' + c) +
                                 "\x02" "c" + static_cast<char>('0' + c) + "\x0c" + le16(33) + le32(255) + "\xfd" +
                                 le16(0) + std::string(3, '\0'));
  s.response += pkt(q++, std::string("\xfe\x00\x00\x02\x00", 5));
  for (int r = 0; r < 10; ++r) s.response += pkt(q++, "\x05" "12345\x05" "alice\x0f" "alice@example.c");
  s.response += pkt(q++, std::string("\xfe\x00\x00\x02\x00", 5));
  return s;
}

Stream pgsql_stream() {
  auto msg = [](char t, const std::string& b) { return std::string(1, t) + be32(static_cast<uint32_t>(b.size() + 4)) + b; };
  Stream s;
  s.request = msg('Q', std::string("SELECT id, name, email FROM users WHERE id = 12345 AND status IN ('a', 'b') LIMIT 10") +
                           '\0');
  std::string rd = std::string("\x00\x03", 2);
  for (int c = 0; c < 3; ++c) rd += "c" + std::string(1, static_cast<char>('0' + c)) + '\0' + std::string(18, '\0');
  s.response = msg('T', rd);
  for (int r = 0; r < 10; ++r)
    s.response += msg('D', std::string("\x00\x03", 2) + be32(5) + "12345" + be32(5) + "alice" + be32(15) +
                               "alice@example.c");
  s.response += msg('C', std::string("SELECT 10") + '\0') + msg('Z', "I");
  return s;
}

Stream mongo_stream() {
  auto str = [](const std::string& k, const std::string& v) {
    return '\x02' + k + '\0' + le32(static_cast<uint32_t>(v.size() + 1)) + v + '\0';
  };
  auto doc = [](const std::string& body) { return le32(static_cast<uint32_t>(body.size() + 5)) + body + '\0'; };
  auto wire = [](uint32_t id, uint32_t to, const std::string& body) {
    return le32(static_cast<uint32_t>(body.size() + 16)) + le32(id) + le32(to) + le32(2013) + body;
  };
  Stream s;
  s.request = wire(7, 0, le32(0) + '\0' + doc(str("find", "users") + str("$db", "shop") + str("filter", "x")));
  std::string batch;
  for (int i = 0; i < 10; ++i) batch += '\x03' + std::to_string(i) + '\0' + doc(str("name", "alice"));
  double one = 1;
  std::string ok(8, '\0');
  std::memcpy(ok.data(), &one, 8);
  const std::string cursor = doc('\x04' + std::string("firstBatch") + '\0' + doc(batch) + str("ns", "shop.users"));
  s.response = wire(8, 7, le32(0) + '\0' + doc('\x03' + std::string("cursor") + '\0' + cursor + '\x01' + "ok" + '\0' + ok));
  return s;
}

void run(benchmark::State& state, uint16_t port, const Stream& s) {
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
}

void BM_MysqlQueryResultSet(benchmark::State& st) { run(st, 3306, mysql_stream()); }
void BM_PgsqlSimpleQuery(benchmark::State& st) { run(st, 5432, pgsql_stream()); }
void BM_MongoOpMsgFind(benchmark::State& st) { run(st, 27017, mongo_stream()); }
BENCHMARK(BM_MysqlQueryResultSet);
BENCHMARK(BM_PgsqlSimpleQuery);
BENCHMARK(BM_MongoOpMsgFind);

}  // namespace
}  // namespace spanfeed

BENCHMARK_MAIN();
