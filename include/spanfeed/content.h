// Content rules and payload detection (Hyperscan): rule files, compiled rule sets, the per-worker
// ContentScanner (streaming scan of each direction, tags, redaction of exported fields), the
// block-mode ProtocolDetector, and RulesControl (control core: compile, SIGHUP reload, totals).
// Only src/rules/content.cc includes hs.h. Compiling and reloading run on the control core and
// allocate; a scanner and a detector run on one worker lcore and never allocate there.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "spanfeed/decoder.h"
#include "spanfeed/roundtrip.h"
#include "spanfeed/tcp_reassembly.h"

namespace spanfeed {

struct Config;

// Which side of a roundtrip a rule looks at.
enum class RuleSide : uint8_t { kRequest = 1, kResponse = 2, kBoth = 3 };
// How much of a message: all of it, or its header block (HTTP start line and
// headers; protocols without a header/body split count the whole message).
enum class RuleScope : uint8_t { kMessage, kHeaders };


struct RuleSpec {
  std::string id;       // unique in the set: the metrics label, and the tag unless `tag` is set
  std::string pattern;  // Hyperscan regex (PCRE syntax, no backreferences or lookaround)
  std::string flags;    // letters: i caseless, s dot-all, m multi-line, u UTF-8
  RuleSide side = RuleSide::kBoth;
  uint32_t protocols = kAllProtocols;  // protocol_bit()s; "unknown" = flows no decoder claimed
  RuleScope scope = RuleScope::kMessage;
  std::string tag;      // added to every record the rule matched in (default: id)
  bool redact = false;  // matched bytes of exported string fields become "<redacted>"
};

// The built-in redaction rules, each switchable (rules.redact_* in the config).
struct BuiltinRedaction {
  bool credit_cards = true;   // 13-19 digit card numbers with a known issuer prefix and a valid Luhn digit
  bool bearer_tokens = true;  // "Bearer <token>" and access/id/refresh_token=<token>
  bool passwords = true;      // passwords in query text: IDENTIFIED BY '...', PASSWORD '...', password=...
};

// Reads a rules file (YAML, see conf/rules.yaml). Throws ConfigError naming
// the file, the line and the rule.
std::vector<RuleSpec> load_rules_file(const std::string& path);

// An immutable compiled rule set: user rules (stream databases per side) and
// redaction rules (a block database with start-of-match over field values).
// Shared by every worker's scanner.
class RuleSet {
 public:
  // Compiles `rules` plus the enabled built-ins. nullptr and `error` (naming
  // the rule and Hyperscan's reason) when a rule does not compile.
  static std::shared_ptr<const RuleSet> compile(std::vector<RuleSpec> rules, const BuiltinRedaction& builtin,
                                                std::string& error);
  ~RuleSet();
  RuleSet(const RuleSet&) = delete;
  RuleSet& operator=(const RuleSet&) = delete;

