// End-of-run summary: a plain snapshot of every counter, the ledger check,
// and its JSON / human renderings. Control core; allocates.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "rules/rules_report.h"
#include "spanfeed/capture_policy.h"
#include "spanfeed/counters.h"
#include "spanfeed/defrag_counters.h"
#include "spanfeed/decoder.h"
#include "spanfeed/sink_counters.h"
#include "spanfeed/tcp_reassembly.h"

namespace spanfeed {

namespace red {
struct Report;  // src/red/merger.h: the RED series for /metrics
}  // namespace red

struct ReassemblySnapshot {
  bool present = false;  // the worker ran the flows job
  ReassemblerCounters counters;
  FlowTableCounters table;
};

// Latency histogram bucket upper bounds (microseconds), Prometheus-style
// (the last bucket, +Inf, is implicit). 100 us to 10 s.
inline constexpr std::array<uint64_t, 16> kLatencyBoundsUs = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000};
inline constexpr size_t kLatencyBuckets = kLatencyBoundsUs.size() + 1;

struct LatencyHistogram {
  std::array<uint64_t, kLatencyBuckets> buckets{};  // not cumulative; last = over 10 s
  uint64_t count = 0;
  uint64_t sum_us = 0;
  void add(uint64_t us) {
    size_t i = 0;
    while (i < kLatencyBoundsUs.size() && us > kLatencyBoundsUs[i]) ++i;
    ++buckets[i];
    ++count;
    sum_us += us;
  }
};

struct RecordsSnapshot {
  bool present = false;  // the worker ran the records job
  DecodeCounters decode;
  uint64_t batched = 0;  // records encoded into export batches
  uint64_t dropped = 0;  // no free batch: live mode (exporter behind), or abandoned
  uint64_t dropped_abandoned = 0;  // of dropped: offline, after a second signal ended the wait
  uint64_t batches = 0;  // batches handed to the exporter
  std::array<LatencyHistogram, kProtocolCount> latency{};  // records with a latency
};

// A worker's counters: the loop's (WorkerCountersOf) and the job's (JobCounters).
struct WorkerSnapshot : WorkerCountersOf<uint64_t>, JobCounters {
  unsigned lcore = 0;
  bool defrag_present = false;  // IP fragment reassembly ran on this worker
  DefragCounters defrag;
  double busy_s = 0;  // time spent processing packets (the rest was polling/idle)
  ReassemblySnapshot reassembly;
  RecordsSnapshot records;
};

// Levels that are not counters (read live; at the end they show what is left).
struct Gauges {
  uint64_t ring_size = 0;
  std::vector<std::vector<uint64_t>> ring_used;  // [rx][worker] slots in use
  uint64_t mempool_size = 0, mempool_in_use = 0;
  uint64_t export_queue_depth = 0;
};

// What the probe found in the capture file (--pcap runs).
struct CaptureFileReport {
  bool present = false;
  uint32_t snaplen = 0;               // the file's snapshot length
  // Records libpcap could read; for a file counted as it was read
  // (CaptureFileInfo::counted false), the records read.
  uint64_t records_read = 0;
  uint64_t truncated_by_snaplen = 0;  // records captured shorter than their wire length
  bool damaged = false;               // a record could not be read: the rest was not
  std::string read_error;             // libpcap's message when damaged
};

struct RunReport {
  std::string source;     // file, interface or EAL device
  CapturePolicy policy;   // lossless (offline) or drop-and-count (live)
  std::string job;
  std::string link_type;
  uint64_t expected_packets = 0;  // offline: records in the file (0 = unknown)
  double file_fraction = -1;      // a file counted as it is read: the part read so far (-1 = n/a)
  bool interrupted = false;       // stopped by signal or duration
  double elapsed_s = 0;
  std::vector<NicSnapshot> nics;
  std::vector<RxSnapshot> rx;
  std::vector<WorkerSnapshot> workers;
  std::vector<SinkSnapshot> sinks;
  Gauges gauges;
  RulesReport rules;  // rules (records job with rules or built-in redaction)
  CaptureFileReport capture;
  std::shared_ptr<const red::Report> red;  // RED metrics (records job, red.enabled); null: none

  uint64_t rx_received() const;
  uint64_t rx_outcome(RxOutcome o) const;
  uint64_t workers_received() const;
  uint64_t payload_bytes() const;
  // Every balance the ledger owes; empty when it balances, else one line per
  // broken equation.
  std::vector<std::string> ledger_problems() const;
};

nlohmann::json to_json(const RunReport& r);
std::string to_text(const RunReport& r);

}  // namespace spanfeed
