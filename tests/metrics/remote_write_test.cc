// Unit tests for the remote-write conversion and encoding: /metrics families
// to series (exact labels and values, histogram buckets), agreement with
// prometheus-cpp's own text output, and the WriteRequest bytes on the wire.
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>
#include <snappy.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <limits>
#include <map>
#include <sstream>
#include <thread>

#include "metrics/remote_write.h"

namespace spanfeed {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

ClientMetric metric(PromLabels labels) {
  ClientMetric m;
  for (auto& [k, v] : labels) m.label.push_back({k, v});
  return m;
}

PromSeries series(PromLabels labels, double v, int64_t ts = 1000) { return {std::move(labels), v, ts}; }

TEST(RemoteWriteSeries, CounterGaugeUntypedWithExtraLabels) {
  Families f(3);
  f[0] = {"spanfeed_roundtrips_total", "h", MetricType::Counter, {}};
  auto m = metric({{"protocol", "http"}, {"status", "ok"}});
  m.counter.value = 7;
  f[0].metric.push_back(m);
  m = metric({{"protocol", "dns"}, {"status", "ok"}, {"instance", "own"}});
  m.counter.value = 3;
  f[0].metric.push_back(m);
  f[1] = {"spanfeed_up", "h", MetricType::Gauge, {}};
  m = metric({});
  m.gauge.value = 1;
  f[1].metric.push_back(m);
  f[2] = {"x_untyped", "h", MetricType::Untyped, {}};
  m = metric({{"name", ""}});  // an empty value: left out, as a scrape does
  m.untyped.value = -2.5;
  f[2].metric.push_back(m);
  uint64_t dup = 99;
  auto got = to_series(f, {{"job", "spanfeed"}, {"instance", "box1"}, {"dropped", ""}}, 1000, dup);
  EXPECT_EQ(dup, 0u);
  // sorted by labels; a series's own instance wins over the extra one
  std::vector<PromSeries> want = {
      series({{"__name__", "spanfeed_roundtrips_total"}, {"instance", "box1"}, {"job", "spanfeed"},
              {"protocol", "http"}, {"status", "ok"}}, 7),
      series({{"__name__", "spanfeed_roundtrips_total"}, {"instance", "own"}, {"job", "spanfeed"},
              {"protocol", "dns"}, {"status", "ok"}}, 3),
      series({{"__name__", "spanfeed_up"}, {"instance", "box1"}, {"job", "spanfeed"}}, 1),
      series({{"__name__", "x_untyped"}, {"instance", "box1"}, {"job", "spanfeed"}}, -2.5),
  };
  EXPECT_EQ(got, want);
}

TEST(RemoteWriteSeries, HistogramBucketsSumCount) {
  MetricFamily h{"spanfeed_roundtrip_latency_seconds", "h", MetricType::Histogram, {}};
  auto m = metric({{"protocol", "redis"}});
  m.histogram.bucket = {{2, 50e-6}, {5, 0.001}, {9, 0.25}};  // no +Inf bucket: added from the count
  m.histogram.sample_count = 10;
  m.histogram.sample_sum = 1.5;
  h.metric.push_back(m);
  m = metric({{"protocol", "dns"}});
  m.histogram.bucket = {{1, 1}, {4, std::numeric_limits<double>::infinity()}};
  m.histogram.sample_count = 4;
  m.histogram.sample_sum = 0.25;
  h.metric.push_back(m);
  m.timestamp_ms = 77;  // a metric's own timestamp wins
  m.label = {{"protocol", "mysql"}};
  h.metric.push_back(m);
  uint64_t dup = 0;
  auto got = to_series({h}, {}, 5000, dup);
  const std::string b = "spanfeed_roundtrip_latency_seconds_bucket";
  const std::string c = "spanfeed_roundtrip_latency_seconds_count";
  const std::string s = "spanfeed_roundtrip_latency_seconds_sum";
  std::vector<PromSeries> want = {
      series({{"__name__", b}, {"le", "+Inf"}, {"protocol", "dns"}}, 4, 5000),
      series({{"__name__", b}, {"le", "+Inf"}, {"protocol", "mysql"}}, 4, 77),
      series({{"__name__", b}, {"le", "+Inf"}, {"protocol", "redis"}}, 10, 5000),
      series({{"__name__", b}, {"le", "0.001"}, {"protocol", "redis"}}, 5, 5000),
      series({{"__name__", b}, {"le", "0.25"}, {"protocol", "redis"}}, 9, 5000),
      series({{"__name__", b}, {"le", "1"}, {"protocol", "dns"}}, 1, 5000),
      series({{"__name__", b}, {"le", "1"}, {"protocol", "mysql"}}, 1, 77),
      series({{"__name__", b}, {"le", "5e-05"}, {"protocol", "redis"}}, 2, 5000),
      series({{"__name__", c}, {"protocol", "dns"}}, 4, 5000),
      series({{"__name__", c}, {"protocol", "mysql"}}, 4, 77),
      series({{"__name__", c}, {"protocol", "redis"}}, 10, 5000),
      series({{"__name__", s}, {"protocol", "dns"}}, 0.25, 5000),
      series({{"__name__", s}, {"protocol", "mysql"}}, 0.25, 77),
      series({{"__name__", s}, {"protocol", "redis"}}, 1.5, 5000),
  };
  EXPECT_EQ(got, want);
}

TEST(RemoteWriteSeries, SummaryQuantiles) {
  MetricFamily f{"rpc_seconds", "h", MetricType::Summary, {}};
  auto m = metric({});
  m.summary.quantile = {{0.5, 0.01}, {0.99, 0.2}};
  m.summary.sample_count = 100;
  m.summary.sample_sum = 3;
  f.metric.push_back(m);
  uint64_t dup = 0;
  auto got = to_series({f}, {}, 1, dup);
  std::vector<PromSeries> want = {
      series({{"__name__", "rpc_seconds"}, {"quantile", "0.5"}}, 0.01, 1),
      series({{"__name__", "rpc_seconds"}, {"quantile", "0.99"}}, 0.2, 1),
      series({{"__name__", "rpc_seconds_count"}}, 100, 1),
      series({{"__name__", "rpc_seconds_sum"}}, 3, 1),
  };
  EXPECT_EQ(got, want);
}

TEST(RemoteWriteSeries, DuplicateSeriesDroppedAndCounted) {
  MetricFamily f{"a_total", "h", MetricType::Counter, {}};
  for (double v : {1.0, 2.0, 3.0}) {
    auto m = metric({{"k", "v"}});
    m.counter.value = v;
    f.metric.push_back(m);
  }
  uint64_t dup = 0;
  auto got = to_series({f}, {}, 1, dup);
  EXPECT_EQ(dup, 2u);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].value, 1);  // the first one stays
}

