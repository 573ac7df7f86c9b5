// spanfeed command line: parse options and config, probe the capture file,
// run the engine, print and write the summary. Main (control) lcore; allocates.
#include <CLI/CLI.hpp>
#include <pcap/pcap.h>

#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <chrono>
#include <csignal>
#include <thread>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "spanfeed/capture_file.h"
#include "spanfeed/config.h"
#include "spanfeed/content.h"
#include "spanfeed/engine.h"
#include "spanfeed/export.h"
#include "spanfeed/jobs.h"
#include "spanfeed/metrics.h"
#include "spanfeed/summary.h"

namespace {

std::atomic<unsigned> g_signals{0};  // SIGINT/SIGTERM received so far
void on_signal(int) {
  spanfeed::request_stop();
  g_signals.fetch_add(1);
}
std::atomic<bool> g_reload{false};  // SIGHUP: reload the content rules
void on_hangup(int) { g_reload.store(true); }

// Exit codes (README "Exit codes", docs/troubleshooting.md).
constexpr int kExitRuntime = 1;      // start-up failed (EAL, ports, memory)
constexpr int kExitUsage = 2;        // bad arguments or configuration
constexpr int kExitDamagedFile = 3;  // the capture file has unreadable records: read up to them
constexpr int kExitUndelivered = 4;  // offline: some packet or record was not delivered

// Below this snapshot length a capture keeps headers but loses payloads.
constexpr uint32_t kShortSnaplen = 256;
// How often the "waiting for the broker" line repeats on stderr.
constexpr double kBrokerWaitNoticeS = 5;

// Offline runs promise to lose nothing: true when something was lost anyway
// (sinks failed or dropped records, records found no batch, or packets
// found no ring space after a second signal).
bool offline_losses(const spanfeed::RunReport& r) {
  if (r.mode != "offline") return false;
  if (r.rx_outcome(spanfeed::RxOutcome::kRingFull) != 0) return true;
  for (const auto& w : r.workers) {
    if (w.records.dropped != 0) return true;
  }
  for (const auto& sk : r.sinks) {
    if (sk.failed + sk.dropped != 0 || sk.queued != 0) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  using spanfeed::Config;
  using spanfeed::ConfigError;

  CLI::App app{
      "spanfeed: capture appliance. Reads a SPAN port, live interface or capture file through "
      "DPDK, hashes flows onto pinned worker lcores and runs a job on every packet.\n\n"
      "Examples:\n"
      "  spanfeed --pcap trace.pcap --workers 2 --job payload-sum\n"
      "  spanfeed --iface veth1 --workers 4 --duration 60\n"
      "  spanfeed --eal \"-l 0-5 -a 0000:3b:00.0\" -c /etc/spanfeed/spanfeed.yaml\n",
      "spanfeed"};
  app.set_version_flag("--version", "spanfeed 0.1.0");
  Config cfg;
  std::string config_file, pcap, iface, eal, mode, job, summary_json, log_level, cpus;
  uint32_t workers = 0, rx_lcores = 0, ring_size = 0, burst = 0, mempool = 0;
  double duration = -1;
  bool infinite = false, quiet = false;
  std::string check_config;
  app.add_option("--check-config", check_config,
                 "Validate a config file (keys, keys given twice, values, CPUs, mempool size, capture "
                 "file, filter, outputs and their paths, Kafka properties, metrics address, decoder "
                 "settings) without capturing; exit 0 when it is good, 2 with the problem")
      ->check(CLI::ExistingFile);
  app.add_option("-c,--config", config_file,
                 "YAML config file (see conf/spanfeed.yaml); command-line options override it")
      ->check(CLI::ExistingFile);
  app.add_option("--pcap", pcap,
                 "Read a capture file (pcap or pcapng; Ethernet, Linux cooked v1/v2, NULL/loopback "
                 "or raw IP) through the net_pcap vdev. Offline and lossless by default");
  app.add_flag("--infinite", infinite,
               "With --pcap: replay the file from memory forever (net_pcap infinite_rx=1), for "
               "throughput runs; live mode; stop with --duration or Ctrl-C");
  app.add_option("--iface", iface, "Capture live from a Linux interface (net_af_packet vdev)");
  std::string filter;
  app.add_option("--filter", filter,
                 "Capture filter, a tcpdump expression (e.g. \"tcp port 3306 or port 53\"), compiled "
                 "with libpcap and run as eBPF (rte_bpf) on the RX lcores; rejected packets are "
                 "counted as filtered");
  app.add_option("--eal", eal,
                 "Raw EAL arguments, appended to the generated ones (e.g. \"-a 0000:3b:00.0\" "
                 "for a NIC bound to vfio-pci, or \"-l 0-7\" to choose lcores yourself)");
  app.add_option("--mode", mode,
                 "auto (default: offline for --pcap, live otherwise), offline (RX waits for ring "
                 "space, nothing dropped) or live (a full ring is a counted drop)")
      ->check(CLI::IsMember({"auto", "offline", "live"}));
  app.add_option("-w,--workers", workers, "Worker lcores (default 2)")->check(CLI::Range(1, 256));
  app.add_option("--rx-lcores", rx_lcores, "RX lcores, one RX queue each (default 1)")
      ->check(CLI::Range(1, 64));
  app.add_option("--cpus", cpus,
                 "Comma-separated CPUs to place lcores on, round-robin (default: this process's "
                 "CPU affinity); lcore 0 is the control core");
  app.add_option("--ring-size", ring_size, "Slots per (RX, worker) ring, power of two (default 4096)");
  app.add_option("--burst", burst, "RX and ring burst size (default 32)")->check(CLI::Range(1, 512));
  app.add_option("--mempool-size", mempool, "Mbufs in the pool (default: sized from rings)");
  app.add_option("--job", job,
                 "What workers do with packets: payload-sum (default: sum IP payload bytes), "
                 "flows (flow table + TCP reassembly, with its ledger in the summary) or records "
                 "(flows + protocol decoders: one record per request/response to --output)")
      ->check(CLI::IsMember({"payload-sum", "flows", "records"}));
  std::vector<std::string> outputs;
  app.add_option("--output", outputs,
                 "With --job records: where roundtrip records go, repeatable: jsonl:PATH "
                 "(JSON lines appended to PATH; jsonl:- for stdout), "
                 "kafka:HOST:PORT[,HOST:PORT...]/TOPIC ({protocol} in TOPIC: one topic per "
                 "protocol; librdkafka properties under kafka.properties in the config), "
                 "gelf-udp:HOST:PORT (GELF, optionally compressed, chunked; gelf.* in the config), "
                 "gelf-tcp:HOST:PORT (GELF, null-framed, reconnecting)");
  std::string rules_file;
  app.add_option("--rules", rules_file,
                 "With --job records: content rules file (YAML, see conf/rules.yaml): Hyperscan "
                 "patterns scanned over each reassembled direction; matches tag records, are "
                 "counted per rule in /metrics and can redact exported fields. SIGHUP reloads it");
  std::string recording_id;
  app.add_option("--recording-id", recording_id, "Label added to every record as recording_id");
  std::string flows_out;
  app.add_option("--flows-out", flows_out,
                 "With --job flows: write one JSON line per closed flow (endpoints, close reason, "
                 "per-direction stream bytes, gaps, FNV-1a 64 digest) to PATH");
  app.add_option("--duration", duration, "Stop after this many seconds (0: end of input or signal)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--summary-json", summary_json, "Write the end-of-run summary as JSON to PATH");
  app.add_option("--log-level", log_level, "DPDK log level (default warning)");
  app.add_flag("-q,--quiet", quiet, "Do not print the human-readable summary or the status line");
  std::string metrics;
  double metrics_linger = -1;
  app.add_option("--metrics", metrics,
                 "Serve Prometheus /metrics (and /health) on HOST:PORT (default 127.0.0.1:9090; "
                 "port 0 = any free port, printed at start), or 'off'");
  app.add_option("--metrics-linger", metrics_linger,
                 "Keep serving the final /metrics this many seconds after the run ends")
      ->check(CLI::NonNegativeNumber);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }

  if (!check_config.empty()) config_file = check_config;
  try {
    if (!config_file.empty()) spanfeed::load_config_file(config_file, cfg);
    if (!pcap.empty()) { cfg.pcap_file = pcap; cfg.iface.clear(); }
    if (!iface.empty()) { cfg.iface = iface; cfg.pcap_file.clear(); }
    if (!pcap.empty() && !iface.empty()) throw ConfigError("give --pcap or --iface, not both");
    if (infinite) cfg.pcap_infinite = true;
    if (!eal.empty()) cfg.eal_args = eal;
    if (!filter.empty()) cfg.filter = filter;
    if (!mode.empty()) cfg.mode = spanfeed::parse_run_mode(mode);
    if (workers) cfg.workers = workers;
    if (rx_lcores) cfg.rx_lcores = rx_lcores;
    if (ring_size) cfg.ring_size = ring_size;
    if (burst) cfg.burst_size = burst;
    if (mempool) cfg.mempool_size = mempool;
    if (!job.empty()) cfg.job = spanfeed::parse_job(job);
    if (duration >= 0) cfg.duration_s = duration;
    if (!summary_json.empty()) cfg.summary_json = summary_json;
    if (!flows_out.empty()) cfg.flows_out = flows_out;
    if (!outputs.empty()) cfg.outputs = outputs;
    if (!recording_id.empty()) cfg.recording_id = recording_id;
    if (!rules_file.empty()) cfg.rules_file = rules_file;
    if (cfg.job == spanfeed::JobKind::kRecords && cfg.outputs.empty()) cfg.outputs = {"jsonl:-"};
    for (const auto& o : cfg.outputs) spanfeed::parse_output(o);  // reject bad ones now
    if (!log_level.empty()) cfg.log_level = log_level;
    if (quiet) cfg.quiet = true;
    if (!metrics.empty()) cfg.metrics_listen = metrics;
    if (metrics_linger >= 0) cfg.metrics_linger_s = metrics_linger;
    if (!cpus.empty()) {
      cfg.cpus.clear();
      for (const auto& tok : CLI::detail::split(cpus, ',')) {
        try {
          size_t used = 0;
          int c = std::stoi(tok, &used);
          if (used != tok.size() || c < 0) throw std::invalid_argument(tok);
          cfg.cpus.push_back(c);
        } catch (const std::exception&) {
          throw ConfigError("--cpus: '" + tok + "' is not a CPU number");
        }
      }
    }
    if (cfg.pcap_infinite && cfg.pcap_file.empty()) {
      throw ConfigError("--infinite replays a capture file: give --pcap FILE");
    }
    if (cfg.pcap_file.find(',') != std::string::npos) {
      throw ConfigError("capture file path '" + cfg.pcap_file +
                        "' contains a comma, which DPDK vdev arguments cannot carry; rename it");
    }
    spanfeed::validate_config(cfg);
    if (cfg.job == spanfeed::JobKind::kRecords) {
      std::vector<spanfeed::OutputSpec> specs;
      for (const auto& o : cfg.outputs) specs.push_back(spanfeed::parse_output(o));
      spanfeed::check_outputs(specs, cfg.kafka_props);  // writable files, valid Kafka properties
    }
    if (!cfg.rules_file.empty() && cfg.job != spanfeed::JobKind::kRecords) {
      throw ConfigError("content rules ('" + cfg.rules_file + "') apply to records: use --job records");
    }
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "spanfeed: %s\n", e.what());
    return kExitUsage;
  }

