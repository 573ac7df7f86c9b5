// Job factory. Control core, before the lcores launch; allocates.
#include "spanfeed/jobs.h"

namespace spanfeed {

std::unique_ptr<PacketHandler> make_job(const Config& cfg, WorkerCounters& counters) {
  switch (cfg.job) {
    case JobKind::kPayloadSum: return std::make_unique<PayloadSumJob>(counters);
  }
  return nullptr;
}

}  // namespace spanfeed
