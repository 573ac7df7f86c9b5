// Record export: workers encode finished roundtrips into preallocated batches
// and hand them over a bounded queue (TBB) to one of the exporter threads
// (worker w to thread w % threads), which writes each batch to every
// configured sink. Workers never touch a sink; a slow sink never stalls RX.
// Batches are allocated once at start-up, so memory is bounded.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "spanfeed/capture_policy.h"
#include "spanfeed/sink_counters.h"

namespace spanfeed {

// One encoded record inside a batch: where it ends in `data`, a key that is
// the same for every record of one connection (the Kafka message key), and
// the protocol (for per-protocol topics).
struct RecordRef {
  uint32_t end;
  uint32_t key;
  uint8_t protocol;
  uint32_t gelf_end = 0;  // end of the record's GELF document in RecordBatch::gelf
};

// Written record by record by its worker, read by an exporter thread once
// handed over. Aligned: batches are allocated back to back (worker 0's, then
// worker 1's...), and the string and vector headers the worker writes for
// every record must not share a line with another worker's batch.
struct alignas(64) RecordBatch {
  std::string data;            // JSON lines, each ending in '\n'
  std::vector<RecordRef> refs; // one per record
  std::string gelf;            // GELF documents, back to back (only when a GELF output is configured)
  unsigned owner = 0;          // worker the batch returns to
  size_t records() const { return refs.size(); }
  void clear() {
    data.clear();
    refs.clear();
    gelf.clear();
  }
};
static_assert(alignof(RecordBatch) == 64 && sizeof(RecordBatch) % 64 == 0);

// What an output is, parsed from `--output KIND:TARGET`.
struct OutputSpec {
  enum class Kind { kJsonl, kKafka, kGelfUdp, kGelfTcp, kGelfTls };
  Kind kind = Kind::kJsonl;
  std::string target;  // jsonl: path or "-"; kafka: brokers/topic; gelf-*: host:port
  std::string text;    // as given, for messages and metrics labels
};

// Parses one --output value; throws ConfigError on a bad one.
OutputSpec parse_output(const std::string& s);

// How long a sink may wait, shared by every sink of a run (set by the
// exporter before it starts). Offline, a sink waits for its destination
// instead of dropping. `stop` is the first stop request (signal or
// --duration): waits drain within a bounded time. `abandon` is the second
// signal: every wait ends now, and what is left is counted as failed with
// the reason "abandoned".
struct SinkWaitPolicy {
  CapturePolicy capture;  // lossless: wait_for_sinks()
  const std::atomic<bool>* stop = nullptr;
  const std::atomic<bool>* abandon = nullptr;
  bool stop_requested() const { return stop != nullptr && stop->load(std::memory_order_relaxed); }
  bool abandoned() const { return abandon != nullptr && abandon->load(std::memory_order_relaxed); }
};

class Sink {
 public:
  virtual ~Sink() = default;
  void set_wait_policy(const SinkWaitPolicy& p) { policy_ = p; }
  // Exporter thread: write (or queue) every record of the batch, counting
  // each outcome in `c`. May block when `wait` (a lossless run) to lose nothing.
  virtual void write(const RecordBatch& b, SinkCounters& c, bool wait) = 0;
  // Exporter thread, when idle: serve asynchronous delivery reports.
  virtual void poll(SinkCounters& c) { (void)c; }
  // Exporter thread, at the end: flush. Live: a bounded wait. Offline: until
  // everything is delivered, or a stop request plus the flush timeout, or an
  // abandon. What is still queued afterwards is counted as failed.
  virtual void close(SinkCounters& c) { (void)c; }
  // Failure reasons and their counts (control core, after close()).
  virtual std::vector<std::pair<std::string, uint64_t>> failure_reasons() const { return {}; }

