// /metrics families -> remote-write series, and the pusher's own families.
// Runs on the remote-write thread (to_series) and the control core
// (append_remote_write_families). Allocates. prometheus-cpp only: the
// protobuf, snappy and curl parts are in remote_write.cc.
#include <algorithm>
#include <cmath>
#include <limits>
#include <locale>
#include <sstream>

#include "metrics/remote_write.h"

namespace spanfeed {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

std::string prom_float(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // prometheus-cpp's text serializer: classic locale, 16 significant digits
  std::ostringstream out;
  out.imbue(std::locale::classic());
  out.precision(std::numeric_limits<double>::max_digits10 - 1);
  out << v;
  return out.str();
}

namespace {

class SeriesBuilder {
 public:
  SeriesBuilder(const PromLabels& extra, int64_t ts) : extra_(extra), ts_(ts) {}

  void add(const std::string& name, const ClientMetric& m, double value, const char* label = nullptr,
           const std::string& label_value = {}) {
    PromSeries s;
    s.labels.reserve(m.label.size() + extra_.size() + 2);
    s.labels.emplace_back("__name__", name);
    for (const auto& l : m.label) {
      if (!l.value.empty()) s.labels.emplace_back(l.name, l.value);
    }
    if (label != nullptr) s.labels.emplace_back(label, label_value);
    for (const auto& [k, v] : extra_) {
      if (v.empty()) continue;
      bool own = std::any_of(m.label.begin(), m.label.end(), [&](const auto& l) { return l.name == k; });
      if (!own && (label == nullptr || k != label)) s.labels.emplace_back(k, v);
    }
    std::sort(s.labels.begin(), s.labels.end());
    s.value = value;
    s.timestamp_ms = m.timestamp_ms != 0 ? m.timestamp_ms : ts_;
    out.push_back(std::move(s));
  }

  std::vector<PromSeries> out;

 private:
  const PromLabels& extra_;
  int64_t ts_;
};

}  // namespace

std::vector<PromSeries> to_series(const Families& families, const PromLabels& extra, int64_t timestamp_ms,
                                  uint64_t& duplicates) {
  SeriesBuilder b(extra, timestamp_ms);
  for (const MetricFamily& f : families) {
    for (const ClientMetric& m : f.metric) {
      switch (f.type) {
        case MetricType::Counter: b.add(f.name, m, m.counter.value); break;
        case MetricType::Gauge: b.add(f.name, m, m.gauge.value); break;
        case MetricType::Untyped: b.add(f.name, m, m.untyped.value); break;
        case MetricType::Histogram: {
          const auto& h = m.histogram;
          double last = -std::numeric_limits<double>::infinity();
          for (const auto& bucket : h.bucket) {
            b.add(f.name + "_bucket", m, double(bucket.cumulative_count), "le", prom_float(bucket.upper_bound));
            last = bucket.upper_bound;
          }
          if (!std::isinf(last) || last < 0) b.add(f.name + "_bucket", m, double(h.sample_count), "le", "+Inf");
          b.add(f.name + "_sum", m, h.sample_sum);
          b.add(f.name + "_count", m, double(h.sample_count));
          break;
        }
        case MetricType::Summary: {
          const auto& s = m.summary;
          for (const auto& q : s.quantile) b.add(f.name, m, q.value, "quantile", prom_float(q.quantile));
          b.add(f.name + "_sum", m, s.sample_sum);
          b.add(f.name + "_count", m, double(s.sample_count));
          break;
        }
        default: b.add(f.name, m, m.untyped.value); break;  // a type this code does not know: its untyped value
      }
    }
  }
  auto& out = b.out;
  std::stable_sort(out.begin(), out.end(), [](const PromSeries& a, const PromSeries& c) { return a.labels < c.labels; });
  auto end = std::unique(out.begin(), out.end(),
                         [](const PromSeries& a, const PromSeries& c) { return a.labels == c.labels; });
  duplicates = static_cast<uint64_t>(out.end() - end);
  out.erase(end, out.end());
  return std::move(out);
}

const char* to_string(PushOutcome o) {
  switch (o) {
    case PushOutcome::kOk: return "ok";
    case PushOutcome::kRejected: return "rejected";
    case PushOutcome::kDropped: return "dropped";
    case PushOutcome::kAbandoned: return "abandoned";
  }
  return "?";
}

const char* to_string(RequestResult r) {
  switch (r) {
    case RequestResult::kOk: return "ok";
    case RequestResult::kRejected: return "rejected";
    case RequestResult::kServerError: return "server_error";
    case RequestResult::kTimeout: return "timeout";
    case RequestResult::kUnreachable: return "unreachable";
  }
  return "?";
}

void append_remote_write_families(const RemoteWriteStats& s, Families& out) {
  auto family = [&](const char* name, MetricType type, const char* help) -> MetricFamily& {
    out.push_back(MetricFamily{std::string("spanfeed_remote_write_") + name, help, type, {}});
    return out.back();
  };
  auto add = [](MetricFamily& f, const char* label, const char* value, double v) {
    ClientMetric m;
    if (label != nullptr) m.label.push_back({label, value});
    if (f.type == MetricType::Counter) m.counter.value = v;
    else m.gauge.value = v;
    f.metric.push_back(std::move(m));
  };
  {
    auto& f = family("pushes_total", MetricType::Counter,
                     "Snapshots pushed to metrics.remote_write.url, by outcome: ok (2xx), rejected (4xx: the store "
                     "refused it, not retried; see the log), dropped (the queue was full while the store was "
                     "unreachable: the oldest went), abandoned (still pending when the shutdown flush ran out of time).");
    for (size_t k = 0; k < kPushOutcomeCount; ++k) {
      add(f, "outcome", to_string(static_cast<PushOutcome>(k)), double(s.pushes[k]));
    }
  }
  {
    auto& f = family("samples_total", MetricType::Counter, "Samples in those pushes, by the same outcomes.");
    for (size_t k = 0; k < kPushOutcomeCount; ++k) {
      add(f, "outcome", to_string(static_cast<PushOutcome>(k)), double(s.samples[k]));
    }
  }
  {
    auto& f = family("requests_total", MetricType::Counter,
                     "HTTP requests to the store (retries included), by result: ok, rejected (4xx), server_error "
                     "(5xx, 429), timeout, unreachable (connection refused, DNS, TLS). The last three are retried "
                     "with backoff.");
    for (size_t k = 0; k < kRequestResultCount; ++k) {
      add(f, "result", to_string(static_cast<RequestResult>(k)), double(s.requests[k]));
    }
  }
  add(family("duplicate_series_total", MetricType::Counter,
             "Series left out of a push because an earlier series had the same labels. Must stay 0; non-zero is a bug."),
      nullptr, nullptr, double(s.duplicate_series));
  add(family("pending", MetricType::Gauge, "Pushes waiting for the store (at most metrics.remote_write.queue)."),
      nullptr, nullptr, double(s.pending));
  add(family("last_success_timestamp_seconds", MetricType::Gauge,
             "Unix time of the last push the store accepted; 0: none yet."),
      nullptr, nullptr, s.last_ok_unix_s);
}

}  // namespace spanfeed
