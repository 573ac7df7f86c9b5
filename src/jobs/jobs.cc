// Job factory. Control core, before the lcores launch; allocates.
#include "spanfeed/jobs.h"

namespace spanfeed {

std::unique_ptr<Job> make_job(const Config& cfg, unsigned worker, Exporter* exporter,
                              RulesControl* rules) {
  switch (cfg.job) {
    case JobKind::kPayloadSum: return std::make_unique<PayloadSumJob>();
    case JobKind::kFlows:
      return std::make_unique<FlowsJob>(
          cfg, worker, cfg.flows_out.empty() ? "" : flows_part_path(cfg.flows_out, worker));
    case JobKind::kRecords: return std::make_unique<RecordsJob>(cfg, worker, *exporter, rules);
  }
  return nullptr;
}

}  // namespace spanfeed
