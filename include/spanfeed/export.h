// Record export: workers encode finished roundtrips into preallocated batches
// and hand them over a bounded queue (TBB) to an exporter thread, which writes
// each batch to every configured sink. Workers never touch a sink; a slow sink
// never stalls RX. Batches are allocated once at start-up, so memory is bounded.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace spanfeed {

// One encoded record inside a batch: where it ends in `data`, a key that is
// the same for every record of one connection (the Kafka message key), and
// the protocol (for per-protocol topics).
struct RecordRef {
  uint32_t end;
  uint32_t key;
  uint8_t protocol;
};

struct RecordBatch {
  std::string data;            // JSON lines, each ending in '\n'
  std::vector<RecordRef> refs; // one per record
  unsigned owner = 0;          // worker the batch returns to
  size_t records() const { return refs.size(); }
  void clear() {
    data.clear();
    refs.clear();
  }
};

// What an output is, parsed from `--output KIND:TARGET`.
struct OutputSpec {
  enum class Kind { kJsonl, kKafka, kGelfUdp, kGelfTcp };
  Kind kind = Kind::kJsonl;
  std::string target;  // jsonl: path or "-"; kafka: brokers/topic; gelf: host:port
  std::string text;    // as given, for messages and metrics labels
};

// Parses one --output value; throws ConfigError on a bad one.
OutputSpec parse_output(const std::string& s);

// Per-sink counters, written by the exporter thread, read by the control core.
struct alignas(64) SinkCounters {
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> delivered{0};  // records the sink accepted
  std::atomic<uint64_t> failed{0};     // records the sink could not write
  std::atomic<uint64_t> bytes{0};
};

class Sink {
 public:
  virtual ~Sink() = default;
  // Exporter thread. Returns how many of the batch's records were written.
  virtual size_t write(const RecordBatch& b) = 0;
  virtual void flush() {}
};

// A JSON-lines sink on a file (appended) or stdout ("-").
std::unique_ptr<Sink> make_jsonl_sink(const std::string& path, std::string& error);

struct ExportConfig {
  std::vector<OutputSpec> outputs;
  uint32_t batch_records = 256;       // a batch is handed over at this many records...
  uint32_t batch_bytes = 128 * 1024;  // ...or this many bytes, or when the worker goes idle
  uint32_t batches_per_worker = 16;   // in flight per worker: the memory bound
};

class Exporter {
 public:
  // Control core, start-up: opens every sink (error set, nothing started, on failure).
  static std::unique_ptr<Exporter> create(const ExportConfig& cfg, unsigned workers,
                                          std::string& error);
  ~Exporter();

  // Worker side (worker `w` only): a free batch, or nullptr when all of the
  // worker's batches are in flight. Never blocks.
  RecordBatch* try_acquire(unsigned w);
  // Worker side: hand a filled batch to the exporter thread. Never blocks (the
  // queue holds every batch there is).
  void submit(RecordBatch* b);

  // Control core: start the exporter thread; later, after every worker has
  // submitted its last batch, drain the queue, flush the sinks and join.
  void start();
  void stop();

  const ExportConfig& config() const { return cfg_; }
  size_t sink_count() const { return sinks_.size(); }
  const SinkCounters& sink_counters(size_t i) const { return *counters_[i]; }
  const OutputSpec& sink_spec(size_t i) const { return cfg_.outputs[i]; }
  size_t queue_depth() const;

 private:
  struct Impl;
  Exporter() = default;
  void run();

  ExportConfig cfg_;
  std::unique_ptr<Impl> impl_;
  std::vector<std::unique_ptr<Sink>> sinks_;
  std::vector<std::unique_ptr<SinkCounters>> counters_;
  std::thread thread_;
};

}  // namespace spanfeed
