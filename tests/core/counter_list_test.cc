// Checks the counter lists (include/spanfeed/counter_list.h: flow table,
// reassembler, decoder, IP defrag, RX lcores, workers and jobs, sinks) against
// docs/metrics.md: each list's generated block there must be exactly the rows
// the list gives (on failure the test prints the block to paste). Test only.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "spanfeed/decoder.h"
#include "spanfeed/counters.h"
#include "spanfeed/defrag_counters.h"
#include "spanfeed/sink_counters.h"
#include "spanfeed/flow_table.h"
#include "spanfeed/tcp_reassembly.h"

namespace spanfeed {
namespace {

std::string read_doc() {
  std::ifstream in(SPANFEED_METRICS_DOC);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The text between "<!-- generated: NAME" ... "-->\n" and "<!-- end generated -->".
std::string block(const std::string& doc, const std::string& name) {
  const std::string begin = "<!-- generated: " + name + " ";
  size_t b = doc.find(begin);
  if (b == std::string::npos) return "(no block " + name + ")";
  b = doc.find("-->\n", b);
  if (b == std::string::npos) return "(unterminated block " + name + ")";
  b += 4;
  size_t e = doc.find("<!-- end generated -->", b);
  if (e == std::string::npos) return "(unterminated block " + name + ")";
  return doc.substr(b, e - b);
}

constexpr std::string_view kHeader = "| series | type | labels | meaning |\n|---|---|---|---|\n";

// One row per family of the list (a labelled family once, its label after `labels`).
template <class Fields>
std::string rows(const Fields& fields, const std::string& labels) {
  std::string out;
  std::set<std::string_view> done;
  for (const auto& f : fields) {
    if (f.metric.empty()) continue;
    const MetricName m = parse_metric(f.metric);
    if (!done.insert(m.family).second) continue;
    std::string l = labels;
    if (!m.label.empty()) l += (l.empty() ? "" : ", ") + std::string(m.label);
    out += "| `spanfeed_" + std::string(m.family) + "` | " + std::string(to_string(f.kind)) + " |" +
           (l.empty() ? "" : " " + l) + " | " + family_help(fields, m.family) + " |\n";
  }
  return out;
}

template <class Fields>
std::string table(const Fields& fields, const std::string& labels) {
  return std::string(kHeader) + rows(fields, labels);
}

TEST(CounterList, ReassemblyRowsMatchTheDoc) {
  const std::string want = table(kReassemblerCounterFields, "worker");
  EXPECT_EQ(block(read_doc(), "reassembly"), want)
      << "docs/metrics.md's reassembly block should read:\n" << want;
}

TEST(CounterList, DefragRowsMatchTheDoc) {
  const std::string want = table(kDefragCounterFields, "worker");
  EXPECT_EQ(block(read_doc(), "defrag"), want) << "docs/metrics.md's defrag block should read:\n" << want;
}

TEST(CounterList, FlowTableRowsMatchTheDoc) {
  const std::string want = table(kFlowTableCounterFields, "worker");
  EXPECT_EQ(block(read_doc(), "flow_table"), want) << "docs/metrics.md's flow_table block should read:\n" << want;
}

TEST(CounterList, DecodeRowsMatchTheDoc) {
  const std::string want = table(kDecodeCounterFields, "");
  EXPECT_EQ(block(read_doc(), "decode"), want) << "docs/metrics.md's decode block should read:\n" << want;
}

TEST(CounterList, RxRowsMatchTheDoc) {
  const std::string want = table(kRxCounterFields, "lcore") + "| `spanfeed_" + std::string(kRxOutcomeMetric) +
                           "` | counter | lcore, outcome | " +
                           labelled_help(kRxOutcomeIntro, kRxOutcomeNames, kRxOutcomeHelp) + " |\n";
  EXPECT_EQ(block(read_doc(), "rx"), want) << "docs/metrics.md's rx block should read:\n" << want;
}

TEST(CounterList, WorkerRowsMatchTheDoc) {
  const std::string want = table(kWorkerCounterFields, "worker") + rows(kJobCounterFields, "worker");
  EXPECT_EQ(block(read_doc(), "workers"), want) << "docs/metrics.md's workers block should read:\n" << want;
}

TEST(CounterList, SinkRowsMatchTheDoc) {
  const std::string want = table(kSinkCounterFields, "output");
  EXPECT_EQ(block(read_doc(), "sinks"), want) << "docs/metrics.md's sinks block should read:\n" << want;
}

TEST(CounterList, LabelledMetricNames) {
  const MetricName plain = parse_metric("sink_queued");
  EXPECT_EQ(plain.family, "sink_queued");
  EXPECT_EQ(plain.label, "");
  const MetricName l = parse_metric("sink_records_total{outcome=failed}");
  EXPECT_EQ(l.family, "sink_records_total");
  EXPECT_EQ(l.label, "outcome");
  EXPECT_EQ(l.value, "failed");
  EXPECT_EQ(family_help(kSinkCounterFields, "sink_records_total").find("`delivered`: "), 0u);
}

TEST(CounterList, RxOutcomeNames) {
  ASSERT_EQ(std::size(kRxOutcomeNames), kRxOutcomeCount);
  EXPECT_EQ(to_string(RxOutcome::kDelivered), "delivered");
  EXPECT_EQ(to_string(RxOutcome::kRingFull), "ring_full");
  EXPECT_EQ(to_string(RxOutcome::kTunnelMalformed), "tunnel_malformed");
  EXPECT_EQ(to_string(RxOutcome::kCount), "unknown");
  for (size_t i = 0; i < kRxOutcomeCount; ++i) {
    EXPECT_FALSE(kRxOutcomeHelp[i].empty()) << kRxOutcomeNames[i];
    EXPECT_EQ(kRxOutcomeHelp[i].find('|'), std::string_view::npos) << kRxOutcomeNames[i];
  }
}

// The snapshot copies every listed field of the live struct.
TEST(CounterList, SnapshotsCopyEveryField) {
  RxCounters rx;
  uint64_t v = 1;
  for (const auto& f : kRxCounterFields) {
    RxCountersOf<uint64_t> one;
    one.*f.member = v;
    one.copy_to(rx);  // uint64_t -> Counter
    RxSnapshot x;
    rx.copy_to(x);    // Counter -> uint64_t
    EXPECT_EQ(x.*f.member, v) << f.name;
    ++v;
  }
  SinkCounters sc;
  sc.delivered.add(3);
  sc.failed.add(2);
  SinkSnapshot ss;
  sc.copy_to(ss);
  EXPECT_EQ(ss.delivered, 3u);
  EXPECT_EQ(ss.failed, 2u);
  EXPECT_EQ(alignof(RxCounters), 64u);
  EXPECT_EQ(alignof(WorkerCounters), 64u);
  EXPECT_EQ(alignof(SinkCounters), 64u);
}

// Names are unique, counters end in _total and gauges do not, every entry
// says what it means; the series of one labelled family share its type.
template <class Fields>
void check_names(const Fields& fields, std::set<std::string>& seen) {
  for (const auto& f : fields) {
    EXPECT_FALSE(f.help.empty()) << f.name;
    EXPECT_EQ(f.help.find('|'), std::string_view::npos) << f.name << ": '|' breaks the doc table";
    if (f.metric.empty()) continue;
    EXPECT_TRUE(seen.insert(std::string(f.metric)).second) << f.metric << " declared twice";
    const MetricName m = parse_metric(f.metric);
    EXPECT_EQ(m.family.ends_with("_total"), f.kind == CounterKind::kCounter) << f.metric;
    for (const auto& g : fields) {
      if (!g.metric.empty() && parse_metric(g.metric).family == m.family) {
        EXPECT_EQ(g.kind, f.kind) << g.metric;
      }
    }
  }
}

TEST(CounterList, NamesAreUniqueAndTyped) {
  std::set<std::string> seen;
  check_names(kReassemblerCounterFields, seen);
  check_names(kDecodeCounterFields, seen);
  check_names(kDefragCounterFields, seen);
  check_names(kFlowTableCounterFields, seen);
  check_names(kRxCounterFields, seen);
  check_names(kWorkerCounterFields, seen);
  check_names(kJobCounterFields, seen);
  check_names(kSinkCounterFields, seen);
  EXPECT_TRUE(seen.insert(std::string(kRxOutcomeMetric)).second);
}

}  // namespace
}  // namespace spanfeed