// Parses prometheus-cpp's text exposition into "name{sorted labels}" -> value.
std::map<std::string, double> parse_text(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto sp = line.rfind(' ');
    std::string key = line.substr(0, sp);
    const std::string v = line.substr(sp + 1);
    const auto brace = key.find('{');
    std::string name = key.substr(0, brace);
    PromLabels labels{{"__name__", name}};
    if (brace != std::string::npos) {
      std::string body = key.substr(brace + 1, key.size() - brace - 2);
      size_t pos = 0;
      while (pos < body.size()) {
        const auto eq = body.find('=', pos);
        const auto close = body.find('"', eq + 2);
        labels.emplace_back(body.substr(pos, eq - pos), body.substr(eq + 2, close - eq - 2));
        pos = close + 2;  // past '",'
      }
    }
    std::sort(labels.begin(), labels.end());
    std::string k;
    for (const auto& [ln, lv] : labels) k += ln + "=" + lv + ",";
    out[k] = v == "+Inf" ? std::numeric_limits<double>::infinity() : std::stod(v);
  }
  return out;
}

TEST(RemoteWriteSeries, SameSeriesAsTheScrape) {
  // spanfeed's latency buckets (microseconds / 1e6) and a few odd values
  MetricFamily h{"lat_seconds", "h", MetricType::Histogram, {}};
  auto m = metric({{"protocol", "http"}});
  uint64_t cum = 0;
  for (double us : {50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 1e4, 2.5e4, 1e5, 1e6, 6e7}) {
    cum += 3;
    m.histogram.bucket.push_back({cum, us / 1e6});
  }
  m.histogram.bucket.push_back({cum + 1, 1.0 / 3 + 100});  // 17 digits would tell: the text has 16
  m.histogram.sample_count = cum + 2;
  m.histogram.sample_sum = 12.345678;
  h.metric.push_back(m);
  MetricFamily g{"g", "h", MetricType::Gauge, {}};
  auto gm = metric({{"a", "x y"}, {"b", "2"}});
  gm.gauge.value = 0.1 + 0.2;
  g.metric.push_back(gm);
  MetricFamily s{"s", "h", MetricType::Summary, {}};
  auto sm = metric({});
  sm.summary.quantile = {{0.999, 1e-7}};
  s.metric.push_back(sm);
  const Families fams = {h, g, s};
  const auto text = prometheus::TextSerializer().Serialize(fams);
  const auto scraped = parse_text(text);
  uint64_t dup = 0;
  const auto got = to_series(fams, {}, 1, dup);
  std::map<std::string, double> pushed;
  for (const auto& ps : got) {
    std::string k;
    for (const auto& [ln, lv] : ps.labels) k += ln + "=" + lv + ",";
    pushed[k] = ps.value;
  }
  ASSERT_EQ(pushed.size(), scraped.size()) << text;
  for (const auto& [k, v] : scraped) {
    ASSERT_TRUE(pushed.count(k)) << k << "\n" << text;
    EXPECT_DOUBLE_EQ(pushed[k], v) << k;
  }
}

