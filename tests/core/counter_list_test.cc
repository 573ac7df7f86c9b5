// Checks the counter lists (include/spanfeed/counter_list.h) against
// docs/metrics.md: each list's generated block there must be exactly the rows
// the list gives (on failure the test prints the block to paste). Test only.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "spanfeed/decoder.h"
#include "spanfeed/defrag_counters.h"
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

template <class Fields>
std::string rows(const Fields& fields, const std::string& labels) {
  std::string out = "| series | type | labels | meaning |\n|---|---|---|---|\n";
  for (const auto& f : fields) {
    if (f.metric.empty()) continue;
    out += "| `spanfeed_" + std::string(f.metric) + "` | " + std::string(to_string(f.kind)) + " |" +
           (labels.empty() ? "" : " " + labels) + " | " + std::string(f.help) + " |\n";
  }
  return out;
}

TEST(CounterList, ReassemblyRowsMatchTheDoc) {
  const std::string want = rows(kReassemblerCounterFields, "worker");
  EXPECT_EQ(block(read_doc(), "reassembly"), want)
      << "docs/metrics.md's reassembly block should read:\n" << want;
}

TEST(CounterList, DefragRowsMatchTheDoc) {
  const std::string want = rows(kDefragCounterFields, "worker");
  EXPECT_EQ(block(read_doc(), "defrag"), want) << "docs/metrics.md's defrag block should read:\n" << want;
}

TEST(CounterList, FlowTableRowsMatchTheDoc) {
  const std::string want = rows(kFlowTableCounterFields, "worker");
  EXPECT_EQ(block(read_doc(), "flow_table"), want) << "docs/metrics.md's flow_table block should read:\n" << want;
}

TEST(CounterList, DecodeRowsMatchTheDoc) {
  const std::string want = rows(kDecodeCounterFields, "");
  EXPECT_EQ(block(read_doc(), "decode"), want) << "docs/metrics.md's decode block should read:\n" << want;
}

// Names are unique, counters end in _total and gauges do not, every entry
// says what it means.
template <class Fields>
void check_names(const Fields& fields, std::set<std::string>& seen) {
  for (const auto& f : fields) {
    EXPECT_FALSE(f.help.empty()) << f.name;
    EXPECT_EQ(f.help.find('|'), std::string_view::npos) << f.name << ": '|' breaks the doc table";
    if (f.metric.empty()) continue;
    EXPECT_TRUE(seen.insert(std::string(f.metric)).second) << f.metric << " declared twice";
    EXPECT_EQ(f.metric.ends_with("_total"), f.kind == CounterKind::kCounter) << f.metric;
  }
}

TEST(CounterList, NamesAreUniqueAndTyped) {
  std::set<std::string> seen;
  check_names(kReassemblerCounterFields, seen);
  check_names(kDecodeCounterFields, seen);
  check_names(kDefragCounterFields, seen);
  check_names(kFlowTableCounterFields, seen);
}

}  // namespace
}  // namespace spanfeed
