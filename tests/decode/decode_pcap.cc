// decode_pcap: prints the roundtrip records of a capture file as JSON lines, then the decode counters (stderr).
// Offline tool for tests and golden files; single-threaded; allocates freely.
#include <cstdio>
#include <string>

#include "decode/pcap_replay.h"

namespace {

class StdoutSink final : public spanfeed::JsonLinesSink {
 public:
  void write_line(std::string_view line) override { std::fwrite(line.data(), 1, line.size(), stdout); }
};

}  // namespace

int main(int argc, char** argv) {
  using namespace spanfeed;
  if (argc < 2) {
    std::fprintf(stderr, "usage: decode_pcap FILE.pcap [recording_id]\n");
    return 2;
  }
  DecodeConfig dcfg = offline_decode_config();
  if (argc > 2) dcfg.recording_id = argv[2];
  StdoutSink sink;
  ReplayStats st;
  std::string err;
  if (!replay_pcap(argv[1], offline_reassembler_config(), dcfg, sink, &st, &err)) {
    std::fprintf(stderr, "decode_pcap: %s\n", err.c_str());
    return 1;
  }
  const DecodeCounters& c = st.decode;
  std::fprintf(stderr, "frames=%llu parsed=%llu records=%llu unmatched=%llu ledger=%s\n",
               static_cast<unsigned long long>(st.frames), static_cast<unsigned long long>(st.parsed),
               static_cast<unsigned long long>(c.records_emitted), static_cast<unsigned long long>(c.unmatched),
               c.ledger_balanced() ? "balanced" : "UNBALANCED");
  for (size_t p = 0; p < kProtocolCount; ++p) {
    for (size_t s = 0; s < kRecordStatusCount; ++s) {
      if (c.roundtrips[p][s] != 0)
        std::fprintf(stderr, "  %s %s: %llu\n", std::string(to_string(static_cast<Protocol>(p))).c_str(),
                     std::string(to_string(static_cast<RecordStatus>(s))).c_str(),
                     static_cast<unsigned long long>(c.roundtrips[p][s]));
    }
    if (c.decode_errors[p] != 0)
      std::fprintf(stderr, "  %s decode_errors: %llu\n", std::string(to_string(static_cast<Protocol>(p))).c_str(),
                   static_cast<unsigned long long>(c.decode_errors[p]));
  }
  for (size_t i = 0; i < kTimeoutCauseCount; ++i) {
    if (c.timeouts[i] != 0)
      std::fprintf(stderr, "  timeouts %s: %llu\n", std::string(to_string(static_cast<TimeoutCause>(i))).c_str(),
                   static_cast<unsigned long long>(c.timeouts[i]));
  }
  for (size_t i = 0; i < kDetectOutcomeCount; ++i) {
    if (c.detect[i] != 0)
      std::fprintf(stderr, "  detect %s: %llu\n", std::string(to_string(static_cast<DetectOutcome>(i))).c_str(),
                   static_cast<unsigned long long>(c.detect[i]));
  }
  std::fprintf(stderr,
               "  gaps=%llu absorbed=%llu resyncs=%llu carry_overflow=%llu undecoded_bytes=%llu partial_at_close=%llu\n",
               static_cast<unsigned long long>(c.gaps), static_cast<unsigned long long>(c.gaps_absorbed),
               static_cast<unsigned long long>(c.resyncs), static_cast<unsigned long long>(c.carry_overflow),
               static_cast<unsigned long long>(c.undecoded_bytes), static_cast<unsigned long long>(c.partial_at_close));
  return c.ledger_balanced() ? 0 : 3;
}
