// Run configuration: defaults, YAML loading, validation. Control core only,
// at start-up; allocates and throws ConfigError (never on the data path).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "spanfeed/capture_policy.h"
#include "spanfeed/packet.h"
#include "spanfeed/red_config.h"

namespace YAML {
class Node;
}  // namespace YAML

namespace spanfeed {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class RunMode {
  kAuto,     // offline for a capture file (unless replayed infinitely), live otherwise
  kOffline,  // lossless: RX waits for ring space; the run ends at end of input
  kLive,     // RX never blocks: a full ring is a counted drop
};

enum class JobKind {
  kPayloadSum,  // sum IP payload bytes per worker (benchmarking the engine)
  kFlows,       // flow table + TCP reassembly; per-flow stream digests on request (diagnosis)
  kRecords,     // flows + protocol decoders: request/response records to the outputs (default)
};

// metrics.remote_write: push every /metrics snapshot to a Prometheus
// remote-write endpoint (docs/metrics.md). Off while url is empty.
struct RemoteWriteConfig {
  std::string url;                   // http:// or https://; "" = off
  double interval_s = 15;            // one push per interval (and a final one at shutdown)
  double timeout_s = 10;             // per request, and the budget of the final flush
  uint32_t queue = 32;               // pushes kept while the store is unreachable; the oldest goes first
  std::string basic_auth_username;   // basic auth: username + password_file, or...
  std::string basic_auth_password_file;
  std::string bearer_token_file;     // ...a bearer token file (not both)
  std::string ca_file;               // https: PEM CAs the store's certificate must chain to ("" = system CAs)
  // Labels added to every series (a series's own label of the same name
  // wins); job=spanfeed and instance=<hostname> unless set ("" removes one).
  std::vector<std::pair<std::string, std::string>> labels;
  bool enabled() const { return !url.empty(); }
};

struct Config {
  // --- capture source (exactly one of pcap / iface / eal vdev) ---
  std::string pcap_file;    // net_pcap vdev over a capture file
  bool pcap_infinite = false;  // replay the file from memory (throughput runs)
  bool pcap_pmd = false;       // read pcap_file with the net_pcap vdev (copies) instead of mapping it
  std::string iface;        // net_af_packet vdev on a Linux interface
  std::string eal_args;     // raw EAL arguments, appended (or the whole source)
  RunMode mode = RunMode::kAuto;
  std::string filter;       // tcpdump expression run on the RX lcores (empty: none)
  bool filter_inner = false;  // capture.filter_on: inner (after decapsulation) or outer (the frame)
  double duration_s = 0;    // stop after this long; 0 = end of input / signal

  // --- lcore layout ---
  uint32_t rx_lcores = 1;
  uint32_t workers = 2;
  std::vector<int> cpus;    // CPUs to place lcores on; empty = this process's affinity

  // --- sizes ---
  uint32_t ring_size = 4096;   // per (RX, worker) ring; power of two
  uint32_t burst_size = 32;    // rte_eth_rx_burst / ring burst size
  uint32_t mempool_size = 0;   // mbufs; 0 = sized from rings and bursts
  uint32_t mempool_cache = 256;
  uint32_t mbuf_data_room = 2048 + 128;  // RTE_MBUF_DEFAULT_BUF_SIZE
  uint32_t eal_memory_mb = 0;            // -m floor for --no-huge runs; 0 = sized from the pool

  // --- flows and reassembly (per worker) ---
  bool hash_vlan = true;  // VLAN ids part of the flow key and hash
  uint32_t flow_capacity = 65536;
  double tcp_opening_timeout_s = 20;
  double tcp_established_timeout_s = 300;
  double tcp_closing_timeout_s = 30;
  double udp_timeout_s = 30;
  uint32_t reassembly_memory_mb = 64;       // out-of-order arena per worker
  uint32_t reassembly_flow_buffer_kb = 256; // out-of-order bytes one flow may hold
  double reassembly_ack_hold_ms = 10;       // directions out of order: hold bound in packet time (0: off)
  uint32_t reassembly_ack_hold_kb = 64;     // ... and in held bytes per direction
  // Mirror duplicates (identical packets within the window): dropped on the
  // worker. On for live capture and, by default, for files too: a file recorded
  // on the same mirror port carries the same copies (docs/reassembly.md).
  bool dedup_live = true;
  bool dedup_files = true;
  uint32_t dedup_window_us = 1000;
  uint32_t dedup_entries = 16384;           // remembered packets per worker (16 bytes each)

  // --- encapsulations and IP fragments (docs/encapsulation.md) ---
  DecapConfig decap;               // decap.*: what RX removes before the flow hash
  bool tunnel_in_records = false;  // decap.records: a "tunnel" object in each record
  bool defrag = true;              // ip_fragments.reassemble: reassemble on the workers
  uint32_t defrag_max_datagrams = 512;   // ip_fragments.max_datagrams: per worker, table entries
  double defrag_timeout_s = 5;     // ip_fragments.timeout_s: packet time a datagram may take