  spanfeed::RunReport report;
  report.source = !cfg.pcap_file.empty() ? cfg.pcap_file
                  : !cfg.iface.empty()   ? "iface:" + cfg.iface
                                         : "eal:" + cfg.eal_args;
  std::optional<spanfeed::CaptureFileInfo> file;
  if (!cfg.pcap_file.empty()) {
    std::string err;
    file = spanfeed::probe_capture_file(cfg.pcap_file, err);
    if (!file) {
      std::fprintf(stderr, "spanfeed: %s\n", err.c_str());
      return kExitUsage;
    }
    if (!file->repaired_path.empty()) {
      std::fprintf(stderr, "spanfeed: warning: %s\n", file->warning.c_str());
      cfg.pcap_file = file->repaired_path;
    }
    if (file->damaged) {
      std::fprintf(stderr,
                   "spanfeed: warning: '%s' is damaged: read stopped after %llu record(s): %s; "
                   "those are processed, the rest of the file is not (exit code %d)\n",
                   report.source.c_str(), static_cast<unsigned long long>(file->packets),
                   file->read_error.c_str(), kExitDamagedFile);
    }
    if (file->snaplen < kShortSnaplen) {
      std::fprintf(stderr,
                   "spanfeed: warning: '%s' was captured with snaplen %u: packets are cut to %u "
                   "bytes (%llu of %llu record(s) are shorter than on the wire), so payloads are "
                   "lost and show as gaps; few or no records can be built (capture with -s 0)\n",
                   report.source.c_str(), file->snaplen, file->snaplen,
                   static_cast<unsigned long long>(file->truncated_by_snaplen),
                   static_cast<unsigned long long>(file->packets));
    }
  }

