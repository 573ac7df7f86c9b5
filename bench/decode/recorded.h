// Reassembled streams of a capture, recorded once and replayed many times by the benchmarks.
// Benchmark thread only; allocates while recording.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "spanfeed/decoder.h"
#include "decode/pcap_replay.h"

namespace spanfeed::bench {

// One StreamConsumer call, copied so it can be replayed without the Reassembler.
struct Event {
  enum Kind : uint8_t { kOpen, kData, kGap, kFin, kClose } kind;
  Direction dir = Direction::kClientToServer;
  uint32_t flow = 0;  // index into Recorded::flows
  uint64_t ts = 0;
  uint64_t missing = 0;  // kGap; kData: the chunk's peer_acked
  std::vector<std::byte> bytes;
};

struct Recorded {
  std::vector<Flow> flows;
  std::vector<Event> events;
  uint64_t span_ns = 0;  // capture duration: replays are shifted by it
};

class Recorder final : public StreamConsumer {
 public:
  explicit Recorder(Recorded& r) : r_(r) {}
  void on_open(const Flow& f, uint64_t ts) override {
    slot_to_flow_[f.slot] = static_cast<uint32_t>(r_.flows.size());
    r_.flows.push_back(f);
    r_.events.push_back({Event::kOpen, Direction::kClientToServer, slot_to_flow_[f.slot], ts, 0, {}});
  }
  void on_data(const Flow& f, Direction d, std::span<const std::byte> data, uint64_t ts,
               uint64_t peer_acked) override {
    r_.events.push_back({Event::kData, d, slot_to_flow_[f.slot], ts, peer_acked, {data.begin(), data.end()}});
  }
  void on_gap(const Flow& f, Direction d, uint64_t missing, GapReason, uint64_t ts) override {
    r_.events.push_back({Event::kGap, d, slot_to_flow_[f.slot], ts, missing, {}});
  }
  void on_fin(const Flow& f, Direction d, uint64_t ts) override {
    r_.events.push_back({Event::kFin, d, slot_to_flow_[f.slot], ts, 0, {}});
  }
  void on_close(const Flow& f, CloseReason, uint64_t ts) override {
    r_.events.push_back({Event::kClose, Direction::kClientToServer, slot_to_flow_[f.slot], ts, 0, {}});
  }

 private:
  Recorded& r_;
  std::vector<uint32_t> slot_to_flow_ = std::vector<uint32_t>(1u << 20);  // > any flow table capacity used here
};

// Runs the capture through the Reassembler once, keeping its consumer calls.
// `path`: absolute, or relative to tests/data/pcaps of the source tree.
inline const Recorded& recorded(const std::string& rel) {
  static std::vector<std::pair<std::string, std::unique_ptr<Recorded>>> cache;
  for (const auto& [k, v] : cache) {
    if (k == rel) return *v;
  }
  auto r = std::make_unique<Recorded>();
  Recorder rec(*r);
  ReplayStats st;
  std::string err;
  const std::string path = rel.starts_with("/") ? rel : std::string(SPANFEED_SOURCE_ROOT) + "/tests/data/pcaps/" + rel;
  if (!replay_pcap_streams(path, offline_reassembler_config(), rec, &st, &err)) std::fprintf(stderr, "%s\n", err.c_str());
  uint64_t first = UINT64_MAX;
  for (const Event& e : r->events) first = e.ts < first ? e.ts : first;
  r->span_ns = st.last_ts_ns >= first ? st.last_ts_ns - first + kNsPerSec : kNsPerSec;
  cache.emplace_back(rel, std::move(r));
  return *cache.back().second;
}

// Feeds every recorded call to `c` with timestamps moved by `shift`; returns
// the payload bytes delivered.
inline uint64_t replay_into(StreamConsumer& c, const Recorded& r, uint64_t shift) {
  uint64_t payload = 0;
  for (const Event& e : r.events) {
    const Flow& f = r.flows[e.flow];
    const uint64_t ts = e.ts + shift;
    switch (e.kind) {
      case Event::kOpen: c.on_open(f, ts); break;
      case Event::kData:
        c.on_data(f, e.dir, e.bytes, ts, e.missing);
        payload += e.bytes.size();
        break;
      case Event::kGap: c.on_gap(f, e.dir, e.missing, GapReason::kAckPastHole, ts); break;
      case Event::kFin: c.on_fin(f, e.dir, ts); break;
      case Event::kClose: c.on_close(f, CloseReason::kFin, ts); break;
    }
  }
  return payload;
}

}  // namespace spanfeed::bench
