// EAL planning and lifetime: the argv the EAL gets (lcore map, memory, vdev
// for the source), start-up and cleanup, and the CPUs left to helper
// threads. Control core, start-up and teardown only; allocates. Internal to
// the DPDK adapter.
#pragma once

#include <sched.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dpdk/engine.h"

namespace spanfeed::dpdk {

// Everything the EAL needs, as argv strings.
struct EalPlan {
  std::vector<std::string> args;
  unsigned lcores_needed = 0;
  bool oversubscribed = false;  // more lcores than CPUs: idle loops yield
  bool private_memory = false;  // spanfeed chose --no-huge and nothing else maps the memory
};

// The EAL arguments for `cfg`: the user's --eal arguments win over every
// default they name. `pool_bytes` sizes the heap of --no-huge runs.
EalPlan plan_eal(const EngineConfig& cfg, uint64_t pool_bytes);

// A running EAL: rte_eal_cleanup() when it goes.
class Eal {
 public:
  // nullptr + error when rte_eal_init fails.
  static std::unique_ptr<Eal> start(const EalPlan& plan, bool verbose, std::string& error);
  ~Eal();
  Eal(const Eal&) = delete;
  Eal& operator=(const Eal&) = delete;

  // Runs `fn` with this thread's affinity moved to the CPUs the process had
  // before the EAL pinned it that no worker lcore uses (all of them when
  // every CPU hosts an lcore), so threads `fn` creates run off the lcores.
  bool run_off_lcores(const std::function<bool()>& fn) const;

 private:
  Eal() = default;
  cpu_set_t process_cpus_;  // before the EAL pinned this thread
};

}  // namespace spanfeed::dpdk
