// The capture engine: EAL, ports, mempool, rings, RX and worker lcores, run
// to completion. The only entry point into the DPDK adapter (src/dpdk/);
// nothing outside it includes rte_*.h. Called on the main (control) lcore.
#pragma once

#include <functional>
#include <string>

#include "spanfeed/capture_file.h"
#include "spanfeed/config.h"
#include "spanfeed/summary.h"

namespace spanfeed {

// Called on the control core with a snapshot of every counter: every
// `period_ms` while the capture runs (final = false), and once at the end.
class RulesControl;

struct EngineHooks {
  unsigned period_ms = 1000;
  std::function<void(const RunReport&, bool final)> on_snapshot;
  // Called on the control core every control-loop turn (about 20 ms): reloads.
  std::function<void()> on_tick;
  // Content rules for the records job (nullptr: none). Outlives the run.
  RulesControl* rules = nullptr;
};

// Runs a capture as configured. `file` is the probed capture file for --pcap
// runs (nullptr otherwise). Returns 0 and fills `report` on success; on a
// start-up failure returns non-zero with `error` set (nothing was captured).
int run_engine(const Config& cfg, const CaptureFileInfo* file, RunReport& report,
               std::string& error, const EngineHooks& hooks = {});

// Async-signal-safe. First call: stop receiving, drain, flush, report.
// Second call: stop waiting on full rings too (offline runs), count the rest.
void request_stop();

}  // namespace spanfeed
