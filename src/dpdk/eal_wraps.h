// Start-up shortcuts inside rte_eal_init for a statically linked DPDK: its TSC calibration sleep
// shortened from 100 ms to 5 ms, its ~4,000 NUMA-node access() probes answered from one listing.
// Control core, start-up only. Internal to the DPDK adapter (eal.cc).
#pragma once

namespace spanfeed::dpdk {

// While one lives, this thread's nanosleep/access calls from DPDK take the shortcuts.
class EalInitScope {
 public:
  EalInitScope();
  ~EalInitScope();
  EalInitScope(const EalInitScope&) = delete;
  EalInitScope& operator=(const EalInitScope&) = delete;
};

// For the start-up log: 1 when the calibration was shortened (0 with a shared DPDK, or when the
// TSC frequency came from CPUID or the MSR), and the access() probes answered.
unsigned eal_calibrations_shortened();
unsigned eal_node_lookups_answered();
unsigned eal_cpu_lookups_answered();

}  // namespace spanfeed::dpdk
