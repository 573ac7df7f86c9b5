// Rules benchmarks: Hyperscan stream-scan throughput per worker core with 10, 100 and 1,000
// rules over the reassembled streams of a capture, and the cost of rules on the whole records path
// (decode + tags + redaction + JSON). Benchmark thread only; allocates while setting up.
//
//   build/bench/rules/bench_rules                        # tests/data http + mysql captures
//   SPANFEED_BENCH_PCAP=/tmp/corpus/mixed.pcap build/bench/rules/bench_rules   # the real-traffic corpus
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "../decode/recorded.h"
#include "rules/rules_control.h"

namespace spanfeed {
namespace {

using bench::Event;
using bench::Recorded;

const Recorded& capture() {
  const char* env = std::getenv("SPANFEED_BENCH_PCAP");
  return bench::recorded(env != nullptr ? env : "http/http-mixed.pcap");
}

// A realistic rule mix: a third literals (tokens, paths, user agents), a
// third simple classes, a third alternations with quantifiers; none of them
// frequent in ordinary traffic, so the cost is the scan itself.
std::string rules_yaml(int n) {
  static const char* shapes[] = {
      "token-%05d-[a-f0-9]{8}",        "/admin/panel%d\\.php",        "(?i)scanner-agent/%d\\.[0-9]+",
      "select\\s+\\*\\s+from\\s+t%d\\b", "user%d@(example|test)\\.org", "AKIA%04d[0-9A-Z]{12}",
      "\\bcmd%d=(sh|bash|nc)\\b",      "x-debug-%d:\\s*true",         "(union|or)\\s+%d=%d",
  };
  std::string y = "rules:\n";
  char pat[128];
  for (int i = 0; i < n; ++i) {
    std::snprintf(pat, sizeof(pat), shapes[i % 9], i, i);
    std::string p = pat;
    std::string flags;
    if (p.rfind("(?i)", 0) == 0) {
      p = p.substr(4);
      flags = "i";
    }
    std::string esc;
    for (char c : p) {
      if (c == '\\' || c == '"') esc += '\\';
      esc += c;
    }
    y += "  - id: r" + std::to_string(i) + "\n    pattern: \"" + esc + "\"\n";
    if (!flags.empty()) y += "    flags: " + flags + "\n";
  }
  return y;
}

std::unique_ptr<RulesControl> control(int n, bool builtins) {
  char path[] = "/tmp/spanfeed-bench-rules-XXXXXX";
  const int fd = mkstemp(path);
  close(fd);
  std::ofstream(path) << rules_yaml(n);
  RulesControl::Limits l;
  l.max_streams = 65536;
  l.hit_pool = 65536;
  BuiltinRedaction b = builtins ? BuiltinRedaction{} : BuiltinRedaction{false, false, false};
  auto c = std::make_unique<RulesControl>(n > 0 ? std::string(path) : std::string(), b, l);
  std::remove(path);
  return c;
}

// Stream scanning alone: every data chunk of both directions through the
// scanner, flows opened and closed as in the capture.
void BM_Scan(benchmark::State& state) {
  const Recorded& r = capture();
  auto c = control(static_cast<int>(state.range(0)), false);
  auto s = c->scanner(65536);
  uint64_t bytes = 0;
  for (auto _ : state) {
    for (const Event& e : r.events) {
      const Flow& f = r.flows[e.flow];
      switch (e.kind) {
        case Event::kData:
          s->scan(f.slot, Protocol::kHttp, true, f.key.proto == kProtoUdp, e.dir, 0, e.bytes);
          bytes += e.bytes.size();
          break;
        case Event::kGap: s->gap(f.slot, e.dir); break;
        case Event::kClose: s->close(f.slot); break;
        default: break;
      }
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  uint64_t matches = 0;
  for (const auto& p : c->report().per_rule) matches += p.c.matches;
  state.counters["matches_per_pass"] = static_cast<double>(matches) / static_cast<double>(state.iterations());
  state.counters["stream_state_bytes"] = static_cast<double>(c->active_set()->stream_bytes(Direction::kClientToServer));
}
BENCHMARK(BM_Scan)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

struct EncodingSink final : RecordSink {
  void emit(const Record& r) override {
    line.clear();
    append_json_line(r, line);
    ++records;
  }
  std::string line;
  uint64_t records = 0;
};

// The records path with rules: reassembled streams -> decoders -> tags and
// redaction -> JSON. Arg 0 = no content engine at all; -1 = built-in
// redaction only (the default); N = N rules plus the built-ins.
void BM_Records(benchmark::State& state) {
  const Recorded& r = capture();
  const int n = static_cast<int>(state.range(0));
  std::unique_ptr<RulesControl> c;
  std::unique_ptr<RulesScanner> s;
  if (n != 0) {
    c = control(n < 0 ? 0 : n, true);
    s = c->scanner(offline_decode_config().flow_capacity);
  }
  EncodingSink sink;
  auto b = std::make_unique<RecordBuilder>(offline_decode_config(), sink);
  b->set_observer(s.get());
  uint64_t shift = 0, bytes = 0;
  for (auto _ : state) {
    bytes += bench::replay_into(*b, r, shift);
    shift += r.span_ns;
  }
  b->finish(shift);
  state.SetItemsProcessed(static_cast<int64_t>(sink.records));
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  if (!b->counters().ledger_balanced()) state.SkipWithError("decode ledger does not balance");
  b->set_observer(nullptr);
}
BENCHMARK(BM_Records)->Arg(0)->Arg(-1)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace spanfeed

BENCHMARK_MAIN();
