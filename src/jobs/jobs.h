// Worker jobs: the PacketHandler each worker lcore drives. Created on the
// control core before launch (they allocate then); run on one worker each and
// never allocate per packet.
#pragma once

#include <array>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "spanfeed/capture_policy.h"
#include "spanfeed/config.h"
#include "rules/rules_control.h"
#include "spanfeed/counters.h"
#include "spanfeed/decoder.h"
#include "export/export.h"
#include "decode/fnv.h"
#include "export/gelf_encoder.h"
#include "spanfeed/packet_handler.h"
#include "jobs/summary.h"
#include "spanfeed/tcp_reassembly.h"
#include "red/exchange.h"

namespace spanfeed {

// A worker's job: a packet handler that can report its counters.
//
// Counters cross threads the way Suricata's do: the worker bumps plain
// private counters, and every few milliseconds copies them under a mutex it
// only ever try-locks (it never waits for the control core, but for the last
// copy); the control core reads that copy under the same mutex. No counter
// is read while it is being written, and the hot path pays nothing.
// Aligned (and so padded) to a cache line: jobs are allocated one per worker
// on the control core, and no two workers may write to one line.
class alignas(64) Job : public PacketHandler {
 public:
  // Worker: publish a copy of collect().
  void publish(bool wait) final;
  // Control core: the job's part of `out` (packets, payload_bytes,
  // reassembly, records) as last published: a few milliseconds behind while
  // the worker runs, exact after its final publish.
  void report(WorkerSnapshot& out) const;
  // The job's RED hand-over (records job with red.enabled), else nullptr.
  virtual red::Exchange* red_exchange() { return nullptr; }

 protected:
  // Worker: after each publish (`wait`: the last one, at the end).
  virtual void published(bool /*wait*/) {}
  // Worker: the job's counters now. Derived jobs add their own and call this first.
  virtual void collect(WorkerSnapshot& out) const {
    static_cast<JobCounters&>(out) = c_;
  }
  void count(const PacketView& pkt) {
    ++c_.packets;
    c_.payload_bytes += pkt.parsed->ip_payload_len;
  }
  JobCounters c_;

 private:
  // On a line of its own: the control core locks it (once a second), and
  // that must not take away the line of c_, written for every packet.
  alignas(64) mutable std::mutex published_mu_;
  WorkerSnapshot published_;  // guarded by published_mu_
};

// payload-sum: counts packets and sums IP payload bytes, nothing else (the
// engine's throughput baseline).
class PayloadSumJob final : public Job {
 public:
  void on_packet(const PacketView& pkt) override { count(pkt); }
};

// flows: every packet through the worker's flow table and TCP reassembly.
// Optionally writes one JSON line per closed flow (endpoints, close reason,
// per-direction stream length, gaps, FNV-1a 64 digest of the delivered bytes
// and of the bytes before the first gap) to `out_path` — a diagnostic for checking reassembly against other
// tools, written with buffered stdio from the worker.
class FlowsJob final : public Job, public StreamConsumer {
 public:
  FlowsJob(const Config& cfg, unsigned worker, const std::string& out_path);
  ~FlowsJob() override;
  void on_packet(const PacketView& pkt) override;
  void on_idle(uint64_t now_ns) override { r_->advance_time(now_ns); }
  void finish(uint64_t now_ns) override;

  // StreamConsumer: called by the reassembler inside on_packet/on_idle/finish.
  void on_open(const Flow& flow, uint64_t ts_ns) override;
  void on_data(const Flow& flow, Direction dir, std::span<const std::byte> data, uint64_t ts_ns,
               uint64_t peer_acked = kAckUnknown) override;
  void on_gap(const Flow& flow, Direction dir, uint64_t missing, GapReason reason,
              uint64_t ts_ns) override;
  void on_fin(const Flow& flow, Direction dir, uint64_t ts_ns) override;
  void on_close(const Flow& flow, CloseReason reason, uint64_t ts_ns) override;

 protected:
  void collect(WorkerSnapshot& out) const override;

