// RED aggregation cost per record on a worker: HTTP with a few hundred endpoints, SQL with
// fingerprints under the top N, and the worst case (a new path every record, the table full,
// one fold per record). Bench only; single thread.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "red/aggregator.h"

namespace {

using namespace spanfeed;

struct Rec {
  Message req, resp;
  Record r;
  Rec() {
    r.request = &req;
    r.response = &resp;
    r.ip_version = 4;
    r.server.ip.bytes[0] = 10;
    r.has_latency = true;
  }
  Rec(const Rec& o) : req(o.req), resp(o.resp), r(o.r) {
    r.request = &req;
    r.response = &resp;
  }
};

std::vector<Rec> http_records(size_t n, size_t endpoints, size_t servers) {
  std::vector<Rec> out(n);
  for (size_t i = 0; i < n; ++i) {
    Rec& x = out[i];
    x.r.protocol = Protocol::kHttp;
    x.r.status = i % 50 == 0 ? RecordStatus::kError : RecordStatus::kOk;
    x.r.server.ip.bytes[3] = static_cast<uint8_t>(i % servers);
    x.r.server.port = 8080;
    x.r.latency_us = 100 + (i * 7919) % 200000;
    x.req.bytes = 300;
    x.resp.bytes = 2000;
    x.req.fields.add_string("method", i % 3 ? "GET" : "POST");
    const std::string path = "/api/v1/resource" + std::to_string(i % endpoints) + "/" + std::to_string(i) + "/items";
    x.req.fields.add_string("path", path);
    x.resp.fields.add_uint("status_code", 200);
  }
  return out;
}

std::vector<Rec> sql_records(size_t n, size_t statements) {
  std::vector<Rec> out(n);
  for (size_t i = 0; i < n; ++i) {
    Rec& x = out[i];
    x.r.protocol = Protocol::kMysql;
    x.r.server.port = 3306;
    x.r.latency_us = 300 + i % 5000;
    x.req.fields.add_string("command", "COM_QUERY");
    x.req.fields.add_string("normalized", "select a, b, c from table" + std::to_string(i % statements) +
                                              " where id = ? and state in (?, ?, ?)");
  }
  return out;
}

void run(benchmark::State& state, std::vector<Rec>& recs, uint32_t cap) {
  RedConfig cfg;
  cfg.max_series = cap;
  red::Shared sh(cfg);
  red::Aggregator a(sh, 42);
  size_t i = 0;
  for (auto _ : state) {
    a.add(recs[i].r);
    if (++i == recs.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["series"] = static_cast<double>(a.series());
}

void BM_RedHttp300Endpoints(benchmark::State& state) {
  static auto recs = http_records(65536, 300, 8);
  run(state, recs, 10000);
}
BENCHMARK(BM_RedHttp300Endpoints);

void BM_RedSqlTop100(benchmark::State& state) {
  static auto recs = sql_records(65536, 400);
  run(state, recs, 10000);
}
BENCHMARK(BM_RedSqlTop100);

// Worst case: every record a new series (paths that are not ids), the table full: one LRU fold each.
void BM_RedChurnAtCap(benchmark::State& state) {
  static std::vector<Rec> recs = [] {
    std::vector<Rec> v(65536);
    for (size_t i = 0; i < v.size(); ++i) {
      v[i].r.protocol = Protocol::kHttp;
      v[i].r.server.port = 80;
      v[i].req.fields.add_string("method", "GET");
      v[i].req.fields.add_string("path", "/page-x" + std::to_string(i));
    }
    return v;
  }();
  run(state, recs, 10000);
}
BENCHMARK(BM_RedChurnAtCap);

}  // namespace

BENCHMARK_MAIN();
