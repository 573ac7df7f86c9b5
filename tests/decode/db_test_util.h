// Test helpers for the database decoders: golden-capture replay with extra port bindings, crafted wire messages.
// Runs in the test thread; allocates freely (tests only). SPANFEED_UPDATE_GOLDEN=1 rewrites the golden files.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "decode_test_util.h"
#include "fuzz_common.h"
#include "decode/pcap_replay.h"

#ifndef SPANFEED_SOURCE_ROOT
#error "SPANFEED_SOURCE_ROOT must be defined by the build"
#endif

namespace spanfeed::dbtest {

using json = nlohmann::json;

inline const std::string kRoot = SPANFEED_SOURCE_ROOT;

// One bundled capture and what it must decode to (counts checked against tshark and DeepFlow's .result:
// docs/records.md, "Database decoders").
struct GoldenCase {
  const char* dir;   // tests/data/pcaps/<dir>, tests/data/golden/<dir>
  const char* name;
  Protocol protocol;
  std::vector<uint16_t> ports;  // extra TCP ports bound to `protocol` (non-standard server ports)
  bool ignore_vlan;             // the two directions carry different VLAN tags
  size_t records, ok, error, timeout, unmatched;
};

// gtest's name for a GoldenCase parameter.
inline std::string golden_case_name(const ::testing::TestParamInfo<GoldenCase>& i) {
  return dectest::test_name(i.param.name);
}

struct GoldenRun {
  std::vector<std::string> lines;
  ReplayStats stats;
};

inline GoldenRun replay_case(const GoldenCase& c) {
  GoldenRun r;
  CollectingSink sink;
  DecodeConfig d = offline_decode_config();
  for (uint16_t p : c.ports) d.ports.push_back({c.protocol, Transport::kTcp, p});
  ReassemblerConfig rc = offline_reassembler_config();
  if (c.ignore_vlan) rc.table.include_vlan = false;
  std::string err;
  const std::string path = kRoot + "/tests/data/pcaps/" + c.dir + "/" + c.name + ".pcap";
  EXPECT_TRUE(replay_pcap(path, rc, d, sink, &r.stats, &err)) << err;
  r.lines = std::move(sink.lines);
  return r;
}

inline std::string golden_file(const GoldenCase& c) {
  return kRoot + "/tests/data/golden/" + c.dir + "/" + c.name + ".jsonl";
}

inline void check_golden(const GoldenCase& c) {
  GoldenRun run = replay_case(c);
  const DecodeCounters& k = run.stats.decode;
  EXPECT_TRUE(k.ledger_balanced());
  EXPECT_EQ(k.pending_now, 0u);
  EXPECT_EQ(run.lines.size(), c.records);
  EXPECT_EQ(k.of(c.protocol, RecordStatus::kOk), c.ok);
  EXPECT_EQ(k.of(c.protocol, RecordStatus::kError), c.error);
  EXPECT_EQ(k.of(c.protocol, RecordStatus::kTimeout), c.timeout);
  EXPECT_EQ(k.of(c.protocol, RecordStatus::kUnmatched), c.unmatched);
  EXPECT_EQ(k.roundtrips_total(), c.records);  // nothing recorded under another protocol
  EXPECT_EQ(k.decode_errors[static_cast<size_t>(c.protocol)], 0u);
  if (std::getenv("SPANFEED_UPDATE_GOLDEN") != nullptr) {
    std::ofstream out(golden_file(c), std::ios::binary);
    for (const auto& l : run.lines) out << l << "\n";
    GTEST_SKIP() << "golden file rewritten: " << golden_file(c);
  }
  std::ifstream in(golden_file(c), std::ios::binary);
  ASSERT_TRUE(in.good()) << "missing golden file " << golden_file(c);
  std::vector<std::string> want;
  for (std::string l; std::getline(in, l);) {
    if (!l.empty()) want.push_back(l);
  }
  ASSERT_EQ(run.lines.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    json got = json::parse(run.lines[i]);
    json exp = json::parse(want[i]);
    got.erase("id");
    exp.erase("id");
    ASSERT_EQ(got, exp) << c.name << " record " << i;
  }
}

// A key field of one record, written down from tshark / DeepFlow (independent of the golden files).
struct KeyField {
  const char* name;
  size_t index;
  const char* pointer;
  json value;
};

inline void check_keys(const std::vector<GoldenCase>& cases, const std::vector<KeyField>& keys) {
  for (const KeyField& k : keys) {
    const GoldenCase* c = nullptr;
    for (const auto& g : cases) {
      if (std::string(g.name) == k.name) c = &g;
    }
    ASSERT_NE(c, nullptr) << k.name;
    const GoldenRun run = replay_case(*c);
    ASSERT_LT(k.index, run.lines.size()) << k.name;
    const json r = json::parse(run.lines[k.index]);
    const json::json_pointer ptr(k.pointer);
    ASSERT_TRUE(r.contains(ptr)) << k.name << " #" << k.index << " " << k.pointer << "\n" << r.dump();
    EXPECT_EQ(r[ptr], k.value) << k.name << " #" << k.index << " " << k.pointer;
  }
}

inline std::string le16s(uint16_t v) { return std::string{static_cast<char>(v & 0xFF), static_cast<char>(v >> 8)}; }
inline std::string le24s(uint32_t v) {
  return std::string{static_cast<char>(v & 0xFF), static_cast<char>((v >> 8) & 0xFF),
                     static_cast<char>((v >> 16) & 0xFF)};
}
inline std::string le32s(uint32_t v) { return le16s(static_cast<uint16_t>(v)) + le16s(static_cast<uint16_t>(v >> 16)); }
inline std::string be16s(uint16_t v) { return std::string{static_cast<char>(v >> 8), static_cast<char>(v & 0xFF)}; }
inline std::string be32s(uint32_t v) { return be16s(static_cast<uint16_t>(v >> 16)) + be16s(static_cast<uint16_t>(v)); }

// Replays fuzz-style scripts: seeds, checked-in corpus, mutations (the pattern of fuzz_replay_test.cc).
inline void fuzz_exercise(const std::string& proto, int (*target)(const uint8_t*, size_t),
                          const std::vector<std::string>& seed_inputs) {
  const std::string dir = kRoot + "/tests/decode/corpus/" + proto;
  std::vector<std::string> inputs = seed_inputs;
  if (std::getenv("SPANFEED_WRITE_CORPUS") != nullptr) {
    std::filesystem::create_directories(dir);
    for (size_t i = 0; i < inputs.size(); ++i)
      std::ofstream(dir + "/seed-" + std::to_string(i), std::ios::binary) << inputs[i];
  }
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::ifstream in(e.path(), std::ios::binary);
    inputs.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::mt19937 rng(4242);
  auto run = [&](const std::string& s) { target(reinterpret_cast<const uint8_t*>(s.data()), s.size()); };
  const size_t base = inputs.size();
  for (size_t i = 0; i < base; ++i) {
    run(inputs[i]);
    for (int m = 0; m < 300; ++m) {
      std::string s = inputs[i];
      const int kind = static_cast<int>(rng() % 3);
      if (kind == 0 && !s.empty()) {
        for (int k = 0; k < 4; ++k) s[rng() % s.size()] = static_cast<char>(rng());
      } else if (kind == 1 && !s.empty()) {
        s.resize(rng() % s.size());
      } else {
        const std::string& o = inputs[rng() % base];
        if (!o.empty()) s.insert(rng() % (s.size() + 1), o.substr(1 + rng() % o.size() / 2));
      }
      run(s);
    }
  }
  for (int i = 0; i < 500; ++i) {
    std::string s(static_cast<size_t>(rng() % 600), '\0');
    for (char& ch : s) ch = static_cast<char>(rng());
    run(s);
  }
}

}  // namespace spanfeed::dbtest
