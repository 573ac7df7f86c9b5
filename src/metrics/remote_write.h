// Prometheus remote-write 1.0: /metrics families turned into series, the
// snappy-compressed protobuf WriteRequest, and the pusher thread that posts
// them (docs/metrics.md). offer() and stats() run on the control core; the
// rest on the pusher's own thread. Allocates. Only src/metrics/ includes it.
#pragma once

#include <prometheus/metric_family.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "spanfeed/config.h"

namespace spanfeed {

using PromLabels = std::vector<std::pair<std::string, std::string>>;
using Families = std::vector<prometheus::MetricFamily>;

// One time series of a WriteRequest with its one sample.
struct PromSeries {
  PromLabels labels;  // sorted by name; __name__ among them; no empty values
  double value = 0;
  int64_t timestamp_ms = 0;
  bool operator==(const PromSeries&) const = default;
};

// The series of /metrics families as a scrape of them would store them:
// counter, gauge and untyped give one series each; a histogram NAME_bucket
// per bucket with le (+Inf added when missing, as the text format does),
// NAME_sum and NAME_count; a summary NAME per quantile, NAME_sum, NAME_count.
// `extra` labels are added where the series has no label of that name; labels
// with an empty value are left out (a scrape drops them too). A series whose
// labels repeat an earlier one is dropped (a receiver would refuse the whole
// request) and counted in `duplicates`. Sorted by labels.
std::vector<PromSeries> to_series(const Families& families, const PromLabels& extra, int64_t timestamp_ms,
                                  uint64_t& duplicates);

// The label value of a bucket bound or quantile, formatted as /metrics does.
std::string prom_float(double v);

// The body of a remote-write request: a WriteRequest with these series and
// one metadata entry (type, help) per family, snappy block-compressed.
std::string encode_write_request(const std::vector<PromSeries>& series, const Families& metadata);
// The reverse (tests, and a receiver's view): false + error on a bad body.
bool decode_write_request(const std::string& body, std::vector<PromSeries>& series, std::string& error);

// What happened to each push (one snapshot) and each HTTP request.
enum class PushOutcome : uint8_t {
  kOk,         // the store answered 2xx
  kRejected,   // 4xx (not 429): the store refused it; not retried
  kDropped,    // the queue was full: the oldest pending push made room
  kAbandoned,  // still pending when the shutdown flush ran out of time
};
inline constexpr size_t kPushOutcomeCount = 4;
enum class RequestResult : uint8_t {
  kOk,           // 2xx
  kRejected,     // 4xx other than 429
  kServerError,  // 5xx or 429: retried with backoff
  kTimeout,      // no answer within timeout_s: retried
  kUnreachable,  // connection refused, DNS, TLS, reset...: retried
};
inline constexpr size_t kRequestResultCount = 5;
const char* to_string(PushOutcome o);
const char* to_string(RequestResult r);

struct RemoteWriteStats {
  std::array<uint64_t, kPushOutcomeCount> pushes{};
  std::array<uint64_t, kPushOutcomeCount> samples{};
  std::array<uint64_t, kRequestResultCount> requests{};
  uint64_t duplicate_series = 0;
  uint64_t pending = 0;
  double last_ok_unix_s = 0;  // 0: never
};

// spanfeed_remote_write_* families for /metrics (docs/metrics.md).
void append_remote_write_families(const RemoteWriteStats& s, Families& out);

class RemoteWriter {
 public:
  // Reads the credential files and starts the pusher thread. nullptr + error
  // when a file cannot be read.
  static std::unique_ptr<RemoteWriter> start(const RemoteWriteConfig& cfg, std::string& error);
  // Pushes what is pending (the final snapshot first taken), for at most
  // timeout_s; the rest is abandoned (counted). Then the thread ends.
  ~RemoteWriter();
  // Control core: the newest snapshot, pushed at the next interval; the final
  // one is pushed now.
  void offer(std::shared_ptr<const Families> families, bool final);
  RemoteWriteStats stats() const;
  // The final flush now (as the destructor), then one line for the log:
  // "remote_write URL: pushes ok=N rejected=N ...; requests ok=N ...".
  std::string finish();

 private:
  struct Impl;
  RemoteWriter();
  std::unique_ptr<Impl> impl_;
};

}  // namespace spanfeed
