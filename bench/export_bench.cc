// Benchmark: records per second through the Kafka sink (librdkafka producer,
// batching with linger.ms=5, lz4, idempotent) into an in-process librdkafka
// mock cluster over loopback, timed until every delivery report is back; and
// the JSON-lines sink for comparison. Single exporter thread, as in spanfeed.
#include <benchmark/benchmark.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <string>

#include "spanfeed/export.h"

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

void BM_KafkaSink(benchmark::State& state) {
  const size_t total = static_cast<size_t>(state.range(0));
  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "2", err, sizeof(err));
  rd_kafka_t* holder = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(holder, 1);
  rd_kafka_mock_topic_create(mc, "bench", 8, 1);
  std::string target = std::string(rd_kafka_mock_cluster_bootstraps(mc)) + "/bench";
  auto batch = make_batch(256);
  for (auto _ : state) {
    std::string error;
    auto sink = spanfeed::make_kafka_sink(target, {{"compression.type", "lz4"}, {"linger.ms", "5"}},
                                          60, spanfeed::CapturePolicy::drop_and_count(), error);
    if (!sink) {
      state.SkipWithError(error.c_str());
      break;
    }
    spanfeed::SinkCounters c;
    for (size_t sent = 0; sent < total; sent += batch.records()) sink->write(batch, c, true);
    sink->close(c);  // flush: every delivery report is in
    if (c.delivered.load() != (total + 255) / 256 * 256) state.SkipWithError("not all delivered");
    state.counters["delivered"] = static_cast<double>(c.delivered.load());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * ((total + 255) / 256 * 256)));
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(holder);
}
BENCHMARK(BM_KafkaSink)->Arg(200000)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

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
