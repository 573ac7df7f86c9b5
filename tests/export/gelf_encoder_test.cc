// GelfEncoder against the GELF mapping it replaced (the exporter parsed each JSON line back with
// nlohmann-json, flattened it and dumped it; kept here as the reference): byte-identical documents
// for every record of every bundled capture, and for crafted records with awkward strings.
// Test thread only; allocates freely.
#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "export/gelf_encoder.h"
#include "spanfeed/protocol.h"
#include "decode/pcap_replay.h"

namespace spanfeed {
namespace {

constexpr const char* kHost = "gelf-test";

// ---- the former exporter-side mapping (src/export/gelf_sink.cc before the encoder)
void flatten(const nlohmann::json& j, const std::string& prefix, nlohmann::json& out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::string key = prefix.empty() ? it.key() : prefix + "_" + it.key();
    if (it->is_object()) {
      flatten(*it, key, out);
    } else if (it->is_array()) {
      out["_" + key] = it->dump();
    } else if (!it->is_null()) {
      out["_" + key] = *it;
    }
  }
}

std::string reference_gelf(std::string_view line) {
  nlohmann::json rec = nlohmann::json::parse(line);
  nlohmann::json g;
  g["version"] = "1.1";
  g["host"] = kHost;
  std::string status = rec.value("status", "");
  std::string summary = rec.value("protocol", "") + " " + status;
  const ProtocolDescriptor* desc = protocol_descriptor(rec.value("protocol", ""));
  if (desc != nullptr && rec.contains("request") && rec["request"].is_object()) {
    const auto& rq = rec["request"];
    const std::string k(desc->summary_field);
    if (rq.contains(k) && rq[k].is_string()) summary += " " + rq[k].get<std::string>();
  }
  g["short_message"] = summary.substr(0, 250);
  g["level"] = status == "ok" ? 6 : status == "error" ? 3 : 4;
  std::string ts = rec.value("ts", "");
  std::tm tm{};
  if (ts.size() >= 20 && strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) != nullptr) {
    double frac = ts.size() > 20 && ts[19] == '.' ? std::stod("0" + ts.substr(19, ts.size() - 20)) : 0;
    g["timestamp"] = static_cast<double>(timegm(&tm)) + frac;
  }
  nlohmann::json flat;
  flatten(rec, "", flat);
  if (flat.contains("_id")) {
    flat["_record_id"] = flat["_id"];
    flat.erase("_id");
  }
  for (auto it = flat.begin(); it != flat.end(); ++it) g[it.key()] = *it;
  return g.dump();
}

// Encodes every record both ways.
class Compare final : public RecordSink {
 public:
  void emit(const Record& r) override {
    line_.clear();
    append_json_line(r, line_);
    line_.pop_back();  // '\n'
    doc_.clear();
    enc_.append(r, doc_);
    ++records;
    if (doc_ != reference_gelf(line_)) {
      if (++mismatches <= 3) ADD_FAILURE() << "record " << line_ << "\n new: " << doc_ << "\n old: " << reference_gelf(line_);
    }
  }
  uint64_t records = 0, mismatches = 0;

 private:
  GelfEncoder enc_{kHost};
  std::string line_, doc_;
};

TEST(GelfEncoder, SameDocumentsAsTheJsonRemappingOnEveryBundledCapture) {
  Compare cmp;
  size_t files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(SPANFEED_TEST_DATA "/pcaps")) {
    const std::string ext = e.path().extension().string();
    if (ext != ".pcap" && ext != ".pcapng") continue;
    std::string error;
    ReplayStats st;
    replay_pcap(e.path().string(), offline_reassembler_config(), offline_decode_config(), cmp, &st, &error);
    ++files;
  }
  std::printf("%zu captures, %llu records compared\n", files, static_cast<unsigned long long>(cmp.records));
  EXPECT_GT(files, 20u);
  EXPECT_GT(cmp.records, 1000u);
  EXPECT_EQ(cmp.mismatches, 0u);
}

TEST(GelfEncoder, AwkwardStringsTagsFlagsAndEmbeddedJson) {
  Compare cmp;
  Message rq, rs;
  rq.fields.add_string("method", "GET");
  rq.fields.add_string("path", std::string("/a\b\f\x01\x7f\"\\/\xff\xc3\xa9 ") + std::string(300, 'x'));
  rq.fields.add_int("neg", -42);
  rq.fields.add_uint("big", UINT64_MAX);
  rq.fields.add_bool("yes", true);
  rq.fields.add_null("nothing");
  rs.fields.add_uint("status_code", 503);
  rs.fields.add_raw_json("answers", R"([{"type":"A","data":"1.2.3.4"},{"type":"TXT","data":"a\u0008b\"c"},[],{}])");
  const std::string_view tags[] = {"sqli", "t\u00e9g"};
  Record r;
  r.ts_ns = 1'700'000'000'000'000'000ull;  // whole second: "timestamp":1700000000.0
  r.id = 0x0100000000000abcull;
  r.protocol = Protocol::kHttp;
  r.client.port = 40000;
  r.server.port = 80;
  r.status = RecordStatus::kError;
  r.request = &rq;
  r.response = &rs;
  r.flags = record_flag::kGap | record_flag::kOverlapConflict | record_flag::kReordered;
  r.tags = tags;
  r.recording_id = "rec-1";
  cmp.emit(r);
  r.ts_ns += 123'456'789;
  r.has_latency = true;
  r.latency_us = 1234;
  r.response = nullptr;
  r.tags = {};
  r.flags = 0;
  r.status = RecordStatus::kOk;
  cmp.emit(r);
  EXPECT_EQ(cmp.records, 2u);
  EXPECT_EQ(cmp.mismatches, 0u);
}

}  // namespace
}  // namespace spanfeed