 private:
  struct DirDigest {
    uint64_t fnv = kFnv1a64Basis;
    uint64_t bytes = 0;
    uint64_t gap_bytes = 0;
    uint32_t gaps = 0;
    bool fin = false;
    // The stream up to its first gap: what a tool that stops at a hole shows.
    uint64_t prefix_fnv = 0;
    uint64_t prefix_bytes = 0;
  };
  struct FlowDigest {
    DirDigest dir[2];
  };

  unsigned worker_;
  std::unique_ptr<Reassembler> r_;
  std::vector<FlowDigest> digests_;  // indexed by Flow::slot
  std::FILE* out_ = nullptr;
  std::vector<char> out_buf_;
};

// records: flows + protocol decoders. Finished roundtrips are encoded as JSON
// lines into the worker's export batches and handed to the exporter thread.
// Offline, a worker with no free batch waits for the exporter (lossless);
// live, the record is dropped and counted.
class RecordsJob final : public Job, public RecordSink {
 public:
  // `rules`: rules (nullptr: none); the job's scanner comes from it.
  // `red`: the RED settings every worker shares (nullptr: no RED metrics).
  RecordsJob(const Config& cfg, unsigned worker, Exporter& exporter, RulesControl* rules,
             const red::Shared* red = nullptr);
  void on_packet(const PacketView& pkt) override;
  void on_idle(uint64_t now_ns) override;
  void finish(uint64_t now_ns) override;
  void emit(const Record& r) override;
  red::Exchange* red_exchange() override { return red_.get(); }

 protected:
  void collect(WorkerSnapshot& out) const override;
  void published(bool wait) override;

 private:
  bool ensure_batch();
  void hand_over();

  unsigned worker_;
  Exporter& exporter_;
  CapturePolicy policy_;
  std::unique_ptr<RulesScanner> scanner_;  // before builder_: the builder points at it
  std::unique_ptr<SignatureMatcher> signatures_;  // likewise
  std::unique_ptr<RecordBuilder> builder_;
  std::unique_ptr<Reassembler> r_;
  std::unique_ptr<GelfEncoder> gelf_;  // when an output is GELF: documents encoded here, beside the JSON line
  std::unique_ptr<red::Exchange> red_;  // RED metrics (red.enabled): every record counted here
  RecordBatch* batch_ = nullptr;
  // End of the JSON lines in batch_->data while the worker holds the batch: past it, up to the
  // string's size(), is the encoder's room (write_json_line); cut to this end at hand-over.
  size_t data_end_ = 0;
  // Recent connections and their keys (FNV-1a over 36 bytes costs ~170 instructions; records of a few
  // hundred connections interleave): direct-mapped by a cheap mix of the ports and addresses.
  struct KeyEntry {
    Endpoint client{};
    Endpoint server{};
    uint32_t key = 0;
    bool valid = false;
  };
  static constexpr size_t kKeyEntries = 256;
  std::array<KeyEntry, kKeyEntries> keys_{};
  uint64_t batched_ = 0;       // records put into batches
  uint64_t dropped_ = 0;       // no free batch (live; offline after a forced stop)
  uint64_t dropped_abandoned_ = 0;  // of dropped_: offline, the wait was abandoned
  uint64_t handed_over_ = 0;   // batches submitted
  std::array<LatencyHistogram, kProtocolCount> latency_{};
};

// The decoding settings a config describes, for worker `worker`.
DecodeConfig decode_config(const Config& cfg, unsigned worker);

// The job a config asks for, for worker `worker`. A records job sends its
// batches to `exporter` and scans with `rules` (nullptr: none); a flows job
// with a flows output writes worker `worker`'s part of it.
std::unique_ptr<Job> make_job(const Config& cfg, unsigned worker, Exporter* exporter,
                              RulesControl* rules = nullptr, const red::Shared* red = nullptr);

// The flows job's output: each worker writes its own part file while the
// lcores run; after the run, the control core joins the parts into `path`
// (in worker order) and removes them. False with `error` set when `path`
// cannot be written.
std::string flows_part_path(const std::string& path, unsigned worker);
bool join_flows_parts(const std::string& path, unsigned workers, std::string& error);

}  // namespace spanfeed
