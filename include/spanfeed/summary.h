// End-of-run summary: a plain snapshot of every counter, the ledger check,
// and its JSON / human renderings. Control core; allocates.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "spanfeed/counters.h"
#include "spanfeed/decoder.h"
#include "spanfeed/tcp_reassembly.h"

namespace spanfeed {

struct NicSnapshot {
  uint16_t port = 0;
  std::string name;
  uint64_t ipackets = 0, ibytes = 0, imissed = 0, ierrors = 0, rx_nombuf = 0;
};

struct RxSnapshot {
  unsigned lcore = 0;
  uint64_t received = 0, bytes = 0;
  std::array<uint64_t, static_cast<size_t>(RxOutcome::kCount)> outcome{};
  uint64_t ip_fragments = 0, l4_truncated = 0, snaplen_truncated = 0, ring_wait_spins = 0;
};

struct ReassemblySnapshot {
  bool present = false;  // the worker ran the flows job
  ReassemblerCounters counters;
  FlowTableCounters table;
};

struct RecordsSnapshot {
  bool present = false;  // the worker ran the records job
  DecodeCounters decode;
  uint64_t batched = 0;  // records encoded into export batches
  uint64_t dropped = 0;  // live mode: no free batch (exporter behind)
  uint64_t batches = 0;  // batches handed to the exporter
};

struct SinkSnapshot {
  std::string output;
  uint64_t batches = 0, records = 0, queued = 0, delivered = 0, failed = 0, dropped = 0, bytes = 0;
  std::vector<std::pair<std::string, uint64_t>> failure_reasons;
};

struct WorkerSnapshot {
  unsigned lcore = 0;
  uint64_t received = 0, order_violations = 0, multi_segment = 0;
  uint64_t packets = 0, payload_bytes = 0;
  ReassemblySnapshot reassembly;
  RecordsSnapshot records;
};

struct RunReport {
  std::string source;     // file, interface or EAL device
  std::string mode;       // offline / live
  std::string job;
  std::string link_type;
  uint64_t expected_packets = 0;  // offline: records in the file (0 = unknown)
  bool interrupted = false;       // stopped by signal or duration
  double elapsed_s = 0;
  std::vector<NicSnapshot> nics;
  std::vector<RxSnapshot> rx;
  std::vector<WorkerSnapshot> workers;
  std::vector<SinkSnapshot> sinks;

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
