// Job factory (control core, before the lcores launch; allocates) and the
// counter hand-over between a job's worker and the control core (no allocation).
#include "jobs/jobs.h"

namespace spanfeed {

void Job::publish(bool wait) {
  std::unique_lock lock(published_mu_, std::defer_lock);
  if (wait) {
    lock.lock();
  } else if (!lock.try_lock()) {
    return;  // the control core is reading: publish on the next turn
  }
  collect(published_);
  lock.unlock();
  published(wait);
}

void Job::report(WorkerSnapshot& out) const {
  std::lock_guard lock(published_mu_);
  static_cast<JobCounters&>(out) = published_;
  out.reassembly = published_.reassembly;
  out.records = published_.records;
}

std::unique_ptr<Job> make_job(const Config& cfg, unsigned worker, Exporter* exporter,
                              RulesControl* rules, const red::Shared* red) {
  switch (cfg.job) {
    case JobKind::kPayloadSum: return std::make_unique<PayloadSumJob>();
    case JobKind::kFlows:
      return std::make_unique<FlowsJob>(
          cfg, worker, cfg.flows_out.empty() ? "" : flows_part_path(cfg.flows_out, worker));
    case JobKind::kRecords: return std::make_unique<RecordsJob>(cfg, worker, *exporter, rules, red);
  }
  return nullptr;
}

}  // namespace spanfeed
