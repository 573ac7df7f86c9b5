// Benchmark: records per second through the Kafka sink (librdkafka producer,
// batching with linger.ms=5, lz4, idempotent) into an in-process librdkafka
// mock cluster over loopback, timed until every delivery report is back (the
// sink set up as an offline run sets it up: lossless, waiting on a full queue); and
// the JSON-lines sink for comparison. BM_KafkaSink/T runs T sinks (T exporter
// threads, one producer each, as export.threads gives) into one mock cluster.
#include <benchmark/benchmark.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "export/export.h"

namespace {

// A typical record (~400 bytes of JSON), repeated with varying connection keys.
const char* kRecord =
    "{\"ts\":\"2026-11-22T10:00:00.123456Z\",\"id\":\"0100000000000001\",\"protocol\":\"mysql\","
    "\"client\":{\"ip\":\"10.0.0.2\",\"port\":51234},\"server\":{\"ip\":\"10.0.0.1\",\"port\":3306},"
    "\"latency_us\":812,\"status\":\"ok\",\"request\":{\"bytes\":39,\"command\":\"COM_QUERY\","
    "\"query\":\"select * from t where id = 7\",\"normalized\":\"select * from t where id = ?\"},"
    "\"response\":{\"bytes\":92,\"rows\":1,\"error_code\":null,\"error_message\":null},"
    "\"tags\":[],\"flags\":[]}\n";

spanfeed::RecordBatch make_batch(size_t n) {
  spanfeed::RecordBatch b;
  for (size_t i = 0; i < n; ++i) {
    b.data += kRecord;
    b.refs.push_back({static_cast<uint32_t>(b.data.size()), static_cast<uint32_t>(i * 2654435761u), 5});
  }
  return b;
}

// kafka.* properties to try on top of the sink's defaults, from
// SPANFEED_BENCH_KAFKA_PROPS="k=v,k=v" (tuning runs; empty: the defaults).
std::vector<std::pair<std::string, std::string>> extra_props() {
  std::vector<std::pair<std::string, std::string>> out;
  const char* env = std::getenv("SPANFEED_BENCH_KAFKA_PROPS");
  std::string all = env != nullptr ? env : "";
  size_t at = 0;
  while (at < all.size()) {
    size_t end = all.find(',', at);
    if (end == std::string::npos) end = all.size();
    const std::string kv = all.substr(at, end - at);
    const size_t eq = kv.find('=');
    if (eq != std::string::npos) out.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    at = end + 1;
  }
  return out;
}

// Args: total records, exporter threads (one producer each). The default
// sink properties: lz4, linger.ms 5, enable.idempotence true.
void BM_KafkaSink(benchmark::State& state) {
  const size_t total = static_cast<size_t>(state.range(0));
  const unsigned threads = static_cast<unsigned>(state.range(1));
  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "2", err, sizeof(err));
  rd_kafka_t* holder = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(holder, 1);
  rd_kafka_mock_topic_create(mc, "bench", 8, 1);
  std::string target = std::string(rd_kafka_mock_cluster_bootstraps(mc)) + "/bench";
  auto batch = make_batch(256);
  const size_t per_thread = (total / threads + 255) / 256 * 256;
  for (auto _ : state) {
    std::vector<std::unique_ptr<spanfeed::Sink>> sinks;
    std::vector<std::unique_ptr<spanfeed::SinkCounters>> counters;
    std::string error;
    for (unsigned t = 0; t < threads; ++t) {
      auto sink = spanfeed::make_kafka_sink(target, extra_props(), 60, spanfeed::CapturePolicy::lossless(), error);
      if (!sink) break;
      sinks.push_back(std::move(sink));
      counters.push_back(std::make_unique<spanfeed::SinkCounters>());
    }
    if (sinks.size() != threads) {
      state.SkipWithError(error.c_str());
      break;
    }
    std::vector<std::thread> run;
    for (unsigned t = 0; t < threads; ++t) {
      run.emplace_back([&, t] {
        for (size_t sent = 0; sent < per_thread; sent += batch.records()) sinks[t]->write(batch, *counters[t], true);
        sinks[t]->close(*counters[t]);  // flush: every delivery report is in
      });
    }
    for (auto& th : run) th.join();
    uint64_t delivered = 0;
    for (auto& c : counters) delivered += c->delivered.get();
    if (delivered != per_thread * threads) state.SkipWithError("not all delivered");
    state.counters["delivered"] = static_cast<double>(delivered);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * per_thread * threads));
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(holder);
}
BENCHMARK(BM_KafkaSink)
    ->Args({400000, 1})
    ->Args({400000, 2})
    ->Args({400000, 4})
    ->Args({1200000, 1})  // with 400000/1: the cost per record past warm-up (callgrind difference)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_JsonlSink(benchmark::State& state) {
  std::string error;
  auto sink = spanfeed::make_jsonl_sink("/dev/null", 0, 0, error);
  auto batch = make_batch(256);
  spanfeed::SinkCounters c;
  for (auto _ : state) sink->write(batch, c, true);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch.records()));
}
BENCHMARK(BM_JsonlSink);

}  // namespace

BENCHMARK_MAIN();