  size_t size() const { return rules_.size(); }  // user rules first, then built-ins
  const RuleSpec& rule(size_t i) const { return rules_[i]; }
  size_t user_rules() const { return user_rules_; }
  // Hyperscan stream state bytes per scanned direction (0: nothing to scan on that side).
  size_t stream_bytes(Direction side) const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  RuleSet() = default;
  std::vector<RuleSpec> rules_;
  size_t user_rules_ = 0;
  std::unique_ptr<Impl> impl_;
};

// Per-rule counters (one entry per rule of a set, per worker).
struct RuleCounters {
  uint64_t matches = 0;     // Hyperscan match events in streams the rule applies to
  uint64_t records = 0;     // records the rule tagged
  uint64_t redactions = 0;  // field ranges the rule redacted
};

// Per-worker scanner counters. Ledger:
//   hits_stored == hits_attributed + hits_discarded + hits_pending
struct ContentCounters {
  uint64_t bytes_scanned = 0;
  uint64_t streams_opened = 0;     // a direction got a Hyperscan stream
  uint64_t streams_exhausted = 0;  // a direction found the stream pool empty: not scanned (rules.max_streams)
  uint64_t stream_restarts = 0;    // a gap ended a stream; scanning starts afresh after it (no match across the hole)
  uint64_t scan_errors = 0;        // Hyperscan returned an error: the direction stops being scanned
  uint64_t hits_stored = 0;        // matches kept until their message is complete
  uint64_t hits_attributed = 0;    // ... given to a request or response
  uint64_t hits_discarded = 0;     // ... in bytes outside any record, or their flow ended first, or a reload
  uint64_t hits_dropped = 0;       // match not kept: hit pool or per-direction cap full (still counted per rule)
  uint64_t hits_pending = 0;       // kept now (gauge)
  uint64_t records_tagged = 0;     // records with at least one tag
  uint64_t tags_truncated = 0;     // a message or record matched more rules than it has slots for (8 each)
  uint64_t tags_lost_reload = 0;   // a message's rule hits belonged to a set replaced before it left
  uint64_t fields_scanned = 0;     // string fields checked by the redaction rules
  uint64_t fields_redacted = 0;    // ... with at least one range replaced
  uint64_t redaction_masked = 0;   // a replacement did not fit the field arena: masked with '*' instead
  uint64_t rule_sets_adopted = 0;  // rule sets this worker switched to after start-up (reloads)
  // Decoded content (gzip/deflate HTTP bodies, MySQL compressed packets):
  uint64_t bodies_inflated = 0;    // compressed HTTP bodies inflated for the rules
  uint64_t decoded_bytes = 0;      // inflated / decompressed bytes scanned
  uint64_t inflate_errors = 0;     // not gzip/zlib data, or corrupt: the rest of that body is not scanned
  uint64_t inflate_truncated = 0;  // a body inflated past rules.inflate_max_kb: the rest is not scanned
  uint64_t inflate_busy = 0;       // no inflate context free (rules.inflate_contexts): body not scanned
  uint64_t inflate_gaps = 0;       // the capture lost bytes of a compressed body: the rest is not scanned
  uint64_t inflate_reload = 0;     // a reload came in the middle of a compressed body: the rest is not scanned
};

class RulesControl;

// One worker's scanner. Created on the control core (RulesControl::scanner);
// every other call runs on the worker.
class ContentScanner final : public StreamObserver {
 public:
  static constexpr size_t kMaxTags = kMaxRecordTags;
  using Tags = RecordTags;

  ~ContentScanner() override;
  ContentScanner(const ContentScanner&) = delete;
  ContentScanner& operator=(const ContentScanner&) = delete;

  // Takes a rule set the control core offered (reload), if any. Call between packets.
  void poll_reload();

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

  struct Generation;  // a rule set with this worker's scratch, stream pools and hit pool
  struct DirState;    // per flow and direction
  struct ScanCtx;
  struct RedactCtx;  // one message's string fields being checked by the redaction rules

 private:
  friend class RulesControl;
  ContentScanner(RulesControl& owner, uint32_t flow_capacity, uint32_t inflaters, uint32_t inflate_max_bytes);
  struct Inflater;

  static int on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags, void* ctx);
  void sync(DirState& ds);  // a direction's state, brought to the rule set in use
  DirState* content_state(uint32_t slot, Direction dir);  // for decoded content; nullptr: not scanned
  bool ensure_stream(DirState& ds, size_t side);
  void release(DirState& ds, size_t side);
  void add_hit(DirState& ds, uint32_t rule, uint64_t end, bool decoded);
  void end_body(DirState& ds, size_t side);
  void free_hit(DirState& ds, uint32_t i, uint32_t prev);
  void redact(Message& m, Protocol p, Direction dir);
  bool redact_scan(RedactCtx& ctx);
  void redact_apply(Message& m, size_t field, const RedactCtx& ctx, size_t first, size_t last);
  void add_tag(uint32_t rule, Tags& tags, size_t& n);