TEST(RemoteWriteEncode, WireBytesMatchPrompb) {
  // WriteRequest{timeseries: [{labels: [{__name__: a}], samples: [{value: 1, timestamp: 2}]}]},
  // written by hand from prompb's field numbers
  const std::string want(
      "\x0a\x1c"                                // WriteRequest.timeseries (1), 28 bytes
      "\x0a\x0d"                                // TimeSeries.labels (1), 13 bytes
      "\x0a\x08__name__\x12\x01" "a"            // Label.name (1), Label.value (2)
      "\x12\x0b"                                // TimeSeries.samples (2), 11 bytes
      "\x09\x00\x00\x00\x00\x00\x00\xf0\x3f"    // Sample.value (1): double 1.0
      "\x10\x02",                               // Sample.timestamp (2): 2
      30);
  const std::string body = encode_write_request({series({{"__name__", "a"}}, 1, 2)}, {});
  std::string raw;
  ASSERT_TRUE(snappy::Uncompress(body.data(), body.size(), &raw));
  EXPECT_EQ(raw, want);
}

TEST(RemoteWriteEncode, RoundTripWithMetadata) {
  MetricFamily f{"spanfeed_rx_packets_total", "Packets.", MetricType::Counter, {}};
  auto m = metric({{"lcore", "1"}});
  m.counter.value = 123456789012.0;
  f.metric.push_back(m);
  uint64_t dup = 0;
  const auto s = to_series({f}, {{"instance", "box"}}, 1733130000123, dup);
  const std::string body = encode_write_request(s, {f});
  std::vector<PromSeries> back;
  std::string err;
  ASSERT_TRUE(decode_write_request(body, back, err)) << err;
  EXPECT_EQ(back, s);
  EXPECT_FALSE(decode_write_request("not snappy", back, err));
}

TEST(RemoteWriteFamilies, OwnCounters) {
  RemoteWriteStats st;
  st.pushes = {5, 1, 2, 0};
  st.samples = {500, 100, 200, 0};
  st.requests = {5, 1, 3, 0, 4};
  st.pending = 1;
  Families out;
  append_remote_write_families(st, out);
  uint64_t dup = 0;
  std::map<std::string, double> v;
  for (const auto& ps : to_series(out, {}, 1, dup)) {
    std::string k = ps.labels[0].second;
    if (ps.labels.size() > 1) k += "/" + ps.labels[1].second;
    v[k] = ps.value;
  }
  EXPECT_EQ(v["spanfeed_remote_write_pushes_total/ok"], 5);
  EXPECT_EQ(v["spanfeed_remote_write_pushes_total/rejected"], 1);
  EXPECT_EQ(v["spanfeed_remote_write_pushes_total/dropped"], 2);
  EXPECT_EQ(v["spanfeed_remote_write_samples_total/dropped"], 200);
  EXPECT_EQ(v["spanfeed_remote_write_requests_total/server_error"], 3);
  EXPECT_EQ(v["spanfeed_remote_write_requests_total/unreachable"], 4);
  EXPECT_EQ(v["spanfeed_remote_write_pending"], 1);
  EXPECT_EQ(v.size(), 4u + 4u + 5u + 3u);
}

// A store that takes connections (the kernel's backlog) and never answers:
// pushes time out, the queue fills, the oldest go, the shutdown flush gives
// up after timeout_s and abandons exactly what the queue held.
TEST(RemoteWriter, SilentStoreFillsTheQueueAndShutdownIsBounded) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(fd, 64), 0);
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  RemoteWriteConfig cfg;
  cfg.url = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/api/v1/write";
  cfg.interval_s = 0.02;
  cfg.timeout_s = 0.3;
  cfg.queue = 3;
  std::string err;
  auto w = RemoteWriter::start(cfg, err);
  ASSERT_TRUE(w) << err;
  MetricFamily f{"x_total", "h", MetricType::Counter, {}};
  f.metric.push_back(metric({{"k", "v"}}));
  // New snapshots every 10 ms until the full queue has dropped two (a tick
  // queues one between requests and during backoff waits), 10 s at most.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (int i = 0; w->stats().pushes[size_t(PushOutcome::kDropped)] < 2 &&
                  std::chrono::steady_clock::now() < give_up; ++i) {
    f.metric[0].counter.value = i;
    w->offer(std::make_shared<const Families>(Families{f}), false);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  w->offer(std::make_shared<const Families>(Families{f}), true);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string line = w->finish();
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  close(fd);
  const RemoteWriteStats s = w->stats();
  EXPECT_LT(took, cfg.timeout_s + 0.5) << line;  // the request in flight ends within timeout_s too
  EXPECT_EQ(s.pushes[size_t(PushOutcome::kOk)], 0u);
  EXPECT_EQ(s.pushes[size_t(PushOutcome::kAbandoned)], cfg.queue) << line;
  EXPECT_GE(s.pushes[size_t(PushOutcome::kDropped)], 2u) << line;
  EXPECT_GE(s.requests[size_t(RequestResult::kTimeout)], 1u) << line;
  EXPECT_EQ(s.requests[size_t(RequestResult::kOk)] + s.requests[size_t(RequestResult::kRejected)], 0u);
  EXPECT_EQ(s.pending, 0u);
  // one series (x_total with instance and job) per push
  EXPECT_EQ(s.samples[size_t(PushOutcome::kAbandoned)], cfg.queue);
}

}  // namespace
}  // namespace spanfeed
