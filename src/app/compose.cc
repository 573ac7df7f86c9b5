// The composition root: config into engine, jobs, exporter and rules; their
// counters into the run report. Control core; allocates.
#include "app/compose.h"

#include <pcap/pcap.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <vector>

#include "app/options.h"
#include "app/run_report.h"
#include "red/merger.h"
#include "rules/rules_control.h"
#include "jobs/jobs.h"
#include "metrics/metrics.h"

namespace spanfeed::app {
namespace {

// Below this snapshot length a capture keeps headers but loses payloads.
constexpr uint32_t kShortSnaplen = 256;
// Files at least this large are counted as they are read (prepare_source).
constexpr uintmax_t kCountFilesBelow = uintmax_t{64} << 20;

void warn_damaged(const std::string& source, const CaptureFileInfo& file) {
  std::fprintf(stderr,
               "spanfeed: warning: '%s' is damaged: read stopped after %llu record(s): %s; "
               "those are processed, the rest of the file is not (exit code %d)\n",
               source.c_str(), static_cast<unsigned long long>(file.packets), file.read_error.c_str(),
               kExitDamagedFile);
}

// A file counted as it was read, once read: its records, and libpcap's
// verdict where the reader stopped before the end (libpcap reads the file
// again and has the last word on what is damaged, where and why).
void settle_uncounted_file(const Config& cfg, const EngineCounters::FileRead& read, RunReport& rep) {
  rep.capture.records_read = read.records;
  rep.capture.truncated_by_snaplen = read.truncated_by_snaplen;
  if (!read.ended || !read.stopped_early) return;
  std::string err;
  std::optional<CaptureFileInfo> verdict = probe_capture_file(cfg.pcap_file, err);
  if (!verdict) return;
  rep.capture.records_read = verdict->packets;
  rep.capture.truncated_by_snaplen = verdict->truncated_by_snaplen;
  rep.capture.damaged = verdict->damaged;
  rep.capture.read_error = verdict->read_error;
  if (verdict->damaged) warn_damaged(cfg.pcap_file, *verdict);
}

}  // namespace

EngineConfig engine_config(const Config& cfg, const CaptureFileInfo* file) {
  EngineConfig e;
  e.pcap_file = cfg.pcap_file;
  e.pcap_infinite = cfg.pcap_infinite;
  e.pcap_pmd = cfg.pcap_pmd;
  e.file = file;
  e.iface = cfg.iface;
  e.eal_args = cfg.eal_args;
  e.filter = cfg.filter;
  e.filter_inner = cfg.filter_inner;
  e.policy = cfg.capture_policy();
  e.duration_s = cfg.duration_s;
  e.rx_lcores = cfg.rx_lcores;
  e.workers = cfg.workers;
  e.cpus = cfg.cpus;
  e.hash_vlan = cfg.hash_vlan;
  e.decap = cfg.decap;
  e.defrag = cfg.defrag;
  e.defrag_max_datagrams = cfg.defrag_max_datagrams;
  e.defrag_timeout_s = cfg.defrag_timeout_s;
  // An --infinite replay sends the same fragments again every pass, within
  // the window when the file is small: those are not mirror copies.
  if (!cfg.pcap_infinite && (cfg.pcap_file.empty() ? cfg.dedup_live : cfg.dedup_files)) {
    e.defrag_dedup_window_ns = uint64_t{cfg.dedup_window_us} * 1000;
  }
  e.ring_size = cfg.ring_size;
  e.burst_size = cfg.burst_size;
  e.mempool_size = cfg.mempool_size;
  e.mempool_cache = cfg.mempool_cache;
  e.mbuf_data_room = cfg.mbuf_data_room;
  e.eal_memory_mb = cfg.eal_memory_mb;
  e.log_level = cfg.log_level;
  return e;
}

ExportConfig export_config(const Config& cfg) {
  ExportConfig ec;
  for (const auto& o : cfg.outputs) ec.outputs.push_back(parse_output(o));
  ec.policy = cfg.capture_policy();
  ec.gelf.compression = cfg.gelf_compression == "gzip"   ? GelfConfig::Compression::kGzip
                        : cfg.gelf_compression == "zlib" ? GelfConfig::Compression::kZlib
                                                         : GelfConfig::Compression::kNone;
  ec.gelf.chunk_size = cfg.gelf_chunk_size;
  ec.gelf.retry_s = cfg.gelf_retry_s;
  ec.gelf.tls = {cfg.gelf_tls_ca, cfg.gelf_tls_cert, cfg.gelf_tls_key, cfg.gelf_tls_server_name, cfg.gelf_tls_verify};
  ec.jsonl_rotate_bytes = cfg.jsonl_rotate_bytes;
  ec.jsonl_keep = cfg.jsonl_keep;
  ec.threads = cfg.export_threads;
  ec.kafka_props = cfg.kafka_props;
  ec.kafka_flush_timeout_s = cfg.kafka_flush_timeout_s;
  ec.stop = &stop_flag();  // sinks and workers end their offline waits on a forced stop
  ec.abandon = &abandon_flag();
  return ec;
}

std::string source_name(const Config& cfg) {
  return !cfg.pcap_file.empty() ? cfg.pcap_file
         : !cfg.iface.empty()   ? "iface:" + cfg.iface
                                : "eal:" + cfg.eal_args;
}

int prepare_source(Config& cfg, std::optional<CaptureFileInfo>& file) {
  if (!cfg.pcap_file.empty()) {
    std::string err;
    // A large finite file on the mapped reader is counted as it is read:
    // counting first costs a pass over the whole file (40 ms for 180 MB),
    // and 64 MiB hold room for 1.8 M records, more than the default flow
    // table and arena need, so its tables get the configured sizes. A smaller
    // file is counted first (a few milliseconds), so that its tables are
    // sized to its records; net_pcap and an infinite replay size their pools
    // from the count.
    std::error_code size_err;
    const uintmax_t size = std::filesystem::file_size(cfg.pcap_file, size_err);
    const bool count = cfg.pcap_pmd || cfg.pcap_infinite || size_err || size < kCountFilesBelow;
    file = probe_capture_file(cfg.pcap_file, err, count);
    // A short snapshot length is said, with its cost, before the run.
    if (file && !file->counted && file->snaplen < kShortSnaplen) file = probe_capture_file(cfg.pcap_file, err);
    if (!file) {
      std::fprintf(stderr, "spanfeed: %s\n", err.c_str());
      return kExitUsage;
    }
    const std::string source = cfg.pcap_file;
    if (!file->repaired_path.empty()) {
      std::fprintf(stderr, "spanfeed: warning: %s\n", file->warning.c_str());
      cfg.pcap_file = file->repaired_path;
    }
    if (file->damaged) warn_damaged(source, *file);
    if (file->snaplen < kShortSnaplen) {
      std::fprintf(stderr,
                   "spanfeed: warning: '%s' was captured with snaplen %u: packets are cut to %u "
                   "bytes (%llu of %llu record(s) are shorter than on the wire), so payloads are "
                   "lost and show as gaps; few or no records can be built (capture with -s 0)\n",
                   source.c_str(), file->snaplen, file->snaplen,
                   static_cast<unsigned long long>(file->truncated_by_snaplen),
                   static_cast<unsigned long long>(file->packets));
    }
  }
  if (!cfg.filter.empty()) {  // a bad expression is a usage error, found before the EAL starts
    bpf_program prog{};
    std::string err;
    if (!compile_capture_filter(cfg.filter, cfg.filter_inner ? 12 /* DLT_RAW */ : file ? file->dlt : 1, prog, err)) {
      std::fprintf(stderr, "spanfeed: %s\n", err.c_str());
      return kExitUsage;
    }
    pcap_freecode(&prog);
  }
  return 0;
}

void size_to_capture(Config& cfg, const CaptureFileInfo& file) {
  if (cfg.pcap_infinite) return;  // replays for ever: the file bounds nothing
  // Small files still get a little room (cheap, and tables like it).
  constexpr uint64_t kMinFlows = 64;
  const uint64_t records = max_flow_records(file);
  const uint64_t flows = std::max<uint64_t>(records, kMinFlows);
  cfg.flow_capacity = static_cast<uint32_t>(std::min<uint64_t>(cfg.flow_capacity, flows));
  cfg.rules_max_streams = static_cast<uint32_t>(std::min<uint64_t>(cfg.rules_max_streams, flows));
  // Every out-of-order segment takes whole 2 KiB chunks: at most one per
  // packet plus one per 2 KiB of data.
  constexpr uint64_t kChunk = 2048;
  const uint64_t arena = records * kChunk + (file.counted ? file.bytes : file.file_size);
  const uint64_t mb = std::max<uint64_t>(1, (arena + (1u << 20) - 1) >> 20);
  cfg.reassembly_memory_mb = static_cast<uint32_t>(std::min<uint64_t>(cfg.reassembly_memory_mb, mb));
}

int check_config(const Config& cfg, const std::string& path, const std::string& source) {
  try {
    if (cfg.metrics_listen != "off") {  // bind it once, as the run would
      std::string err;
      if (!MetricsServer::start(cfg.metrics_listen, err)) {
        throw ConfigError("metrics.listen (--metrics): " + err);
      }
    }
    if (cfg.job == JobKind::kRecords) {
      std::string why = validate(decode_config(cfg, 0));
      if (!why.empty()) throw ConfigError(why);
      auto rules = make_rules_control(cfg);  // loads and compiles the rules
      if (rules) {
        auto r = rules->report();
        std::printf("rules: %s%s%" PRIu64 " rule(s), %" PRIu64 " built-in redaction rule(s)\n",
                    cfg.rules_file.c_str(), cfg.rules_file.empty() ? "" : ": ", r.rules, r.builtin);
      }
    }
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "spanfeed: %s: %s\n", path.c_str(), e.what());
    return kExitUsage;
  }
  std::printf("%s: OK: job %s, %u RX lcore(s), %u worker(s), source %s%s%s\n", path.c_str(),
              to_string(cfg.job), cfg.rx_lcores, cfg.workers, source.c_str(),
              cfg.filter.empty() ? "" : ", filter ", cfg.filter.c_str());
  for (const auto& o : cfg.outputs) std::printf("  output %s\n", o.c_str());
  if (cfg.remote_write.enabled()) {
    std::printf("  remote_write %s every %g s\n", cfg.remote_write.url.c_str(), cfg.remote_write.interval_s);
  }
  return 0;
}