  RulesControl& owner_;
  std::vector<DirState> dirs_;  // 2 per flow slot: [slot * 2 + logical direction]
  Generation* gen_ = nullptr;   // the rule set in use (owned by RulesControl)
  std::atomic<Generation*> offered_{nullptr};
  std::atomic<Generation*> active_{nullptr};
  uint32_t gen_id_ = 0;
  std::array<uint32_t, 2 * Message::kMaxRuleHits + 16> rec_rules_{};  // rules already counted for this record
  size_t rec_rules_n_ = 0;
  bool tags_cut_ = false;
  std::string redact_buf_;  // reused: a field value being rewritten
  std::string join_buf_;    // reused: a message's string values joined for one scan
  std::vector<std::unique_ptr<Inflater>> inflaters_;  // zlib contexts, windows allocated at start-up
  std::vector<uint32_t> free_inflaters_;
  uint32_t inflate_max_bytes_;
  std::vector<std::byte> inflate_out_;  // reused inflate output block
  ContentCounters counters_;
};

// Rules as the run reports them (summary, /metrics).
struct RulesReport {
  bool present = false;
  std::string file;
  uint64_t version = 0;  // 1 at start, +1 per successful reload
  uint64_t rules = 0;    // user rules in the active set
  uint64_t builtin = 0;  // built-in redaction rules enabled
  uint64_t reloads_ok = 0, reloads_failed = 0;
  std::string last_error;
  uint64_t stream_memory_bytes = 0;  // Hyperscan stream state preallocated, all workers
  struct PerRule {
    std::string id;
    bool active = true;  // in the current set (counts of removed rules stay)
    RuleCounters c;
  };
  std::vector<PerRule> per_rule;
  ContentCounters totals;  // summed over workers
};

// The control core's side: compiles the start-up set (failures are start-up
// errors), builds each worker's scanner, compiles and hands out a new set on
// reload(), and folds the counters of retired sets into running totals.
class RulesControl {
 public:
  struct Limits {
    uint32_t max_streams = 16384;  // Hyperscan streams per worker and side, preallocated
    uint32_t hit_pool = 16384;    // matches waiting for their record, per worker
    uint32_t max_hits_per_direction = 64;
    uint32_t inflaters = 64;                   // zlib contexts per worker for compressed bodies
    uint32_t inflate_max_bytes = 1u << 20;     // inflated bytes scanned per body at most
  };
  // Throws ConfigError (naming the rule) when the set does not load or compile.
  RulesControl(std::string file, const BuiltinRedaction& builtin, const Limits& limits);
  ~RulesControl();
  RulesControl(const RulesControl&) = delete;
  RulesControl& operator=(const RulesControl&) = delete;

  // A worker's scanner (control core, before launch). Owned by the caller; it
  // must not outlive this object.
  std::unique_ptr<ContentScanner> scanner(uint32_t flow_capacity);

  // Re-reads the file and compiles it. On success the workers switch to the
  // new set between packets; on failure the old set keeps running. Returns
  // false with `message` set on failure.
  bool reload(std::string& message);
  // Frees rule sets every worker has left, folding their counters (call
  // periodically on the control core).
  void collect();
  RulesReport report();

  const std::string& file() const { return file_; }
  std::shared_ptr<const RuleSet> active_set() const { return set_; }

 private:
  friend class ContentScanner;
  std::unique_ptr<ContentScanner::Generation> make_generation(const std::shared_ptr<const RuleSet>& set);

  std::string file_;
  BuiltinRedaction builtin_;
  Limits limits_;
  std::shared_ptr<const RuleSet> set_;
  uint64_t version_ = 0;
  uint32_t next_gen_id_ = 1;
  uint64_t reloads_ok_ = 0, reloads_failed_ = 0;
  std::string last_error_;
  std::mutex mu_;  // report() may come from another thread than reload()
  struct Owned {
    ContentScanner* scanner = nullptr;
    ContentScanner::Generation* offered = nullptr;  // handed out, not yet seen active
    std::vector<std::unique_ptr<ContentScanner::Generation>> gens;  // offered or active
  };
  std::vector<Owned> workers_;
  std::map<std::string, RuleCounters> folded_;  // counters of retired sets, by rule id
  ContentCounters folded_totals_;
};

// a += b, field by field.
void add(ContentCounters& a, const ContentCounters& b);

// The rules a config asks for (rules.file + built-in switches). nullptr when
// there is nothing to scan for: no file and every built-in switched off.
std::unique_ptr<RulesControl> make_rules_control(const Config& cfg);

}  // namespace spanfeed