  if (!cfg.filter.empty()) {  // a bad expression is a usage error, found before the EAL starts
    bpf_program prog{};
    std::string err;
    if (!spanfeed::compile_capture_filter(cfg.filter, file ? file->dlt : 1, prog, err)) {
      std::fprintf(stderr, "spanfeed: %s\n", err.c_str());
      return kExitUsage;
    }
    pcap_freecode(&prog);
  }

  if (!check_config.empty()) {
    // Everything the run would check before the EAL starts, and the parts of
    // the per-worker settings that are only checked when workers are built.
    try {
      if (cfg.metrics_listen != "off") {  // bind it once, as the run would
        std::string err;
        if (!spanfeed::MetricsServer::start(cfg.metrics_listen, err)) {
          throw ConfigError("metrics.listen (--metrics): " + err);
        }
      }
      if (cfg.job == spanfeed::JobKind::kRecords) {
        std::string why = spanfeed::validate(spanfeed::decode_config(cfg, 0));
        if (!why.empty()) throw ConfigError(why);
        auto rules = spanfeed::make_rules_control(cfg);  // loads and compiles the rules
        if (rules) {
          auto r = rules->report();
          std::printf("rules: %s%s%" PRIu64 " rule(s), %" PRIu64 " built-in redaction rule(s)\n",
                      cfg.rules_file.c_str(), cfg.rules_file.empty() ? "" : ": ", r.rules, r.builtin);
        }
      }
    } catch (const ConfigError& e) {
      std::fprintf(stderr, "spanfeed: %s: %s\n", check_config.c_str(), e.what());
      return kExitUsage;
    }
    std::printf("%s: OK: job %s, %u RX lcore(s), %u worker(s), source %s%s%s\n",
                check_config.c_str(), spanfeed::to_string(cfg.job), cfg.rx_lcores, cfg.workers,
                report.source.c_str(), cfg.filter.empty() ? "" : ", filter ",
                cfg.filter.c_str());
    for (const auto& o : cfg.outputs) std::printf("  output %s\n", o.c_str());
    return 0;
  }