bool metrics_read(const Config& cfg) { return cfg.metrics_listen != "off" || cfg.remote_write.enabled(); }

bool final_numbers_read(const Config& cfg) {
  return cfg.remote_write.enabled() || (cfg.metrics_listen != "off" && cfg.metrics_linger_s > 0);
}

int run_capture(const Config& cfg, const CaptureFileInfo* file,
                const std::function<RulesControl*()>& await_rules, const RunCallbacks& cb,
                RunReport& report, std::string& error) {
  std::unique_ptr<Exporter> exporter;
  std::vector<Job*> jobs(cfg.workers, nullptr);  // owned by the engine while it runs
  ReportSources from;
  from.cfg = &cfg;
  from.expected_packets = file != nullptr && !cfg.pcap_infinite ? file->packets : 0;
  from.jobs = &jobs;
  RulesControl* rules = nullptr;
  bool bad_rules = false;
  // RED metrics: settings every worker reads, and the control core's merged series.
  std::unique_ptr<red::Shared> red_shared;
  std::unique_ptr<red::Merger> red_merger;
  // Only /metrics and remote_write read RED series: without either, the
  // workers do not aggregate them.
  if (cfg.job == JobKind::kRecords && cfg.red.enabled && metrics_read(cfg)) {
    red_shared = std::make_unique<red::Shared>(cfg.red);
    red_merger = std::make_unique<red::Merger>(*red_shared, cfg.workers);
    from.red = red_merger.get();
  }

  EngineHooks hooks;
  hooks.start_helpers = [&](std::string& err) {
    // The rules compiled while the EAL started; they must be ready before
    // the first handler is made.
    try {
      rules = await_rules ? await_rules() : nullptr;
    } catch (const ConfigError& e) {
      err = e.what();
      bad_rules = true;
      return false;
    }
    from.rules = rules;
    if (cfg.job == JobKind::kRecords) {
      // Records leave through the exporter thread (off the lcores).
      exporter = Exporter::create(export_config(cfg), cfg.workers, err);
      if (!exporter) return false;
      exporter->start();
      from.exporter = exporter.get();
    }
    return true;
  };
  hooks.make_handler = [&](unsigned worker) -> std::unique_ptr<PacketHandler> {
    std::unique_ptr<Job> job = make_job(cfg, worker, exporter.get(), rules, red_shared.get());
    jobs[worker] = job.get();  // one thread per worker: each writes its own slot
    return job;
  };
  RunReport live;
  live.source = report.source;
  live.capture = report.capture;
  // Every worker has handed over its last batch: drain and flush. Offline,
  // the sinks may wait for a broker for as long as it is down: the engine
  // keeps publishing (the wait shows in /metrics and on stderr) until they end.
  hooks.stop_helpers = [&] {
    if (exporter) exporter->begin_stop();
  };
  hooks.helpers_done = [&](std::chrono::milliseconds wait) { return !exporter || exporter->wait_finished(wait); };
  hooks.on_counters = [&](const EngineCounters& c, bool final) {
    if (final && exporter) exporter->stop();  // joins the finished exporter thread
    RunReport& rep = final ? report : live;
    if (final && !final_numbers_read(cfg)) from.red = nullptr;  // only /metrics reads RED series
    assemble_report(c, from, final, rep);
    if (c.file.present) {  // a file counted as it is read
      rep.file_fraction = c.file.size != 0 ? static_cast<double>(c.file.offset) / static_cast<double>(c.file.size) : 0;
      rep.capture.records_read = c.file.records;  // so far
      if (final) {
        settle_uncounted_file(cfg, c.file, rep);
        if (c.file.ended) rep.expected_packets = rep.capture.records_read;
      }
    }
    if (cb.on_report) cb.on_report(rep, final);
    if (final) jobs.clear();  // the engine destroys them next
  };
  hooks.on_tick = cb.on_tick;
  int rc = run_engine(engine_config(cfg, file), hooks, error);
  if (rc != 0) return bad_rules ? kExitUsage : rc;
  if (!cfg.flows_out.empty() &&
      !join_flows_parts(cfg.flows_out, cfg.workers, error)) {
    return 1;
  }
  return 0;
}

}  // namespace spanfeed::app