 protected:
  SinkWaitPolicy policy_;
};

// A JSON-lines sink on a file (appended) or stdout ("-"). With rotate_bytes
// set, the file is rotated when it reaches that size: PATH.1 ... PATH.keep.
std::unique_ptr<Sink> make_jsonl_sink(const std::string& path, uint64_t rotate_bytes, uint32_t keep,
                                      std::string& error);

// A librdkafka producer sink: one Kafka message per record, key = the
// connection key as 8 hex digits, value = the JSON line (without '\n'). `{protocol}` in the
// topic name is replaced by the record's protocol (one topic per protocol).
// `props` are passed to librdkafka as they are (kafka.* in the config). A
// lossless `policy` sets no per-message timeout unless `props` set one.
std::unique_ptr<Sink> make_kafka_sink(const std::string& target,
                                      const std::vector<std::pair<std::string, std::string>>& props,
                                      double flush_timeout_s, CapturePolicy policy,
                                      std::string& error);

// A TLS client's trust and identity (gelf-tls); used by src/export/tls_client.cc.
struct TlsClientConfig {
  std::string ca_file;      // PEM bundle of the CAs to trust; empty: the system's default CAs
  std::string cert_file;    // PEM client certificate (mutual TLS), optional
  std::string key_file;     // its private key (PEM); required with cert_file
  std::string server_name;  // name to verify and send as SNI; empty: the output's host
  bool verify = true;       // false: no certificate verification (testing only; documented as unsafe)
};

struct GelfConfig {
  enum class Compression { kNone, kGzip, kZlib };
  Compression compression = Compression::kNone;  // UDP only (TCP is never compressed)
  uint32_t chunk_size = 1420;  // UDP datagram size; larger messages are chunked
  double retry_s = 5;          // TCP, offline mode: how long to retry a message while reconnecting
  TlsClientConfig tls;         // gelf-tls: CA, client certificate, server name
};

enum class GelfTransport { kUdp, kTcp, kTls };

// GELF over UDP (compressed, chunked) or TCP, plain or TLS (null-framed, reconnecting).
std::unique_ptr<Sink> make_gelf_sink(GelfTransport transport, const std::string& target, const GelfConfig& cfg,
                                     std::string& error);
// "" when gelf.tls can be used (CA, certificate and key load), else why not.
std::string check_gelf_tls(const GelfConfig& cfg);

struct ExportConfig {
  GelfConfig gelf;
  uint64_t jsonl_rotate_bytes = 0;  // 0: never rotate
  uint32_t jsonl_keep = 5;
  std::vector<OutputSpec> outputs;
  CapturePolicy policy;               // lossless: sinks wait instead of dropping
  std::vector<std::pair<std::string, std::string>> kafka_props;
  double kafka_flush_timeout_s = 10;
  uint32_t batch_records = 256;       // a batch is handed over at this many records...
  uint32_t batch_bytes = 128 * 1024;  // ...or this many bytes, or when the worker goes idle
  uint32_t batches_per_worker = 16;   // in flight per worker: the memory bound
  // Exporter threads (export.threads); 0: auto (default_export_threads). Each
  // thread serves a fixed set of workers, so one connection's records (one
  // worker) keep their order; Kafka and GELF outputs get one producer or
  // connection per thread, a JSON-lines file is shared (written batch by batch).
  uint32_t threads = 0;
  // Stop requests (signals, --duration), read by the sinks' and the workers'
  // offline waits. Null: nothing ever interrupts them.
  const std::atomic<bool>* stop = nullptr;
  const std::atomic<bool>* abandon = nullptr;
};

// Checks the librdkafka properties (the sink's defaults plus `props`) the way
// the producer will see them, without connecting: "" when librdkafka accepts
// them, else a message naming the property.
std::string validate_kafka_properties(const std::vector<std::pair<std::string, std::string>>& props);

// Checks before start-up that every output can be opened: a JSON-lines file's
// directory exists and is writable, Kafka properties are valid. Throws
// ConfigError naming the output or key.
void check_outputs(const std::vector<OutputSpec>& outputs,
                   const std::vector<std::pair<std::string, std::string>>& kafka_props, const GelfConfig& gelf);

// Exporter threads for `workers` workers on a box of `cpus` CPUs when the
// config leaves it to us: one per 4 workers, at most one per 4 CPUs, 1..8.
unsigned default_export_threads(unsigned workers, unsigned cpus);

class Exporter {
 public:
  // Control core, start-up: opens every sink (error set, nothing started, on failure).
  static std::unique_ptr<Exporter> create(const ExportConfig& cfg, unsigned workers,
                                          std::string& error);
  ~Exporter();

  // Worker side (worker `w` only): a free batch, or nullptr when all of the
  // worker's batches are in flight. Never blocks.
  RecordBatch* try_acquire(unsigned w);
  // Worker side: hand a filled batch to its exporter thread. Never blocks (the
  // queue holds every batch there is).
  void submit(RecordBatch* b);

  // Control core: start the exporter threads; later, after every worker has
  // submitted its last batch, drain the queues, flush the sinks and join.
  void start();
  void stop();
  // stop() in two halves, so that the caller can keep publishing while the
  // sinks flush: begin_stop() returns at once; finished() turns true when every
  // exporter thread is done (then stop() joins without waiting).
  void begin_stop();
  bool finished() const;
  // Waits up to `d` for finished() (returns as soon as the last thread is done).
  bool wait_finished(std::chrono::milliseconds d);
  // Worker side: a forced stop (second signal) ended every offline wait.
  bool abandoned() const {
    return cfg_.abandon != nullptr && cfg_.abandon->load(std::memory_order_relaxed);
  }

  const ExportConfig& config() const { return cfg_; }
  // The host name GELF documents carry; "" when no output is GELF (workers
  // then encode no GELF documents).
  const std::string& gelf_host() const { return gelf_host_; }
  size_t sink_count() const { return cfg_.outputs.size(); }
  // Output `i`'s counters summed over the exporter threads (output and
  // failure_reasons left empty).
  SinkSnapshot sink_totals(size_t i) const;
  // Failure reasons of output `i`, over every thread's sink (after stop()).
  std::vector<std::pair<std::string, uint64_t>> failure_reasons(size_t i) const;
  const OutputSpec& sink_spec(size_t i) const { return cfg_.outputs[i]; }
  size_t queue_depth() const;
  unsigned threads() const;

 private:
  struct Impl;
  struct Lane;
  Exporter() = default;
  void run(Lane& lane);

  ExportConfig cfg_;
  std::unique_ptr<Impl> impl_;
  bool stopping_ = false;
  std::string gelf_host_;
};

}  // namespace spanfeed
