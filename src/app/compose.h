// The composition root: turns the Config into the engine's config and its
// packet handlers (jobs), the exporter and its sinks, and the rules,
// and their counters into the run report. Control core; allocates.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "dpdk/engine.h"
#include "core/capture_file.h"
#include "spanfeed/config.h"
#include "export/export.h"
#include "jobs/summary.h"

namespace spanfeed {
class RulesControl;
}

namespace spanfeed::app {

// The DPDK adapter's share of the config.
EngineConfig engine_config(const Config& cfg, const CaptureFileInfo* file);
// The exporter's share (GELF, JSON lines, Kafka).
ExportConfig export_config(const Config& cfg);

// Everything checked before the EAL starts: the capture file (probed, maybe
// repaired; `cfg.pcap_file` then names the repaired copy), the capture
// filter. Returns 0, or kExitUsage with the message printed.
int prepare_source(Config& cfg, std::optional<CaptureFileInfo>& file);

// A finite capture file bounds what a run can hold: no more flows, streams
// or out-of-order bytes per worker than the file has packets and bytes.
// Lowers the per-worker preallocations (flow table, decoder sessions, rules
// streams, reassembly arena) to that bound; never raises them, and never
// changes a record (a table the file cannot fill behaves the same).
void size_to_capture(Config& cfg, const CaptureFileInfo& file);

// --check-config: the per-worker settings and the rules, which a run only
// checks when it builds the workers. Prints OK and returns 0, or the problem
// and kExitUsage.
int check_config(const Config& cfg, const std::string& path, const std::string& source);

// Where the report says the packets come from.
std::string source_name(const Config& cfg);

// Something reads the metrics: /metrics is served or remote_write is on (RED
// series are aggregated only then).
bool metrics_read(const Config& cfg);
// The final numbers, published after the run, are read: by a scraper during
// metrics.linger_s or by the remote writer's last push.
bool final_numbers_read(const Config& cfg);

struct RunCallbacks {
  // Every second while the capture runs (final = false), and once at the end.
  std::function<void(const RunReport&, bool final)> on_report;
  // Every control-loop turn (about 20 ms).
  std::function<void()> on_tick;
};

// Runs the capture `cfg` describes: exporter (records job), one job per
// worker, the engine; then the flows output. `rules` hands over the content
// rules (nullptr: none), waiting for them if they are still compiling; it
// throws ConfigError for a bad rule. 0 with `report` filled, kExitUsage for
// a bad rule, or another non-zero code, with `error` set.
int run_capture(const Config& cfg, const CaptureFileInfo* file,
                const std::function<RulesControl*()>& rules,
                const RunCallbacks& cb, RunReport& report, std::string& error);

}  // namespace spanfeed::app
