// RulesScanner: one worker's side of the rules engine. Streaming Hyperscan scans of each
// direction, matches kept until their message completes, record tags, redaction of exported
// fields (Redactor), decoded content (inflated HTTP bodies, MySQL compressed payloads).
// Created on the control core (RulesControl::scanner, allocates); runs on one worker lcore and
// never allocates there.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "rules/redactor.h"
#include "rules/rules_report.h"
#include "spanfeed/decoder.h"
#include "decode/inflate.h"

namespace spanfeed {

class RulesControl;
struct RuleGeneration;  // rules/generation.h: a rule set with this worker's scratch, stream pools and hit pool

// Aligned to a cache line: one per worker, its counters written per record.
class alignas(64) RulesScanner final : public StreamObserver {
 public:
  static constexpr size_t kMaxTags = kMaxRecordTags;
  using Tags = RecordTags;

  ~RulesScanner() override;
  RulesScanner(const RulesScanner&) = delete;
  RulesScanner& operator=(const RulesScanner&) = delete;

  // Takes a rule set the control core offered (reload), if any. Call between packets.
  // Inline: once per packet, and nearly always nothing is offered.
  void poll_reload() {
    if (offered_.load(std::memory_order_relaxed) != nullptr) [[unlikely]] adopt_offered();
  }

  // Bytes of `dir` (logical: requests are kClientToServer) starting at stream
  // offset `offset`. `decoded`: the flow has a decoder, so its matches wait to
  // be attributed to messages (otherwise they are only counted). UDP: each
  // datagram is scanned on its own.
  void scan(uint32_t slot, Protocol p, bool decoded, bool udp, Direction dir, uint64_t offset,
            std::span<const std::byte> data) override;
  // `dir` lost bytes: its stream restarts at the next scan (no match across the hole).
  void gap(uint32_t slot, Direction dir) override;
  // The flow ended: its streams go back to the pool, waiting matches are discarded.
  void close(uint32_t slot) override;

  // Body bytes of the message in progress in `dir` that the wire carries
  // compressed (HTTP Content-Encoding gzip / deflate): inflated (bounded) and
  // scanned; matches go to that message. The raw stream scan cannot see them.
  void body(uint32_t slot, Protocol p, Direction dir, std::span<const std::byte> encoded) override;
  // Decoded bytes of the message in progress in `dir` (MySQL compressed
  // protocol payloads): scanned; matches go to that message.
  void decoded(uint32_t slot, Protocol p, Direction dir, std::span<const std::byte> bytes) override;

  // `m` of `dir` is complete (stream bytes [stream_end - bytes, stream_end)):
  // the matches that end inside it become its rule hits. Messages of one
  // direction complete in stream order.
  void mark(uint32_t slot, Direction dir, Message& m) override;
  // A record is about to leave: its tags (the rule hits of its request and
  // response, and the redaction rules that fired), after redacting the
  // string fields. Returns the number of tags written to `tags`.
  size_t annotate(Protocol p, Message* request, Message* response, Tags& tags) override;

 private:
  friend class RulesControl;
  struct DirState;  // per flow and direction
  struct ScanCtx;

  RulesScanner(RulesControl& owner, uint32_t flow_capacity, uint32_t inflaters, uint32_t inflate_max_bytes);
  void adopt_offered();  // poll_reload when a set is offered

  // scan() / mark() past their early returns (no rule set, no stream rules on that side: the common
  // case costs a few instructions, not the full functions' register saves).
  void scan_stream(uint32_t slot, Protocol p, bool decoded, bool udp, Direction dir, uint64_t offset,
                   std::span<const std::byte> data);
  void mark_hits(uint32_t slot, Direction dir, Message& m);
  static int on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags, void* ctx);
  void sync(DirState& ds);  // a direction's state, brought to the rule set in use
  DirState& dir_state(uint32_t slot, size_t side);
  DirState* content_state(uint32_t slot, Direction dir);  // for decoded content; nullptr: not scanned
  bool ensure_stream(DirState& ds, size_t side);
  void release(DirState& ds, size_t side);
  void add_hit(DirState& ds, uint32_t rule, uint64_t end, bool decoded);
  void end_body(DirState& ds, size_t side);
  void free_hit(DirState& ds, uint32_t i, uint32_t prev);
  void add_tag(uint32_t rule, Tags& tags, size_t& n);

  RulesControl& owner_;
  std::vector<DirState> dirs_;    // 2 per flow slot: [slot * 2 + logical direction]
  RuleGeneration* gen_ = nullptr;  // the rule set in use (owned by RulesControl)
  std::atomic<RuleGeneration*> offered_{nullptr};
  std::atomic<RuleGeneration*> active_{nullptr};
  uint32_t gen_id_ = 0;
  std::array<uint32_t, 2 * Message::kMaxRuleHits + 16> rec_rules_{};  // rules already counted for this record
  size_t rec_rules_n_ = 0;
  bool tags_cut_ = false;
  Redactor redactor_;
  InflatePool inflaters_;  // compressed bodies being inflated (rules.inflate_contexts)
  uint32_t inflate_max_bytes_;
  RulesCounters counters_;
};

}  // namespace spanfeed
