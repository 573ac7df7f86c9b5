// Offline replay of a capture file through parse -> Reassembler -> RecordBuilder, for tests, tools and benches.
// Runs on the calling thread with no EAL; allocates (the pipeline objects, the collected lines): not for the hot path.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "spanfeed/decoder.h"
#include "spanfeed/record.h"
#include "spanfeed/tcp_reassembly.h"

namespace spanfeed {

struct ReplayStats {
  uint64_t frames = 0;         // records read from the file
  uint64_t parsed = 0;         // ParseOutcome::kOk, given to the Reassembler
  uint64_t not_parsed = 0;     // anything else (non-IP, truncated, malformed)
  uint64_t last_ts_ns = 0;     // newest capture time (finish() time)
  ReassemblerCounters reassembly;
  DecodeCounters decode;
};

// Reads `path` with libpcap (any link type link_type_from_dlt() knows), runs
// every frame through parse_packet, a Reassembler and a RecordBuilder
// (advance_time on every frame's time), then finish(). Records go to `sink`.
// Returns false with `error` set when the file cannot be read.
bool replay_pcap(const std::string& path, const ReassemblerConfig& rcfg, const DecodeConfig& dcfg, RecordSink& sink,
                 ReplayStats* stats, std::string* error);

// The same frame loop feeding any StreamConsumer (no RecordBuilder): benches
// record the reassembled streams with it. stats->decode stays zero.
bool replay_pcap_streams(const std::string& path, const ReassemblerConfig& rcfg, StreamConsumer& consumer,
                         ReplayStats* stats, std::string* error);

// Sink that keeps every record as one JSON line (without the '\n').
class CollectingSink final : public JsonLinesSink {
 public:
  void write_line(std::string_view line) override {
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    lines.emplace_back(line);
  }
  std::vector<std::string> lines;
};

// Small-footprint defaults for offline runs (tests, tools): 4096 flows,
// 16 MiB out-of-order pool; DecodeConfig::flow_capacity is set to match.
ReassemblerConfig offline_reassembler_config();
DecodeConfig offline_decode_config();

}  // namespace spanfeed
