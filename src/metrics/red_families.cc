// RED families for /metrics from the merged report (docs/metrics.md, "RED"). Control core,
// at each publish; allocates.
#include "metrics/red_families.h"

#include <limits>
#include <string>

#include "red/merger.h"

namespace spanfeed {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

void append_red_families(const red::Report& r, std::deque<MetricFamily>& out) {
  auto family = [&](const char* name, MetricType type, const char* help) -> MetricFamily& {
    out.push_back(MetricFamily{std::string("spanfeed_red_") + name, help, type, {}});
    return out.back();
  };
  auto& req = family("requests_total", MetricType::Counter,
                     "Records (requests) per service and endpoint, by status (ok, error, timeout, unmatched). "
                     "Label sets per protocol: red.labels; endpoint=\"other\": past red.max_series or red.top_n.");
  auto& err = family("errors_total", MetricType::Counter,
                     "Records with status error (the server said so) or timeout (no response), per series. "
                     "Error ratio: rate(errors) / rate(requests).");
  auto& rqb = family("request_bytes_total", MetricType::Counter, "Request bytes (stream bytes of the requests), per series.");
  auto& rsb = family("response_bytes_total", MetricType::Counter, "Response bytes, per series.");
  auto& dur = family("duration_seconds", MetricType::Histogram,
                     "Latency from the first request packet to the last response packet, per series (records "
                     "with a response; buckets from red.buckets).");
  for (const red::ReportSeries& s : r.series) {
    const red::SeriesKey& k = s.key;
    std::vector<prometheus::ClientMetric::Label> labels;
    labels.push_back({"protocol", std::string(to_string(static_cast<Protocol>(k.protocol)))});
    if (k.labels & red_label::kServer) labels.push_back({"server", r.server_label(k)});
    if (k.labels & red_label::kServerPort) {
      labels.push_back({"server_port", k.other ? std::string(kOtherEndpoint) : std::to_string(k.port)});
    }
    if (k.labels & red_label::kEndpoint) {
      labels.push_back({"endpoint", k.other ? std::string(kOtherEndpoint) : std::string(k.endpoint_view())});
    }
    if (k.status != red::kNoStatus) {
      labels.push_back({"status", std::string(to_string(static_cast<RecordStatus>(k.status)))});
    }
    auto counter = [&](MetricFamily& f, uint64_t v) {
      ClientMetric m;
      m.label = labels;
      m.counter.value = static_cast<double>(v);
      f.metric.push_back(std::move(m));
    };
    counter(req, s.c.requests);
    counter(err, s.c.errors);
    counter(rqb, s.c.request_bytes);
    counter(rsb, s.c.response_bytes);
    ClientMetric m;
    m.label = std::move(labels);
    uint64_t cum = 0;
    for (size_t b = 0; b < r.bounds_us.size(); ++b) {
      cum += r.hist[s.hist + b];
      m.histogram.bucket.push_back({cum, static_cast<double>(r.bounds_us[b]) / 1e6});
    }
    cum += r.hist[s.hist + r.bounds_us.size()];
    m.histogram.bucket.push_back({cum, std::numeric_limits<double>::infinity()});
    m.histogram.sample_count = s.c.duration_count;
    m.histogram.sample_sum = static_cast<double>(s.c.duration_sum_us) / 1e6;
    dur.metric.push_back(std::move(m));
  }
  auto gauge_or_counter = [](MetricFamily& f, std::vector<ClientMetric::Label> labels, double v) {
    ClientMetric m;
    m.label = std::move(labels);
    if (f.type == MetricType::Counter) m.counter.value = v;
    else m.gauge.value = v;
    f.metric.push_back(std::move(m));
  };
  auto& ws = family("worker_series", MetricType::Gauge,
                    "Series in each worker's RED table (at most red.max_series; at the cap, the least recently "
                    "seen series folds into \"other\" for each new one).");
  for (size_t w = 0; w < r.worker_series.size(); ++w) {
    gauge_or_counter(ws, {{"worker", std::to_string(w)}}, r.worker_series[w]);
  }
  auto& es = family("series", MetricType::Gauge,
                    "RED series in /metrics (red.max_series at most, plus one \"other\" per protocol and status).");
  gauge_or_counter(es, {}, static_cast<double>(r.series.size()));
  auto& fr = family("folded_records_total", MetricType::Counter,
                    "Records counted under endpoint \"other\" because their series had no room: stage worker (a "
                    "worker's table was full and folded the least recently seen series), stage export (/metrics "
                    "was full and no series was idle for red.retire_idle_s). Rising: raise red.max_series or drop "
                    "a label (red.protocols.<name>.labels).");
  gauge_or_counter(fr, {{"stage", "worker"}}, static_cast<double>(r.folded_records_worker));
  gauge_or_counter(fr, {{"stage", "export"}}, static_cast<double>(r.folded_records_merge));
  auto& fs = family("folded_series_total", MetricType::Counter,
                    "Series a worker folded into \"other\" to make room for a new one (its table was full).");
  gauge_or_counter(fs, {}, static_cast<double>(r.folded_series_worker));
  auto& rs = family("retired_series_total", MetricType::Counter,
                    "Series dropped from /metrics after red.retire_idle_s without a record, to make room for a "
                    "new one (their counts stop; Prometheus marks them stale).");
  gauge_or_counter(rs, {}, static_cast<double>(r.retired_series));
  auto& sk = family("skipped_records_total", MetricType::Counter,
                    "Records not counted in RED series: protocols switched off (red.protocols.<name>.enabled) "
                    "and TLS close records (not requests).");
  gauge_or_counter(sk, {}, static_cast<double>(r.skipped));
}

}  // namespace spanfeed
