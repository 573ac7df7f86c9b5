// Job factory. Control core, before the lcores launch; allocates.
#include "spanfeed/jobs.h"

namespace spanfeed {

std::unique_ptr<Job> make_job(const Config& cfg, unsigned worker, WorkerCounters& counters,
                              const std::string& flows_part, Exporter* exporter, RulesControl* rules) {
  switch (cfg.job) {
    case JobKind::kPayloadSum: return std::make_unique<PayloadSumJob>(counters);
    case JobKind::kFlows: return std::make_unique<FlowsJob>(cfg, worker, counters, flows_part);
    case JobKind::kRecords: return std::make_unique<RecordsJob>(cfg, worker, counters, *exporter, rules);
  }
  return nullptr;
}

}  // namespace spanfeed