  // --- job and reporting ---
  JobKind job = JobKind::kRecords;
  std::string summary_json;  // write the end-of-run summary here
  std::string flows_out;     // flows job: one JSON line per closed flow
  std::vector<std::string> outputs;  // records job: --output KIND:TARGET values
  std::string recording_id;  // added to every record when set
  double response_timeout_s = 30;  // request without response: a timeout record
  bool redact_secrets = true;  // HTTP Authorization/Cookie, Redis AUTH, logins
  // decode.ports: protocol -> server ports. A listed protocol's ports replace
  // its defaults and are taken away from any other protocol.
  std::vector<std::pair<std::string, std::vector<uint16_t>>> decode_ports;
  struct DecodeOption {  // decode.<protocol>.<name>: checked against the protocol's descriptor
    std::string protocol;
    std::string name;
    uint64_t value;
  };
  std::vector<DecodeOption> decode_options;
  std::vector<std::pair<std::string, std::string>> kafka_props;  // kafka.properties, to librdkafka
  double kafka_flush_timeout_s = 10;  // shutdown: wait this long for deliveries
  uint64_t jsonl_rotate_bytes = 0;  // rotate JSON-lines files at this size (0: never)
  uint32_t jsonl_keep = 5;           // rotated files kept
  uint32_t export_threads = 0;       // export.threads: exporter threads (0: auto, default_export_threads)
  std::string gelf_compression = "none";  // none | gzip | zlib (GELF UDP)
  uint32_t gelf_chunk_size = 1420;
  double gelf_retry_s = 5;
  std::string gelf_tls_ca, gelf_tls_cert, gelf_tls_key, gelf_tls_server_name;  // gelf-tls outputs
  bool gelf_tls_verify = true;
  // --- rules (records job) ---
  std::string rules_file;           // YAML rules (conf/rules.yaml); SIGHUP reloads it
  bool redact_credit_cards = true;  // built-in redaction rules, each switchable
  bool redact_bearer_tokens = true;
  bool redact_passwords = true;
  uint32_t rules_max_streams = 16384;  // Hyperscan streams per worker and side, preallocated
  uint32_t rules_hit_pool = 16384;    // matches waiting for their message, per worker
  uint32_t rules_inflaters = 64;      // zlib contexts per worker for compressed HTTP bodies (~40 KiB each)
  uint32_t rules_inflate_max_kb = 1024;  // inflated bytes scanned per body at most
  RedConfig red;  // red.*: RED metrics from records (docs/metrics.md)
  std::string log_level = "warning";  // DPDK log level
  // Compiled Hyperscan databases kept between runs (start-up: a load instead of a compile):
  // "auto" ($XDG_CACHE_HOME/spanfeed or ~/.cache/spanfeed), "off", or a directory.
  std::string cache_dir = "auto";
  std::string metrics_listen = "127.0.0.1:9466";  // Prometheus /metrics; "off" disables
  double metrics_linger_s = 0;  // keep serving the final numbers this long after the run
  RemoteWriteConfig remote_write;  // metrics.remote_write
  bool status_line = true;      // one-line live status on a terminal (stderr)
  bool quiet = false;        // no human summary on stdout

  // Derived: lossless (offline) or drop-and-count (live).
  CapturePolicy capture_policy() const {
    bool lossless = mode == RunMode::kOffline ||
                    (mode == RunMode::kAuto && !pcap_file.empty() && !pcap_infinite);
    return lossless ? CapturePolicy::lossless() : CapturePolicy::drop_and_count();
  }
};

// What the protocol registry (a module above core) contributes to the config file: the keys of the
// `decode` section (decode.ports names and decode.<protocol> options: decode/decode_config.h), and a check
// of a protocol name used elsewhere (red.protocols.<name>). Each handler gets the key's path and its node
// and throws ConfigError for a bad one.
using ConfigKeys = std::map<std::string, std::function<void(const std::string& key, const YAML::Node& value)>>;
struct RegistryKeys {
  ConfigKeys decode;
  std::function<void(const std::string& key, const YAML::Node& name)> protocol_name;
};

// Loads a YAML config file over the defaults in `cfg`. Unknown keys, wrong
// types and out-of-range values throw ConfigError naming the file and key.
void load_config_file(const std::string& path, Config& cfg, const RegistryKeys& registry = {});

// The fewest mbufs a run with this layout can work with (mempool.size).
uint64_t minimum_mempool_size(const Config& cfg);

// Checks cross-field rules (one source, sizes, counts). Throws ConfigError. The flow and reassembly
// settings: validate_flow_config (tcp_reassembly.h).
void validate_config(const Config& cfg);

RunMode parse_run_mode(const std::string& s);
JobKind parse_job(const std::string& s);
const char* to_string(RunMode m);
const char* to_string(JobKind j);

}  // namespace spanfeed
