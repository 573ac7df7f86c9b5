// Start-up shortcuts inside rte_eal_init for a statically linked DPDK: its TSC calibration measured
// from the process's start instead of across a 100 ms sleep, its ~4,000 NUMA-node and ~1,000 CPU
// probes answered from one listing each, and --no-huge memory private to the process when
// nothing else maps it. Control core, start-up only. Internal to the DPDK adapter (eal.cc).
#pragma once

namespace spanfeed::dpdk {

// While one lives, this thread's rte_eal_init takes the shortcuts; `private_memory`: --no-huge
// memory is mapped private (no vhost-user backend or other process needs to map it).
class EalInitScope {
 public:
  explicit EalInitScope(bool private_memory);
  ~EalInitScope();
  EalInitScope(const EalInitScope&) = delete;
  EalInitScope& operator=(const EalInitScope&) = delete;
};

// For the start-up log (all 0/false with a shared DPDK): the calibration window in microseconds
// (0 when the frequency came from CPUID or the MSR), the NUMA and CPU lookups answered from
// listings, and whether --no-huge memory was mapped private.
unsigned eal_calibration_us();
unsigned eal_node_lookups_answered();
unsigned eal_cpu_lookups_answered();
bool eal_memory_private();

}  // namespace spanfeed::dpdk
