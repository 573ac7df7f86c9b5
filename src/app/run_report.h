// The run report: assembled from the engine's raw counters, the jobs', the
// exporter's and the rules'; shown as the status line and the summaries.
// Control core; allocates.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dpdk/engine.h"
#include "spanfeed/config.h"
#include "jobs/summary.h"

namespace spanfeed {
class Exporter;
class Job;
class RulesControl;
namespace red {
class Merger;
}  // namespace red
}  // namespace spanfeed

namespace spanfeed::app {

// What the report is assembled from. Pointers may be null (no such part).
struct ReportSources {
  const Config* cfg = nullptr;
  uint64_t expected_packets = 0;         // a finite capture file: its records
  const std::vector<Job*>* jobs = nullptr;  // one per worker
  const Exporter* exporter = nullptr;
  RulesControl* rules = nullptr;  // report() takes its lock
  red::Merger* red = nullptr;     // RED metrics: the jobs' harvests are merged into it
};

// Fills `rep` (all but `source`) from the counters. `final`: after the run
// (sinks' failure reasons included).
void assemble_report(const EngineCounters& c, const ReportSources& from, bool final, RunReport& rep);

// One line on stderr, rewritten every snapshot: rate, drops, records, progress.
class StatusLine {
 public:
  explicit StatusLine(bool enabled) : enabled_(enabled) {}
  bool enabled() const { return enabled_; }
  void update(const RunReport& r, bool final);

 private:
  bool enabled_;
  uint64_t last_rx_ = 0, last_rt_ = 0;
  double last_t_ = 0;
};

// The human summary (stdout, or stderr when records go to stdout) and the
// JSON summary file. False (message printed) when the JSON cannot be written.
bool write_summaries(const Config& cfg, const RunReport& report);

}  // namespace spanfeed::app
