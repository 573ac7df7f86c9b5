// RED on the control core: the workers' harvests summed into one cumulative table per series
// (what /metrics shows), bounded by red.max_series: a new series takes the room of one idle
// for red.retire_idle_s, else its counts go to "other". Control core; allocates.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "red/aggregator.h"

namespace spanfeed::red {

struct ReportSeries {
  SeriesKey key;
  Counts c;
  size_t hist = 0;  // offset of its buckets in Report::hist (not cumulative)
};

// One snapshot for /metrics (immutable once built).
struct Report {
  std::vector<uint64_t> bounds_us;
  std::vector<ReportSeries> series;
  std::vector<uint64_t> hist;
  std::vector<std::string> service_names;
  std::vector<uint32_t> worker_series;  // series in each worker's table at its last harvest
  uint64_t folded_records_worker = 0;   // records folded into "other" on the workers
  uint64_t folded_series_worker = 0;    // series the workers folded
  uint64_t folded_records_merge = 0;    // records of new series /metrics had no room for
  uint64_t retired_series = 0;          // idle series /metrics dropped to make room
  uint64_t skipped = 0;                 // records not counted (disabled protocol, TLS close)
  // Label values of a series: "server" (a service name, ip:port or "other"), "server_port".
  std::string server_label(const SeriesKey& k) const;
};

class Merger {
 public:
  explicit Merger(const Shared& shared, size_t workers);
  // One worker's harvest at time `now_s` (any monotonic seconds).
  void add(size_t worker, const Delta& d, double now_s);
  std::shared_ptr<const Report> report() const;
  size_t series() const { return table_.size(); }

 private:
  struct Merged {
    SeriesKey key;
    Counts c;
    std::vector<uint64_t> hist;
    double last_s = 0;
  };
  Merged* other_for(const SeriesKey& k);

  const Shared& sh_;
  std::unordered_map<std::string, Merged> table_;  // key bytes -> series (others included)
  std::vector<uint32_t> worker_series_;
  uint64_t folded_records_worker_ = 0, folded_series_worker_ = 0, folded_records_merge_ = 0;
  uint64_t retired_ = 0, skipped_ = 0;
  size_t others_ = 0;  // "other" series in table_ (not counted against the cap)
};

}  // namespace spanfeed::red
