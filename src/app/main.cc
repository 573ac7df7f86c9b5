// spanfeed command line: options and config, the capture source, rules,
// metrics and signals, then the run and its summaries. Main (control) lcore;
// allocates.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "app/compose.h"
#include "app/options.h"
#include "app/run_report.h"
#include "app/signals.h"
#include "decode/detect/hs_cache.h"
#include "decode/detect/hyperscan_signatures.h"
#include "rules/rules_control.h"
#include "spanfeed/protocol.h"
#include "metrics/metrics.h"

using namespace spanfeed;
using namespace spanfeed::app;

namespace {

// Reloads the rules on SIGHUP; collects retired rule sets.
void on_tick(RulesControl* rules, bool status_line) {
  if (take_reload_request()) {
    if (rules != nullptr) {
      std::string msg;
      rules->reload(msg);
      std::fprintf(stderr, "%sspanfeed: %s\n", status_line ? "\n" : "", msg.c_str());
    } else {
      std::fprintf(stderr, "spanfeed: SIGHUP: no rules in this run, nothing to reload\n");
    }
  }
  if (rules != nullptr) rules->collect();
}

// How often the "waiting for the broker" line repeats on stderr.
constexpr double kBrokerWaitNoticeS = 5;

// Offline, waiting on a broker that is down: say so every few seconds (even
// with -q: the run is not stuck, it is waiting on purpose).
void notice_broker_waits(const RunReport& r, const Config& cfg, bool status_line,
                         double& last_notice) {
  for (const auto& sk : r.sinks) {
    if (!sk.waiting_for_broker || sk.broker_wait_s < 1 ||
        r.elapsed_s - last_notice < kBrokerWaitNoticeS) {
      continue;
    }
    last_notice = r.elapsed_s;
    std::fprintf(stderr,
                 "%sspanfeed: %s: waiting for the broker for %.0f s, %llu record(s) not yet "
                 "delivered; offline runs lose nothing: Ctrl-C flushes for %.0f s more then "
                 "gives up, a second Ctrl-C gives up now\n",
                 status_line ? "\n" : "", sk.output.c_str(), sk.broker_wait_s,
                 static_cast<unsigned long long>(sk.records - sk.delivered - sk.failed - sk.dropped),
                 cfg.kafka_flush_timeout_s);
  }
}

// Offline runs promise to lose nothing: true when something was lost anyway
// (sinks failed or dropped records, records found no batch, or packets
// found no ring space after a second signal).
bool offline_losses(const RunReport& r) {
  if (!r.policy.is_lossless()) return false;
  if (r.rx_outcome(RxOutcome::kRingFull) != 0) return true;
  for (const auto& w : r.workers) {
    if (w.records.dropped != 0) return true;
  }
  for (const auto& sk : r.sinks) {
    if (sk.failed + sk.dropped != 0 || sk.queued != 0) return true;
  }
  return false;
}

// Lets a scraper collect the final numbers. The signal that stopped the
// capture (systemctl stop) does not end this wait; one sent after the final
// numbers were published does.
void linger(double seconds, unsigned signals_at_final) {
  auto until = std::chrono::steady_clock::now() +
               std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  while (std::chrono::steady_clock::now() < until && stop_signals() == signals_at_final) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

int main(int argc, char** argv) {
  CommandLine cl;
  if (int rc = parse_command_line(argc, argv, cl); rc >= 0) return rc;
  Config& cfg = cl.cfg;
  // Start-up timeline (--log-level info): probe, rules, metrics, then the
  // engine prints its own.
  const bool verbose = cfg.log_level == "info" || cfg.log_level == "debug";
  const auto t_main = std::chrono::steady_clock::now();
  std::string timeline;
  auto mark = [&](const char* what) {
    if (!verbose) return;
    char buf[64];
    std::snprintf(buf, sizeof(buf), " %s %.1f", what,
                  std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_main).count());
    timeline += buf;
  };

  RunReport report;
  report.source = source_name(cfg);
  std::optional<CaptureFileInfo> file;
  if (int rc = prepare_source(cfg, file); rc != 0) return rc;
  if (!cl.check_config.empty()) return check_config(cfg, cl.check_config, report.source);
  if (file) size_to_capture(cfg, *file);
  mark("probe");
  if (verbose && file && !file->counted) {
    std::fprintf(stderr, "spanfeed: capture file of %llu bytes: records counted as they are read\n",
                 static_cast<unsigned long long>(file->file_size));
  }

  // Rules and the protocol signatures: Hyperscan compiles (or loads
  // from cache_dir) them on a helper thread while the EAL starts; the engine
  // waits for them before it makes the first handler. A bad rule is still a
  // start-up error naming it (exit 2), before any packet is read.
  set_hs_cache_dir(resolve_hs_cache_dir(cfg.cache_dir));
  std::unique_ptr<RulesControl> rules;
  std::future<std::unique_ptr<RulesControl>> compiling = std::async(std::launch::async, [&cfg] {
    if (cfg.job == JobKind::kRecords) {
      HyperscanSignatures::compile_error();  // the workers' signature database
      prepare_decoders();                    // libraries the decoders initialise once (OpenSSL)
    }
    return make_rules_control(cfg);
  });
  auto await_rules = [&]() -> RulesControl* {
    if (compiling.valid()) rules = compiling.get();  // rethrows the ConfigError of a bad rule
    return rules.get();
  };
  install_signal_handlers();

  std::unique_ptr<MetricsServer> metrics_server;
  const bool serving = cfg.metrics_listen != "off";
  if (metrics_read(cfg)) {
    std::string err;
    metrics_server = MetricsServer::start(cfg.metrics_listen, err);
    if (!metrics_server) {
      std::fprintf(stderr, "spanfeed: metrics.listen (--metrics): %s\n", err.c_str());
      return kExitUsage;
    }
    // Its thread starts before the EAL pins this one: it floats on the process's CPUs.
    if (cfg.remote_write.enabled() && !metrics_server->start_remote_write(cfg.remote_write, err)) {
      std::fprintf(stderr, "spanfeed: %s\n", err.c_str());
      return kExitUsage;
    }
    if (serving && !cfg.quiet) {
      std::fprintf(stderr, "spanfeed: metrics on http://%s:%d/metrics\n",
                   cfg.metrics_listen.substr(0, cfg.metrics_listen.rfind(':')).c_str(),
                   metrics_server->port());
    }
  }
  // The status line: on a terminal only, one line rewritten every second.
  StatusLine status(cfg.status_line && !cfg.quiet && isatty(STDERR_FILENO));
  // Signals received by the time the final numbers were published: the one
  // that stopped the capture is among them; only a later one ends the linger.
  unsigned signals_at_final = 0;
  double last_wait_notice = -kBrokerWaitNoticeS;
  RunCallbacks cb;
  cb.on_report = [&](const RunReport& r, bool final) {
    if (final) signals_at_final = stop_signals();
    // The final numbers are published for a linger or a remote writer to take; with neither,
    // nobody can read them: the server stops while the run tears down.
    if (metrics_server && final && !final_numbers_read(cfg)) {
      metrics_server->stop_serving();
    } else if (metrics_server) {
      metrics_server->publish(r, final);
    }
    if (!final) notice_broker_waits(r, cfg, status.enabled(), last_wait_notice);
    status.update(r, final);
  };
  cb.on_tick = [&] { on_tick(rules.get(), status.enabled()); };

  std::string error;
  if (file) {
    report.capture = {true, file->snaplen, file->packets, file->truncated_by_snaplen,
                      file->damaged, file->read_error};
  }
  mark("engine-entry");
  if (verbose) std::fprintf(stderr, "spanfeed: start-up (ms from main):%s\n", timeline.c_str());
  int rc = run_capture(cfg, file ? &*file : nullptr, await_rules, cb, report, error);
  if (verbose) {
    const HsCacheStats hs = hs_cache_stats();
    const std::string dir = hs_cache_dir();
    std::fprintf(stderr, "spanfeed: hyperscan databases: %u loaded from cache, %u compiled, %u stored (cache_dir %s)\n",
                 hs.loaded, hs.compiled, hs.stored, dir.empty() ? "off" : dir.c_str());
  }
  if (file && !file->repaired_path.empty()) std::remove(file->repaired_path.c_str());
  if (rc != 0) {
    std::fprintf(stderr, "spanfeed: %s\n", error.c_str());
    return rc == kExitUsage ? kExitUsage : kExitRuntime;
  }
  if (metrics_server) {
    // The final snapshot is out: push it now (bounded by remote_write.timeout_s).
    const std::string rw = metrics_server->finish_remote_write();
    if (!rw.empty()) std::fprintf(stderr, "spanfeed: %s\n", rw.c_str());
  }
  if (!write_summaries(cfg, report)) return kExitRuntime;
  int exit_code = 0;
  if (offline_losses(report)) {
    std::fprintf(stderr, "spanfeed: offline run did not deliver everything (see the summary's "
                         "ledger: records dropped, sinks failed/dropped, ring_full); exit code %d\n",
                 kExitUndelivered);
    exit_code = kExitUndelivered;
  } else if (report.capture.damaged) {
    exit_code = kExitDamagedFile;
  }
  if (serving && cfg.metrics_linger_s > 0) linger(cfg.metrics_linger_s, signals_at_final);
  return exit_code;
}
