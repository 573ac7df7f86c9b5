// Micro-benchmarks: decoded roundtrips per second per core, replaying the reassembled streams of the test captures.
// Runs in the benchmark thread; allocates only while loading a capture (events are copied once, then replayed).
#include <benchmark/benchmark.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "spanfeed/decoder.h"
#include "decode/pcap_replay.h"
#include "recorded.h"

#ifndef SPANFEED_SOURCE_ROOT
#error "SPANFEED_SOURCE_ROOT must be defined by the build"
#endif

namespace spanfeed {
namespace {

using bench::Event;
using bench::recorded;
using bench::Recorded;

struct CountingSink final : RecordSink {
  void emit(const Record& r) override { bytes += r.request != nullptr ? r.request->bytes : 0; ++records; }
  uint64_t records = 0;
  uint64_t bytes = 0;
};

// Encodes every record into one reused buffer: the cost the exporters will see.
struct EncodingSink final : RecordSink {
  void emit(const Record& r) override {
    line.clear();
    append_json_line(r, line);
    bytes += line.size();
    ++records;
  }
  std::string line;
  uint64_t records = 0;
  uint64_t bytes = 0;
};

template <typename Sink>
void replay(benchmark::State& state, const std::string& rel) {
  const Recorded& r = recorded(rel);
  Sink sink;
  DecodeConfig cfg = offline_decode_config();
  auto b = std::make_unique<RecordBuilder>(cfg, sink);
  uint64_t shift = 0;
  uint64_t payload = 0;
  for (auto _ : state) {
    payload += bench::replay_into(*b, r, shift);
    shift += r.span_ns;
  }
  state.SetItemsProcessed(static_cast<int64_t>(sink.records));  // items/s = roundtrips per second
  state.SetBytesProcessed(static_cast<int64_t>(payload));
  state.counters["records_per_pass"] = static_cast<double>(sink.records) / static_cast<double>(state.iterations());
  if (!b->counters().ledger_balanced()) state.SkipWithError("decode ledger does not balance");
}

// A capture kept gzip-compressed in tests/data (grpc/grpc.pcap.gz): inflated once to a temporary file.
std::string inflated(const std::string& rel) {
  const std::string out = "/tmp/spanfeed-bench-" + std::to_string(getpid()) + ".pcap";
  gzFile in = gzopen((std::string(SPANFEED_SOURCE_ROOT) + "/tests/data/pcaps/" + rel).c_str(), "rb");
  if (in == nullptr) return out;
  std::ofstream o(out, std::ios::binary);
  char buf[65536];
  int n;
  while ((n = gzread(in, buf, sizeof(buf))) > 0) o.write(buf, n);
  gzclose(in);
  return out;
}

void BM_Http2_h2c(benchmark::State& s) { replay<CountingSink>(s, "http2/h2c.pcap"); }
void BM_Grpc(benchmark::State& s) {
  static const std::string path = inflated("grpc/grpc.pcap.gz");
  replay<CountingSink>(s, path);
}
void BM_Grpc_json(benchmark::State& s) {
  static const std::string path = inflated("grpc/grpc.pcap.gz");
  replay<EncodingSink>(s, path);
}

void BM_Http_sw8(benchmark::State& s) { replay<CountingSink>(s, "http/sw8.pcap"); }
void BM_Http_sw8_json(benchmark::State& s) { replay<EncodingSink>(s, "http/sw8.pcap"); }
void BM_Http_mixed(benchmark::State& s) { replay<CountingSink>(s, "http/http-mixed.pcap"); }
void BM_Redis(benchmark::State& s) { replay<CountingSink>(s, "redis/redis.pcap"); }
void BM_Redis_json(benchmark::State& s) { replay<EncodingSink>(s, "redis/redis.pcap"); }
void BM_Dns_udp(benchmark::State& s) { replay<CountingSink>(s, "dns/a-and-ns.pcap"); }
void BM_Dns_tcp(benchmark::State& s) { replay<CountingSink>(s, "dns/nxdomain.pcap"); }
void BM_Dns_json(benchmark::State& s) { replay<EncodingSink>(s, "dns/nxdomain.pcap"); }
void BM_Memcached(benchmark::State& s) { replay<CountingSink>(s, "memcached/memcached-userdata.pcap"); }
void BM_Memcached_json(benchmark::State& s) { replay<EncodingSink>(s, "memcached/memcached-userdata.pcap"); }
void BM_Memcached_binary(benchmark::State& s) { replay<CountingSink>(s, "memcached/memcached-binary.pcap"); }
void BM_Memcached_udp(benchmark::State& s) { replay<CountingSink>(s, "memcached/memcached-udp.pcap"); }
// TLS: 37 connections of the corpus (TLS 1.2 / 1.3, certificates, resumptions, alerts): 2 records per completed one.
void BM_Tls(benchmark::State& s) { replay<CountingSink>(s, "tls/corpus.pcap"); }
void BM_Tls_json(benchmark::State& s) { replay<EncodingSink>(s, "tls/corpus.pcap"); }
void BM_Amqp(benchmark::State& s) { replay<CountingSink>(s, "amqp/amqp-confirms.pcap"); }
void BM_Amqp_json(benchmark::State& s) { replay<EncodingSink>(s, "amqp/amqp-confirms.pcap"); }
void BM_Mqtt(benchmark::State& s) { replay<CountingSink>(s, "mqtt/mqtt-mixed.pcap"); }
void BM_Mqtt_json(benchmark::State& s) { replay<EncodingSink>(s, "mqtt/mqtt-mixed.pcap"); }

BENCHMARK(BM_Http_sw8);
BENCHMARK(BM_Http_sw8_json);
BENCHMARK(BM_Http_mixed);
BENCHMARK(BM_Redis);
BENCHMARK(BM_Redis_json);
BENCHMARK(BM_Dns_udp);
BENCHMARK(BM_Dns_tcp);
BENCHMARK(BM_Dns_json);
BENCHMARK(BM_Memcached);
BENCHMARK(BM_Memcached_json);
BENCHMARK(BM_Memcached_binary);
BENCHMARK(BM_Memcached_udp);
BENCHMARK(BM_Tls);
BENCHMARK(BM_Tls_json);
BENCHMARK(BM_Amqp);
BENCHMARK(BM_Amqp_json);
BENCHMARK(BM_Mqtt);
BENCHMARK(BM_Mqtt_json);
BENCHMARK(BM_Http2_h2c);
BENCHMARK(BM_Grpc);
BENCHMARK(BM_Grpc_json);

}  // namespace
}  // namespace spanfeed

BENCHMARK_MAIN();