  // Content rules: compiled here, before the EAL starts, so a bad rule is a
  // start-up error naming it.
  std::unique_ptr<spanfeed::RulesControl> rules;
  try {
    rules = spanfeed::make_rules_control(cfg);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "spanfeed: %s\n", e.what());
    return kExitUsage;
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  struct sigaction hup {};
  hup.sa_handler = on_hangup;
  sigemptyset(&hup.sa_mask);
  hup.sa_flags = SA_RESTART;
  sigaction(SIGHUP, &hup, nullptr);

  std::unique_ptr<spanfeed::MetricsServer> metrics_server;
  if (cfg.metrics_listen != "off") {
    std::string err;
    metrics_server = spanfeed::MetricsServer::start(cfg.metrics_listen, err);
    if (!metrics_server) {
      std::fprintf(stderr, "spanfeed: metrics.listen (--metrics): %s\n", err.c_str());
      return kExitUsage;
    }
    if (!cfg.quiet) {
      std::fprintf(stderr, "spanfeed: metrics on http://%s:%d/metrics\n",
                   cfg.metrics_listen.substr(0, cfg.metrics_listen.rfind(':')).c_str(),
                   metrics_server->port());
    }
  }
  // The status line: on a terminal only, one line rewritten every second.
  bool status = cfg.status_line && !cfg.quiet && isatty(STDERR_FILENO);
  uint64_t last_rx = 0, last_rt = 0;
  double last_t = 0;
  spanfeed::EngineHooks hooks;
  // Signals received by the time the final numbers were published: the one
  // that stopped the capture is among them; only a later one ends the linger.
  unsigned signals_at_final = 0;
  double last_wait_notice = -kBrokerWaitNoticeS;
  hooks.on_snapshot = [&](const spanfeed::RunReport& r, bool final) {
    if (final) signals_at_final = g_signals.load();
    if (metrics_server) metrics_server->publish(r, final);
    for (const auto& sk : r.sinks) {
      // Offline, waiting on a broker that is down: say so, every few seconds
      // (even with -q: the run is not stuck, it is waiting on purpose).
      if (final || !sk.waiting_for_broker || sk.broker_wait_s < 1 ||
          r.elapsed_s - last_wait_notice < kBrokerWaitNoticeS) {
        continue;
      }
      last_wait_notice = r.elapsed_s;
      std::fprintf(stderr,
                   "%sspanfeed: %s: waiting for the broker for %.0f s, %llu record(s) not yet "
                   "delivered; offline runs lose nothing: Ctrl-C flushes for %.0f s more then "
                   "gives up, a second Ctrl-C gives up now\n",
                   status ? "\n" : "", sk.output.c_str(), sk.broker_wait_s,
                   static_cast<unsigned long long>(sk.records - sk.delivered - sk.failed - sk.dropped),
                   cfg.kafka_flush_timeout_s);
    }
    if (!status) return;
    if (final) {
      std::fputs("\n", stderr);
      return;
    }
    uint64_t rx = r.rx_received(), rt = 0, drops = r.rx_outcome(spanfeed::RxOutcome::kRingFull);
    for (const auto& n : r.nics) drops += n.imissed + n.rx_nombuf;
    for (const auto& w : r.workers) {
      rt += w.records.decode.records_emitted;
      drops += w.records.dropped;
    }
    double dt = r.elapsed_s - last_t;
    char progress[64] = "";
    if (r.expected_packets > 0) {
      std::snprintf(progress, sizeof(progress), "  file %.0f%%", 100.0 * rx / r.expected_packets);
    }
    std::fprintf(stderr, "\r[spanfeed] %7.1f s  rx %8.3f Mpps  drops %llu  roundtrips %9.0f/s%s   ",
                 r.elapsed_s, dt > 0 ? (rx - last_rx) / dt / 1e6 : 0.0,
                 static_cast<unsigned long long>(drops), dt > 0 ? (rt - last_rt) / dt : 0.0, progress);
    last_rx = rx;
    last_rt = rt;
    last_t = r.elapsed_s;
  };
  hooks.rules = rules.get();
  hooks.on_tick = [&]() {
    if (g_reload.exchange(false)) {
      if (rules) {
        std::string msg;
        const bool ok = rules->reload(msg);
        std::fprintf(stderr, "%sspanfeed: %s\n", status ? "\n" : "", msg.c_str());
        (void)ok;
      } else {
        std::fprintf(stderr, "spanfeed: SIGHUP: no content rules in this run, nothing to reload\n");
      }
    }
    if (rules) rules->collect();
  };
  std::string error;
  if (file) {
    report.capture = {true, file->snaplen, file->packets, file->truncated_by_snaplen,
                      file->damaged, file->read_error};
  }
  int rc = spanfeed::run_engine(cfg, file ? &*file : nullptr, report, error, hooks);
  if (file && !file->repaired_path.empty()) std::remove(file->repaired_path.c_str());
  if (rc != 0) {
    std::fprintf(stderr, "spanfeed: %s\n", error.c_str());
    return kExitRuntime;
  }
  // Records on stdout keep stdout to themselves: the summary goes to stderr.
  bool records_on_stdout = false;
  for (const auto& o : cfg.outputs) records_on_stdout |= o == "jsonl:-";
  if (!cfg.quiet) std::fputs(spanfeed::to_text(report).c_str(), records_on_stdout ? stderr : stdout);
  if (!cfg.summary_json.empty()) {
    std::ofstream out(cfg.summary_json);
    out << spanfeed::to_json(report).dump(2) << "\n";
    if (!out) {
      std::fprintf(stderr, "spanfeed: cannot write summary to '%s'\n", cfg.summary_json.c_str());
      return kExitRuntime;
    }
  }
  int exit_code = 0;
  if (offline_losses(report)) {
    std::fprintf(stderr, "spanfeed: offline run did not deliver everything (see the summary's "
                         "ledger: records dropped, sinks failed/dropped, ring_full); exit code %d\n",
                 kExitUndelivered);
    exit_code = kExitUndelivered;
  } else if (report.capture.damaged) {
    exit_code = kExitDamagedFile;
  }
  if (metrics_server && cfg.metrics_linger_s > 0) {
    // Let a scraper collect the final numbers. The signal that stopped the
    // capture (systemctl stop) does not end this wait; one sent after the
    // final numbers were published does.
    auto until = std::chrono::steady_clock::now() +
                 std::chrono::milliseconds(static_cast<int64_t>(cfg.metrics_linger_s * 1000));
    while (std::chrono::steady_clock::now() < until && g_signals.load() == signals_at_final) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  return exit_code;
}
