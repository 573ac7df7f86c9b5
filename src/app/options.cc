// Command line: CLI11 options over the config file. Control core, start-up;
// allocates.
#include "app/options.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "app/compose.h"
#include "decode/decode_config.h"
#include "export/export.h"
#include "spanfeed/protocol.h"

namespace spanfeed::app {

int parse_command_line(int argc, char** argv, CommandLine& out) {
  Config& cfg = out.cfg;
  std::string& check_config = out.check_config;
  CLI::App app{
      "spanfeed: capture appliance. Reads a SPAN port, live interface or capture file through "
      "DPDK, hashes flows onto pinned worker lcores and runs a job on every packet.\n\n"
      "Examples:\n"
      "  spanfeed --pcap trace.pcap                 # records as JSON lines on stdout\n"
      "  spanfeed --iface veth1 --workers 4 --output kafka:10.0.0.5:9092/spanfeed\n"
      "  spanfeed --pcap trace.pcap --job payload-sum --workers 2   # engine benchmark\n"
      "  spanfeed --eal \"-l 0-5 -a 0000:3b:00.0\" -c /etc/spanfeed/spanfeed.yaml\n",
      "spanfeed"};
  app.set_version_flag("--version", "spanfeed 0.1.0");
  std::string config_file, pcap, iface, eal, mode, job, summary_json, log_level, cpus;
  uint32_t workers = 0, rx_lcores = 0, ring_size = 0, burst = 0, mempool = 0;
  double duration = -1;
  bool infinite = false, quiet = false;
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
                 "or raw IP), mapped once (see --pcap-reader). Offline and lossless by default");
  app.add_flag("--infinite", infinite,
               "With --pcap: replay the file from memory forever, for throughput runs; live "
               "mode; stop with --duration or Ctrl-C");
  std::string reader;
  app.add_option("--pcap-reader", reader,
                 "How --pcap reads the file: mmap (default: mapped once, records attached to mbufs "
                 "without a copy) or net_pcap (the DPDK net_pcap vdev over libpcap, one copy per "
                 "packet)")
      ->check(CLI::IsMember({"mmap", "net_pcap"}));
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
                 "What workers do with packets: records (default: flows + protocol decoders (" +
                     protocol_names() + "; spanfeed-protocols --markdown lists their ports and fields), one "
                 "record per request/response to --output), flows (flow table + TCP reassembly "
                 "only, with its ledger in the summary: diagnosis) or payload-sum (count packets "
                 "and IP payload bytes: benchmarking)")
      ->check(CLI::IsMember({"payload-sum", "flows", "records"}));
  std::vector<std::string> outputs;
  app.add_option("--output", outputs,
                 "Where records go, repeatable (default jsonl:-): jsonl:PATH "
                 "(JSON lines appended to PATH; jsonl:- for stdout), "
                 "kafka:HOST:PORT[,HOST:PORT...]/TOPIC ({protocol} in TOPIC: one topic per "
                 "protocol; librdkafka properties under kafka.properties in the config), "
                 "gelf-udp:HOST:PORT (GELF, optionally compressed, chunked; gelf.* in the config), "
                 "gelf-tcp:HOST:PORT (GELF, null-framed, reconnecting), "
                 "gelf-tls:HOST:PORT (the same over TLS; gelf.tls.* in the config)");
  std::string rules_file;
  app.add_option("--rules", rules_file,
                 "Rules file for the records (YAML, see conf/rules.yaml): Hyperscan "
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
                 "Serve Prometheus /metrics (and /health) on HOST:PORT (default 127.0.0.1:9466; "
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
    if (!config_file.empty()) load_config_file(config_file, cfg, decode_config_keys(cfg, config_file));
    if (!pcap.empty()) { cfg.pcap_file = pcap; cfg.iface.clear(); }
    if (!iface.empty()) { cfg.iface = iface; cfg.pcap_file.clear(); }
    if (!pcap.empty() && !iface.empty()) throw ConfigError("give --pcap or --iface, not both");
    if (infinite) cfg.pcap_infinite = true;
    if (!reader.empty()) cfg.pcap_pmd = reader == "net_pcap";
    if (!eal.empty()) cfg.eal_args = eal;
    if (!filter.empty()) cfg.filter = filter;
    if (!mode.empty()) cfg.mode = parse_run_mode(mode);
    if (workers) cfg.workers = workers;
    if (rx_lcores) cfg.rx_lcores = rx_lcores;
    if (ring_size) cfg.ring_size = ring_size;
    if (burst) cfg.burst_size = burst;
    if (mempool) cfg.mempool_size = mempool;
    if (!job.empty()) {
      cfg.job = parse_job(job);
    } else if (!outputs.empty() || !rules_file.empty()) {
      cfg.job = JobKind::kRecords;  // only records have outputs and rules
    } else if (!flows_out.empty()) {
      cfg.job = JobKind::kFlows;  // only the flows job writes flows
    }
    if (duration >= 0) cfg.duration_s = duration;
    if (!summary_json.empty()) cfg.summary_json = summary_json;
    if (!flows_out.empty()) cfg.flows_out = flows_out;
    if (!outputs.empty()) cfg.outputs = outputs;
    if (!recording_id.empty()) cfg.recording_id = recording_id;
    if (!rules_file.empty()) cfg.rules_file = rules_file;
    if (cfg.job == JobKind::kRecords && cfg.outputs.empty()) cfg.outputs = {"jsonl:-"};
    for (const auto& o : cfg.outputs) parse_output(o);  // reject bad ones now
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
    validate_config(cfg);
    validate_flow_config(cfg);
    if (cfg.job == JobKind::kRecords) {
      const ExportConfig ec = export_config(cfg);
      check_outputs(ec.outputs, ec.kafka_props, ec.gelf);  // writable files, Kafka properties, TLS files
    }
    if (!cfg.rules_file.empty() && cfg.job != JobKind::kRecords) {
      throw ConfigError("rules ('" + cfg.rules_file + "') apply to records: use --job records");
    }
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "spanfeed: %s\n", e.what());
    return kExitUsage;
  }
  return -1;
}

}  // namespace spanfeed::app
