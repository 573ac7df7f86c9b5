// The rules engine: rule files, Hyperscan compilation (control core), per-worker streaming scans,
// record tags, redaction of exported fields, payload-based protocol detection, SIGHUP reloads.
// The only source that includes hs.h. Control-core parts allocate; worker parts use the pools and
// scratch the control core built for them and never allocate.
#include "spanfeed/content.h"

#include <hs.h>
#include <yaml-cpp/yaml.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <set>

#include "spanfeed/config.h"
#include "spanfeed/inflate.h"
#include "spanfeed/yaml_file.h"

namespace spanfeed {

namespace {

constexpr uint32_t kNone = UINT32_MAX;
constexpr std::string_view kRedacted = "<redacted>";

// ---------------------------------------------------------------- rule files

[[noreturn]] void rules_fail(const std::string& file, const YAML::Node* node, const std::string& what) {
  std::string where = file;
  if (node != nullptr && node->Mark().line >= 0) where += ":" + std::to_string(node->Mark().line + 1);
  throw ConfigError(where + ": " + what);
}

std::string scalar_string(const std::string& file, const YAML::Node& n, const std::string& what) {
  if (!n.IsScalar()) rules_fail(file, &n, what + ": expected a single value");
  return n.Scalar();
}

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

unsigned hs_flags_of(const std::string& letters) {
  unsigned f = 0;
  for (char c : letters) {
    switch (c) {
      case 'i': f |= HS_FLAG_CASELESS; break;
      case 's': f |= HS_FLAG_DOTALL; break;
      case 'm': f |= HS_FLAG_MULTILINE; break;
      case 'u': f |= HS_FLAG_UTF8 | HS_FLAG_UCP; break;
      default: break;
    }
  }
  return f;
}

// ---------------------------------------------------------------- built-in redaction

enum class RedactKind : uint8_t {
  kWhole,         // the whole match (user rules)
  kCard,          // card number: issuer prefix, length and Luhn checked
  kAfterKeyword,  // "Bearer <token>": what follows the first word and its spaces
  kAfterEquals,   // name=value: what follows the first '='
  kQuoted,        // keyword '...': the content of the first quoted string
};

struct BuiltinPattern {
  const char* rule;  // built-in rule id (also its tag)
  const char* pattern;
  unsigned flags;
  RedactKind kind;
};

constexpr BuiltinPattern kBuiltinPatterns[] = {
    {"credit_card", "[0-9](?:[ -]?[0-9]){12,18}", 0, RedactKind::kCard},
    {"bearer_token", "\\bbearer\\s+[a-z0-9._~+/-]+=*", HS_FLAG_CASELESS, RedactKind::kAfterKeyword},
    {"bearer_token", "\\b(?:access_token|id_token|refresh_token)=[^&\\s\"'\\x00]+", HS_FLAG_CASELESS,
     RedactKind::kAfterEquals},
    {"password", "\\bidentified\\s+(?:with\\s+[^\\s\\x00]+\\s+)?by\\s+(?:password\\s+)?(?:'[^'\\x00]*'|\"[^\"\\x00]*\")",
     HS_FLAG_CASELESS, RedactKind::kQuoted},
    {"password", "\\bpassword\\s*(?:=|\\()?\\s*(?:'[^'\\x00]*'|\"[^\"\\x00]*\")", HS_FLAG_CASELESS, RedactKind::kQuoted},
    {"password", "\\b(?:password|passwd|pwd|pass)=[^&\\s\"'\\x00]+", HS_FLAG_CASELESS, RedactKind::kAfterEquals},
};

bool builtin_enabled(std::string_view rule, const BuiltinRedaction& b) {
  if (rule == "credit_card") return b.credit_cards;
  if (rule == "bearer_token") return b.bearer_tokens;
  if (rule == "password") return b.passwords;
  return false;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Issuer prefixes (IIN ranges) of the major card schemes with the lengths
// they issue, as data-loss-prevention tools check them: a digit run of another
// length or prefix (an order id, a timestamp) is not a card number.
bool known_issuer(const char* d, size_t n) {
  auto pre = [&](size_t k) {
    int v = 0;
    for (size_t i = 0; i < k && i < n; ++i) v = v * 10 + (d[i] - '0');
    return v;
  };
  const int p2 = pre(2), p3 = pre(3), p4 = pre(4);
  if (d[0] == '4') return n == 13 || n == 16 || n == 19;                             // Visa
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n == 16;          // Mastercard
  if (p2 == 34 || p2 == 37) return n == 15;                                          // American Express
  if ((p3 >= 300 && p3 <= 305) || p2 == 36) return n == 14;                          // Diners Club
  if (p4 == 6011 || p2 == 65 || (p3 >= 644 && p3 <= 649)) return n == 16;            // Discover
  if (p4 >= 3528 && p4 <= 3589) return n == 16;                                      // JCB
  if (p2 == 62) return n >= 16 && n <= 19;                                           // UnionPay
  return false;
}

bool luhn_ok(const char* d, size_t n) {
  unsigned sum = 0;
  bool dbl = false;
  for (size_t i = n; i-- > 0;) {
    unsigned v = static_cast<unsigned>(d[i] - '0');
    if (dbl) {
      v *= 2;
      if (v > 9) v -= 9;
    }
    sum += v;
    dbl = !dbl;
  }
  return sum % 10 == 0;
}

// [from, to) of `s` holds a card number: whole digit run, 13-19 digits,
// known issuer, valid check digit.
bool card_number(std::string_view s, size_t from, size_t to) {
  if (from > 0 && is_digit(s[from - 1])) return false;
  if (to < s.size() && is_digit(s[to])) return false;
  char digits[20];
  size_t n = 0;
  for (size_t i = from; i < to; ++i) {
    if (!is_digit(s[i])) continue;
    if (n == sizeof(digits)) return false;
    digits[n++] = s[i];
  }
  return n >= 13 && n <= 19 && known_issuer(digits, n) && luhn_ok(digits, n);
}

}  // namespace

// ---------------------------------------------------------------- rule files

std::vector<RuleSpec> load_rules_file(const std::string& path) {
  YAML::Node root = load_yaml_file(path, "rules file");
  std::vector<RuleSpec> out;
  if (root.IsNull()) return out;  // an empty file: no rules
  if (!root.IsMap()) rules_fail(path, &root, "expected a mapping with a 'rules' list");
  for (const auto& kv : root) {
    const std::string k = kv.first.as<std::string>();
    if (k != "rules") rules_fail(path, &kv.first, "unknown key '" + k + "' (known: rules)");
  }
  const YAML::Node list = root["rules"];
  if (!list || list.IsNull()) return out;
  if (!list.IsSequence()) rules_fail(path, &list, "'rules' must be a list");
  std::set<std::string> ids;
  size_t index = 0;
  for (const auto& n : list) {
    ++index;
    if (!n.IsMap()) rules_fail(path, &n, "rule #" + std::to_string(index) + ": expected a mapping");
    RuleSpec r;
    std::string name = "rule #" + std::to_string(index);
    if (n["id"]) {
      r.id = scalar_string(path, n["id"], name + ": 'id'");
      name = "rule '" + r.id + "'";
    }
    if (!valid_id(r.id)) rules_fail(path, &n, name + ": 'id' must be 1-128 characters of [A-Za-z0-9_.:-]");
    if (!ids.insert(r.id).second) rules_fail(path, &n, name + ": duplicate id");
    bool has_pattern = false;
    for (const auto& kv : n) {
      const std::string k = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      const std::string what = name + ": '" + k + "'";
      if (k == "id") continue;
      if (k == "pattern") {
        r.pattern = scalar_string(path, v, what);
        has_pattern = true;
      } else if (k == "flags") {
        r.flags = scalar_string(path, v, what);
        for (char c : r.flags) {
          if (std::string_view("ismu").find(c) == std::string_view::npos)
            rules_fail(path, &v, what + ": unknown flag '" + std::string(1, c) +
                                     "' (known: i caseless, s dot-all, m multi-line, u UTF-8)");
        }
      } else if (k == "side") {
        const std::string s = scalar_string(path, v, what);
        if (s == "request") r.side = RuleSide::kRequest;
        else if (s == "response") r.side = RuleSide::kResponse;
        else if (s == "both") r.side = RuleSide::kBoth;
        else rules_fail(path, &v, what + ": must be request, response or both");
      } else if (k == "scope") {
        const std::string s = scalar_string(path, v, what);
        if (s == "message") r.scope = RuleScope::kMessage;
        else if (s == "headers") r.scope = RuleScope::kHeaders;
        else rules_fail(path, &v, what + ": must be message or headers");
      } else if (k == "protocols") {
        if (!v.IsSequence()) rules_fail(path, &v, what + ": expected a list of protocol names");
        r.protocols = 0;
        for (const auto& p : v) {
          const std::string s = scalar_string(path, p, what);
          Protocol pr;
          if (s == "any") {
            r.protocols = kAllProtocols;
          } else if (protocol_from_string(s, &pr)) {
            r.protocols |= protocol_bit(pr);
          } else {
            rules_fail(path, &p, what + ": unknown protocol '" + s +
                                     "' (known: " + protocol_names() + ", unknown, any)");
          }
        }
        if (r.protocols == 0) rules_fail(path, &v, what + ": empty list (leave it out for every protocol)");
      } else if (k == "tag") {
        r.tag = scalar_string(path, v, what);
        if (r.tag.empty()) rules_fail(path, &v, what + ": empty tag");
      } else if (k == "redact") {
        if (!v.IsScalar()) rules_fail(path, &v, what + ": expected true or false");
        try {
          r.redact = v.as<bool>();
        } catch (const YAML::Exception&) {
          rules_fail(path, &v, what + ": expected true or false");
        }
      } else {
        rules_fail(path, &kv.first,
                   name + ": unknown key '" + k + "' (known: id, pattern, flags, side, protocols, scope, tag, redact)");
      }
    }
    if (!has_pattern || r.pattern.empty()) rules_fail(path, &n, name + ": 'pattern' is missing or empty");
    if (r.tag.empty()) r.tag = r.id;
    out.push_back(std::move(r));
  }
  return out;
}

// ---------------------------------------------------------------- RuleSet

struct RedactPattern {
  uint32_t rule;
  RedactKind kind;
};

struct RuleSet::Impl {
  std::array<hs_database_t*, 2> stream_db{};  // per side: rules that scan requests / responses
  std::array<size_t, 2> stream_size{};
  hs_database_t* redact_db = nullptr;         // block mode, start of match: field values
  std::vector<RedactPattern> redact;          // hs id -> rule and how to cut
  std::vector<uint32_t> protocols;            // per rule: protocol_bit()s
  std::vector<uint8_t> sides;                 // per rule: RuleSide bits
  std::vector<uint8_t> headers_only;          // per rule: scope == headers

  ~Impl() {
    for (hs_database_t* d : stream_db) hs_free_database(d);
    hs_free_database(redact_db);
  }
};

RuleSet::~RuleSet() = default;

size_t RuleSet::stream_bytes(Direction side) const { return impl_->stream_size[index_of(side)]; }

namespace {

// Compiles `patterns` into one database; on failure names the rule.
hs_database_t* compile_db(const std::vector<std::string>& patterns, const std::vector<unsigned>& flags,
                          const std::vector<unsigned>& ids, unsigned mode,
                          const std::function<std::string(unsigned)>& describe, std::string& error) {
  if (patterns.empty()) return nullptr;
  std::vector<const char*> exprs;
  for (const auto& p : patterns) exprs.push_back(p.c_str());
  hs_database_t* db = nullptr;
  hs_compile_error_t* err = nullptr;
  if (hs_compile_multi(exprs.data(), flags.data(), ids.data(), static_cast<unsigned>(exprs.size()), mode, nullptr,
                       &db, &err) != HS_SUCCESS) {
    if (err != nullptr && err->expression >= 0) {
      error = describe(static_cast<unsigned>(err->expression)) + ": " + err->message;
    } else {
      error = std::string("rule set does not compile: ") + (err != nullptr ? err->message : "unknown error");
    }
    hs_free_compile_error(err);
    return nullptr;
  }
  return db;
}

}  // namespace

std::shared_ptr<const RuleSet> RuleSet::compile(std::vector<RuleSpec> rules, const BuiltinRedaction& builtin,
                                                std::string& error) {
  std::shared_ptr<RuleSet> set(new RuleSet());
  set->impl_ = std::make_unique<Impl>();
  Impl& im = *set->impl_;
  set->user_rules_ = rules.size();
  for (auto& r : rules) {
    if (r.tag.empty()) r.tag = r.id;
    for (const BuiltinPattern& b : kBuiltinPatterns) {
      if (r.id == b.rule) {
        error = "rule '" + r.id + "': this id is reserved for a built-in redaction rule (switch it with rules.redact_*)";
        return nullptr;
      }
    }
  }
  if (rules.size() > 60000) {
    error = "more than 60000 rules";  // rule indices are 16-bit in messages
    return nullptr;
  }
  // Built-in rules after the user's: one rule per enabled kind.
  for (const BuiltinPattern& b : kBuiltinPatterns) {
    if (!builtin_enabled(b.rule, builtin)) continue;
    bool have = false;  // several patterns make one built-in rule
    for (size_t i = set->user_rules_; i < rules.size(); ++i) have |= rules[i].id == b.rule;
    if (have) continue;
    RuleSpec r;
    r.id = b.rule;
    r.tag = b.rule;
    r.pattern = "(built in)";
    r.redact = true;
    rules.push_back(std::move(r));
  }
  set->rules_ = std::move(rules);
  for (const RuleSpec& r : set->rules_) {
    im.protocols.push_back(r.protocols);
    im.sides.push_back(static_cast<uint8_t>(r.side));
    im.headers_only.push_back(r.scope == RuleScope::kHeaders ? 1 : 0);
  }
  auto describe = [&](const std::vector<std::string>& pats, const std::vector<unsigned>& ids) {
    return [&set, &pats, &ids](unsigned e) {
      const RuleSpec& r = set->rules_[ids[e]];
      return "rule '" + r.id + "' (pattern '" + pats[e] + "')";
    };
  };

  // Stream databases, one per side.
  for (size_t side = 0; side < 2; ++side) {
    const uint8_t bit = side == 0 ? static_cast<uint8_t>(RuleSide::kRequest) : static_cast<uint8_t>(RuleSide::kResponse);
    std::vector<std::string> pats;
    std::vector<unsigned> flags, ids;
    for (size_t i = 0; i < set->user_rules_; ++i) {
      const RuleSpec& r = set->rules_[i];
      if ((static_cast<uint8_t>(r.side) & bit) == 0) continue;
      pats.push_back(r.pattern);
      flags.push_back(hs_flags_of(r.flags));
      ids.push_back(static_cast<unsigned>(i));
    }
    im.stream_db[side] = compile_db(pats, flags, ids, HS_MODE_STREAM, describe(pats, ids), error);
    if (!error.empty()) return nullptr;
    if (im.stream_db[side] != nullptr) hs_stream_size(im.stream_db[side], &im.stream_size[side]);
  }

  // Redaction database: user rules with redact: true, then the built-ins.
  std::vector<std::string> pats;
  std::vector<unsigned> flags, ids;
  std::vector<unsigned> rule_of;
  for (size_t i = 0; i < set->user_rules_; ++i) {
    const RuleSpec& r = set->rules_[i];
    if (!r.redact) continue;
    ids.push_back(static_cast<unsigned>(pats.size()));
    rule_of.push_back(static_cast<unsigned>(i));
    pats.push_back(r.pattern);
    flags.push_back(hs_flags_of(r.flags) | HS_FLAG_SOM_LEFTMOST);
    im.redact.push_back({static_cast<uint32_t>(i), RedactKind::kWhole});
  }
  for (const BuiltinPattern& b : kBuiltinPatterns) {
    size_t rule = set->rules_.size();
    for (size_t i = set->user_rules_; i < set->rules_.size(); ++i) {
      if (set->rules_[i].id == b.rule) rule = i;
    }
    if (rule == set->rules_.size()) continue;  // switched off
    ids.push_back(static_cast<unsigned>(pats.size()));
    rule_of.push_back(static_cast<unsigned>(rule));
    pats.push_back(b.pattern);
    flags.push_back(b.flags);  // no start of match needed: the callback finds the value's start itself
    im.redact.push_back({static_cast<uint32_t>(rule), b.kind});
  }
  im.redact_db = compile_db(pats, flags, ids, HS_MODE_BLOCK,
                            [&](unsigned e) {
                              return "rule '" + set->rules_[rule_of[e]].id + "' (redaction of pattern '" + pats[e] +
                                     "' needs its start of match)";
                            },
                            error);
  if (!error.empty()) return nullptr;
  return set;
}

// ---------------------------------------------------------------- ContentScanner

void add(ContentCounters& a, const ContentCounters& b) {
  a.bytes_scanned += b.bytes_scanned;
  a.streams_opened += b.streams_opened;
  a.streams_exhausted += b.streams_exhausted;
  a.stream_restarts += b.stream_restarts;
  a.scan_errors += b.scan_errors;
  a.hits_stored += b.hits_stored;
  a.hits_attributed += b.hits_attributed;
  a.hits_discarded += b.hits_discarded;
  a.hits_dropped += b.hits_dropped;
  a.hits_pending += b.hits_pending;
  a.records_tagged += b.records_tagged;
  a.tags_truncated += b.tags_truncated;
  a.tags_lost_reload += b.tags_lost_reload;
  a.fields_scanned += b.fields_scanned;
  a.fields_redacted += b.fields_redacted;
  a.redaction_masked += b.redaction_masked;
  a.rule_sets_adopted += b.rule_sets_adopted;
  a.bodies_inflated += b.bodies_inflated;
  a.decoded_bytes += b.decoded_bytes;
  a.inflate_errors += b.inflate_errors;
  a.inflate_truncated += b.inflate_truncated;
  a.inflate_busy += b.inflate_busy;
  a.inflate_gaps += b.inflate_gaps;
  a.inflate_reload += b.inflate_reload;
}

namespace {

void add(RuleCounters& a, const RuleCounters& b) {
  a.matches += b.matches;
  a.records += b.records;
  a.redactions += b.redactions;
}

}  // namespace

struct ContentScanner::Generation {
  struct Hit {
    uint64_t first_end = 0;  // stream offset just past the match (adjacent ends of one rule merge)
    uint64_t last_end = 0;
    uint32_t rule = 0;
    uint32_t next = kNone;
    bool decoded = false;  // found in decoded content: belongs to the message in progress, not to offsets
  };

  uint32_t id = 0;
  std::shared_ptr<const RuleSet> set;
  const RuleSet::Impl* im = nullptr;
  hs_scratch_t* scratch = nullptr;
  std::array<std::vector<hs_stream_t*>, 2> streams;
  std::array<std::vector<uint32_t>, 2> free_streams;
  std::vector<Hit> hits;
  uint32_t hit_free = kNone;
  uint64_t hits_in_use = 0;
  uint32_t max_hits_per_direction = 64;
  std::vector<RuleCounters> rule_counters;

  // Folds this set's per-rule counters into `into` (by rule id).
  void fold(std::map<std::string, RuleCounters>& into) const {
    for (size_t i = 0; i < rule_counters.size(); ++i) add(into[set->rule(i).id], rule_counters[i]);
  }

  ~Generation() {
    for (auto& side : streams) {
      for (hs_stream_t* s : side) {
        if (s != nullptr) hs_close_stream(s, nullptr, nullptr, nullptr);
      }
    }
    hs_free_scratch(scratch);
  }
};

struct ContentScanner::DirState {
  uint32_t gen = 0;  // the generation the fields below belong to
  uint32_t stream = kNone;
  uint64_t stream_base = 0;  // stream offset where the Hyperscan stream started
  uint32_t hit_head = kNone;
  uint32_t hit_tail = kNone;
  uint16_t hit_count = 0;
  bool decoded = false;    // the stream was opened for a decoded flow (offsets meaningful)
  bool exhausted = false;  // no stream was free: this direction is not scanned (counted once)
  bool failed = false;     // Hyperscan reported an error: not scanned any more
  // Decoded content of the message in progress (compressed HTTP body, MySQL
  // compressed payloads): its own Hyperscan stream and, for bodies, a zlib context.
  uint32_t body_stream = kNone;
  uint32_t inflater = kNone;
  uint32_t body_out = 0;    // inflated bytes of this body so far
  bool body_done = false;   // the body is not scanned any further (error, cap, gap, no context)
};

struct ContentScanner::Inflater {
  z_stream zs{};
  bool ok = false;
  Inflater() {
    ok = inflateInit2(&zs, 15 + 32) == Z_OK;  // 15 + 32: gzip or zlib header, detected
    if (ok) warm_inflate(zs);  // the window is allocated now, not on a worker
  }
  ~Inflater() {
    if (ok) inflateEnd(&zs);
  }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
};

struct ContentScanner::ScanCtx {
  ContentScanner* self;
  DirState* ds;
  uint32_t proto_bit;
  bool keep;
  uint64_t base;
  bool decoded;  // scanning decoded content: hits belong to the message in progress
};

ContentScanner::ContentScanner(RulesControl& owner, uint32_t flow_capacity, uint32_t inflaters,
                               uint32_t inflate_max_bytes)
    : owner_(owner), dirs_(static_cast<size_t>(flow_capacity) * 2), inflate_max_bytes_(inflate_max_bytes) {
  inflate_out_.resize(16384);
  for (uint32_t i = 0; i < inflaters; ++i) {
    inflaters_.push_back(std::make_unique<Inflater>());
    if (inflaters_.back()->ok) free_inflaters_.push_back(i);
  }
  redact_buf_.reserve(2 * FieldList::kArenaBytes);
  join_buf_.reserve(FieldList::kArenaBytes + FieldList::kMaxFields);
}

ContentScanner::~ContentScanner() {
  std::lock_guard<std::mutex> lock(owner_.mu_);
  for (auto it = owner_.workers_.begin(); it != owner_.workers_.end(); ++it) {
    if (it->scanner != this) continue;
    for (auto& g : it->gens) g->fold(owner_.folded_);
    ContentCounters c = counters_;
    if (gen_ != nullptr) {  // matches still waiting when the worker went away
      c.hits_discarded += gen_->hits_in_use;
      c.hits_pending -= std::min(c.hits_pending, gen_->hits_in_use);
    }
    add(owner_.folded_totals_, c);
    owner_.workers_.erase(it);
    break;
  }
}

void ContentScanner::poll_reload() {
  if (offered_.load(std::memory_order_relaxed) == nullptr) return;
  Generation* g = offered_.exchange(nullptr, std::memory_order_acq_rel);
  if (g == nullptr) return;
  if (gen_ != nullptr) {
    // Streams and waiting matches of the old set are abandoned: flows scan
    // afresh under the new set from their next bytes.
    counters_.hits_discarded += gen_->hits_in_use;
    counters_.hits_pending -= std::min(counters_.hits_pending, gen_->hits_in_use);
  }
  gen_ = g;
  gen_id_ = g->id;
  // Bodies being inflated start afresh too: every zlib context is free again
  // (directions still pointing at one are of the old set and reset on sight).
  free_inflaters_.clear();
  for (uint32_t i = 0; i < inflaters_.size(); ++i) {
    if (!inflaters_[i]->ok) continue;
    inflateReset(&inflaters_[i]->zs);
    free_inflaters_.push_back(i);
  }
  ++counters_.rule_sets_adopted;
  active_.store(g, std::memory_order_release);
}

void ContentScanner::sync(DirState& ds) {
  // State of a replaced rule set: its streams and matches went with that set,
  // its zlib context back to the pool when the set was replaced. A body that
  // was being inflated cannot resume mid-stream: the rest of it is not scanned.
  if (ds.gen == gen_id_) return;
  const bool body = ds.inflater != kNone && !ds.body_done;
  ds = DirState{.gen = gen_id_};
  if (body) {
    ds.body_done = true;
    ++counters_.inflate_reload;
  }
}

bool ContentScanner::ensure_stream(DirState& ds, size_t side) {
  if (ds.stream != kNone) return true;
  if (ds.exhausted || ds.failed) return false;
  auto& free_list = gen_->free_streams[side];
  if (free_list.empty()) {
    ds.exhausted = true;
    ++counters_.streams_exhausted;
    return false;
  }
  ds.stream = free_list.back();
  free_list.pop_back();
  ++counters_.streams_opened;
  return true;
}

void ContentScanner::release(DirState& ds, size_t side) {
  if (ds.stream == kNone) return;
  hs_reset_stream(gen_->streams[side][ds.stream], 0, nullptr, nullptr, nullptr);
  gen_->free_streams[side].push_back(ds.stream);  // capacity reserved for every stream: never reallocates
  ds.stream = kNone;
}

void ContentScanner::scan(uint32_t slot, Protocol p, bool decoded, bool udp, Direction dir, uint64_t offset,
                          std::span<const std::byte> data) {
  if (gen_ == nullptr || data.empty()) return;
  const size_t side = index_of(dir);
  hs_database_t* db = gen_->im->stream_db[side];
  if (db == nullptr) return;
  DirState& ds = dirs_[static_cast<size_t>(slot) * 2 + side];
  sync(ds);
  if (ds.stream != kNone && ds.decoded != decoded) release(ds, side);  // detection changed what offsets mean
  const bool fresh = ds.stream == kNone;
  if (!ensure_stream(ds, side)) return;
  if (fresh || udp) ds.stream_base = offset;
  ds.decoded = decoded;
  ScanCtx ctx{this, &ds, protocol_bit(p), decoded, ds.stream_base, false};
  hs_stream_t* s = gen_->streams[side][ds.stream];
  counters_.bytes_scanned += data.size();
  hs_error_t rc = hs_scan_stream(s, reinterpret_cast<const char*>(data.data()), static_cast<unsigned>(data.size()), 0,
                                 gen_->scratch, on_match, &ctx);
  // A datagram is a whole message: end it (end-anchored patterns report now)
  // and let the next datagram start afresh.
  if (rc == HS_SUCCESS && udp) rc = hs_reset_stream(s, 0, gen_->scratch, on_match, &ctx);
  if (rc != HS_SUCCESS) {
    ++counters_.scan_errors;
    release(ds, side);
    ds.failed = true;
  }
}

int ContentScanner::on_match(unsigned id, unsigned long long /*from*/, unsigned long long to, unsigned /*flags*/,
                             void* c) {
  auto& ctx = *static_cast<ScanCtx*>(c);
  Generation& g = *ctx.self->gen_;
  if ((g.im->protocols[id] & ctx.proto_bit) == 0) return 0;
  ++g.rule_counters[id].matches;
  if (ctx.keep) ctx.self->add_hit(*ctx.ds, id, ctx.base + to, ctx.decoded);
  return 0;
}

void ContentScanner::add_hit(DirState& ds, uint32_t rule, uint64_t end, bool decoded) {
  Generation& g = *gen_;
  if (ds.hit_tail != kNone) {
    Generation::Hit& t = g.hits[ds.hit_tail];
    if (t.rule == rule && t.decoded == decoded && end <= t.last_end + 1) {  // one match growing byte by byte (x+)
      if (end > t.last_end) t.last_end = end;
      return;
    }
  }
  if (g.hit_free == kNone || ds.hit_count >= g.max_hits_per_direction) {
    ++counters_.hits_dropped;
    return;
  }
  const uint32_t i = g.hit_free;
  Generation::Hit& h = g.hits[i];
  g.hit_free = h.next;
  h = Generation::Hit{end, end, rule, kNone, decoded};
  if (ds.hit_tail != kNone) {
    g.hits[ds.hit_tail].next = i;
  } else {
    ds.hit_head = i;
  }
  ds.hit_tail = i;
  ++ds.hit_count;
  ++g.hits_in_use;
  ++counters_.hits_stored;
  ++counters_.hits_pending;
}

void ContentScanner::free_hit(DirState& ds, uint32_t i, uint32_t prev) {
  Generation& g = *gen_;
  Generation::Hit& h = g.hits[i];
  if (prev != kNone) {
    g.hits[prev].next = h.next;
  } else {
    ds.hit_head = h.next;
  }
  if (ds.hit_tail == i) ds.hit_tail = prev;
  h.next = g.hit_free;
  g.hit_free = i;
  --g.hits_in_use;
  --ds.hit_count;
  --counters_.hits_pending;
}

void ContentScanner::gap(uint32_t slot, Direction dir) {
  if (gen_ == nullptr) return;
  const size_t side = index_of(dir);
  DirState& ds = dirs_[static_cast<size_t>(slot) * 2 + side];
  if (ds.gen != gen_id_) return;
  if (ds.inflater != kNone && !ds.body_done) {  // a compressed body cannot be inflated across a hole
    ++counters_.inflate_gaps;
    ds.body_done = true;
  }
  if (ds.stream == kNone) return;
  release(ds, side);
  ++counters_.stream_restarts;
}

void ContentScanner::end_body(DirState& ds, size_t side) {
  if (ds.body_stream != kNone) {
    hs_reset_stream(gen_->streams[side][ds.body_stream], 0, nullptr, nullptr, nullptr);
    gen_->free_streams[side].push_back(ds.body_stream);
    ds.body_stream = kNone;
  }
  if (ds.inflater != kNone) {
    inflateReset(&inflaters_[ds.inflater]->zs);
    free_inflaters_.push_back(ds.inflater);  // capacity reserved for every context
    ds.inflater = kNone;
  }
  ds.body_out = 0;
  ds.body_done = false;
}

namespace {

// Moves an index from `free` to `into` (if `into` has none yet). None left:
// counts `busy` and marks the content done.
bool lease(std::vector<uint32_t>& free, uint32_t& into, uint64_t& busy, uint64_t& leased, bool& done) {
  if (into != kNone) return true;
  if (free.empty()) {
    ++busy;
    done = true;
    return false;
  }
  into = free.back();
  free.pop_back();
  ++leased;
  return true;
}

}  // namespace

ContentScanner::DirState* ContentScanner::content_state(uint32_t slot, Direction dir) {
  if (gen_ == nullptr || gen_->im->stream_db[index_of(dir)] == nullptr) return nullptr;  // no rules would look
  DirState& ds = dirs_[static_cast<size_t>(slot) * 2 + index_of(dir)];
  sync(ds);
  return ds.body_done ? nullptr : &ds;
}

void ContentScanner::decoded(uint32_t slot, Protocol p, Direction dir, std::span<const std::byte> bytes) {
  DirState* dsp = bytes.empty() ? nullptr : content_state(slot, dir);
  if (dsp == nullptr) return;
  DirState& ds = *dsp;
  const size_t side = index_of(dir);
  if (!lease(gen_->free_streams[side], ds.body_stream, counters_.streams_exhausted, counters_.streams_opened,
             ds.body_done)) {
    return;
  }
  ScanCtx ctx{this, &ds, protocol_bit(p), true, 0, true};
  counters_.decoded_bytes += bytes.size();
  if (hs_scan_stream(gen_->streams[side][ds.body_stream], reinterpret_cast<const char*>(bytes.data()),
                     static_cast<unsigned>(bytes.size()), 0, gen_->scratch, on_match, &ctx) != HS_SUCCESS) {
    ++counters_.scan_errors;
    ds.body_done = true;
  }
}

void ContentScanner::body(uint32_t slot, Protocol p, Direction dir, std::span<const std::byte> encoded) {
  DirState* dsp = encoded.empty() ? nullptr : content_state(slot, dir);
  if (dsp == nullptr) return;
  DirState& ds = *dsp;
  if (!lease(free_inflaters_, ds.inflater, counters_.inflate_busy, counters_.bodies_inflated, ds.body_done)) return;
  z_stream& z = inflaters_[ds.inflater]->zs;
  z.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(encoded.data()));
  z.avail_in = static_cast<uInt>(encoded.size());
  while (z.avail_in > 0 && !ds.body_done) {
    z.next_out = reinterpret_cast<Bytef*>(inflate_out_.data());
    z.avail_out = static_cast<uInt>(inflate_out_.size());
    const int rc = inflate(&z, Z_NO_FLUSH);
    size_t produced = inflate_out_.size() - z.avail_out;
    if (ds.body_out + produced > inflate_max_bytes_) {
      produced = inflate_max_bytes_ - ds.body_out;
      ++counters_.inflate_truncated;  // a decompression bomb stops here
      ds.body_done = true;
    }
    ds.body_out += static_cast<uint32_t>(produced);
    if (produced > 0) decoded(slot, p, dir, std::span<const std::byte>(inflate_out_.data(), produced));
    if (rc == Z_STREAM_END) break;  // anything after the compressed stream is ignored
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      ++counters_.inflate_errors;
      ds.body_done = true;
    } else if (produced == 0 && rc == Z_BUF_ERROR) {
      break;  // needs more input
    }
  }
}

void ContentScanner::close(uint32_t slot) {
  if (gen_ == nullptr) return;
  // Nothing to release when the set has no stream rules (directions of an
  // older set are reset lazily by their generation id).
  if (gen_->im->stream_db[0] == nullptr && gen_->im->stream_db[1] == nullptr) return;
  for (size_t side = 0; side < 2; ++side) {
    DirState& ds = dirs_[static_cast<size_t>(slot) * 2 + side];
    sync(ds);
    release(ds, side);
    end_body(ds, side);
    while (ds.hit_head != kNone) {
      free_hit(ds, ds.hit_head, kNone);
      ++counters_.hits_discarded;
    }
    ds = DirState{.gen = gen_id_};
  }
}

namespace {

// Adds `rule` to the message's rule hits once; false when there was no room.
bool add_rule_hit(Message& m, uint32_t rule) {
  for (size_t k = 0; k < m.rule_hit_count; ++k) {
    if (m.rule_hits[k] == rule) return true;
  }
  if (m.rule_hit_count == Message::kMaxRuleHits) return false;
  m.rule_hits[m.rule_hit_count++] = static_cast<uint16_t>(rule);
  return true;
}

}  // namespace

void ContentScanner::mark(uint32_t slot, Direction dir, Message& m) {
  if (gen_ == nullptr) return;
  m.rule_gen = gen_id_;
  const size_t side = index_of(dir);
  if (gen_->im->stream_db[side] == nullptr) return;  // no stream rules on this side: no hits
  DirState& ds = dirs_[static_cast<size_t>(slot) * 2 + side];
  if (ds.gen != gen_id_) return;
  if (ds.body_stream != kNone || ds.inflater != kNone || ds.body_done) end_body(ds, side);  // its content ends here
  if (ds.hit_head == kNone) return;
  // The message's bytes: [s, e). A match belongs to it when it ends inside.
  const uint64_t e = m.stream_end != 0 ? m.stream_end : UINT64_MAX;
  const uint64_t s = m.stream_end != 0 ? m.stream_end - std::min(m.stream_end, m.bytes) : 0;
  const uint64_t head_end = m.head_bytes != 0 ? s + m.head_bytes : UINT64_MAX;
  bool cut = false;
  uint32_t prev = kNone;
  for (uint32_t i = ds.hit_head; i != kNone;) {
    Generation::Hit& h = gen_->hits[i];
    const uint32_t next = h.next;
    bool done = false;
    if (h.decoded) {  // in this message's decoded content (never its headers)
      if (!gen_->im->headers_only[h.rule]) cut |= !add_rule_hit(m, h.rule);
      done = true;
      ++counters_.hits_attributed;
    } else if (h.last_end <= s) {
      done = true;  // before this message: bytes no record covers (or a message that was not kept)
      ++counters_.hits_discarded;
    } else if (h.first_end <= e) {
      if (!gen_->im->headers_only[h.rule] || h.first_end <= head_end) cut |= !add_rule_hit(m, h.rule);
      if (h.last_end <= e) {
        done = true;
        ++counters_.hits_attributed;
      } else {
        h.first_end = e + 1;  // the rest of a growing match lies in the next message
      }
    }
    if (done) {
      free_hit(ds, i, prev);
    } else {
      prev = i;
    }
    i = next;
  }
  if (cut) ++counters_.tags_truncated;
}

void ContentScanner::add_tag(uint32_t rule, Tags& tags, size_t& n) {
  for (size_t i = 0; i < rec_rules_n_; ++i) {
    if (rec_rules_[i] == rule) return;
  }
  if (rec_rules_n_ < rec_rules_.size()) rec_rules_[rec_rules_n_++] = rule;
  ++gen_->rule_counters[rule].records;
  const std::string_view t = gen_->set->rule(rule).tag;
  for (size_t i = 0; i < n; ++i) {
    if (tags[i] == t) return;
  }
  if (n == kMaxTags) {
    tags_cut_ = true;
    return;
  }
  tags[n++] = t;
}

struct RedactRange {
  uint32_t from, to, rule;  // within the field's value
  uint32_t field;           // index into the scanned fields
};

// The string fields of one message, scanned in one call: values joined with
// NUL separators (no built-in pattern crosses a NUL; a user pattern that does
// sends the message back through field-by-field scans).
struct ContentScanner::RedactCtx {
  const RuleSet::Impl* im;
  std::string_view text;                  // the joined values (or one value)
  std::array<uint32_t, FieldList::kMaxFields> starts{};  // value k: text[starts[k], ends[k])
  std::array<uint32_t, FieldList::kMaxFields> ends{};
  size_t fields = 0;
  uint32_t proto_bit;
  uint8_t side_bit;
  std::array<RedactRange, 24> ranges;
  size_t n = 0;
  bool overflow = false;
  bool spanning = false;
};

namespace {

using Range = RedactRange;
using RedactCtx = ContentScanner::RedactCtx;

int on_redact_match(unsigned id, unsigned long long from, unsigned long long to, unsigned /*flags*/, void* c) {
  auto& ctx = *static_cast<RedactCtx*>(c);
  const RedactPattern& rp = ctx.im->redact[id];
  if ((ctx.im->protocols[rp.rule] & ctx.proto_bit) == 0 || (ctx.im->sides[rp.rule] & ctx.side_bit) == 0) return 0;
  size_t k = 0;
  while (k + 1 < ctx.fields && ctx.starts[k + 1] <= from) ++k;
  if (to > ctx.ends[k]) {
    ctx.spanning = true;
    return 0;
  }
  const std::string_view v = ctx.text.substr(ctx.starts[k], ctx.ends[k] - ctx.starts[k]);
  // Built-in patterns are compiled without start of match (cheaper): their
  // value is found by walking back from the end.
  size_t e = static_cast<size_t>(to) - ctx.starts[k];
  size_t b = rp.kind == RedactKind::kWhole ? static_cast<size_t>(from) - ctx.starts[k] : e;
  auto back_while = [&](auto pred, size_t max) {
    while (b > 0 && e - b < max && pred(v[b - 1])) --b;
  };
  switch (rp.kind) {
    case RedactKind::kWhole: break;
    case RedactKind::kCard:
      back_while([](char c) { return is_digit(c) || c == ' ' || c == '-'; }, 48);
      while (b < e && !is_digit(v[b])) ++b;
      if (!card_number(v, b, e)) return 0;
      break;
    case RedactKind::kAfterKeyword:  // "Bearer <token>": the token
      back_while([](char c) { return c != ' ' && c != '\t'; }, 4096);
      break;
    case RedactKind::kAfterEquals: {  // name=value: what follows the name's '='
      back_while([](char c) { return c != '&' && c != ' ' && c != '\t' && c != '"' && c != '\'' && c != '?'; }, 4096);
      while (b < e && v[b] != '=') ++b;
      ++b;
      break;
    }
    case RedactKind::kQuoted: {  // keyword '...': the quoted text
      const char q = v[e - 1];
      --e;  // the closing quote stays
      b = e;
      back_while([q](char c) { return c != q; }, 4096);
      break;
    }
  }
  if (b >= e) return 0;
  // Growing matches report every end: merge with an overlapping range of the same rule.
  for (size_t i = 0; i < ctx.n; ++i) {
    Range& r = ctx.ranges[i];
    if (r.field == k && r.rule == rp.rule && b <= r.to && e >= r.from) {
      r.from = std::min<uint32_t>(r.from, static_cast<uint32_t>(b));
      r.to = std::max<uint32_t>(r.to, static_cast<uint32_t>(e));
      return 0;
    }
  }
  if (ctx.n == ctx.ranges.size()) {
    ctx.overflow = true;
    return 0;
  }
  ctx.ranges[ctx.n++] = Range{static_cast<uint32_t>(b), static_cast<uint32_t>(e), rp.rule, static_cast<uint32_t>(k)};
  return 0;
}

}  // namespace

bool ContentScanner::redact_scan(RedactCtx& ctx) {
  if (hs_scan(gen_->im->redact_db, ctx.text.data(), static_cast<unsigned>(ctx.text.size()), 0, gen_->scratch,
              on_redact_match, &ctx) == HS_SUCCESS) {
    return true;
  }
  ++counters_.scan_errors;
  return false;
}

// Rewrites field `i` with its ranges [first, last) of ctx.ranges (sorted by start).
void ContentScanner::redact_apply(Message& m, size_t i, const RedactCtx& ctx, size_t first, size_t last) {
  FieldList& fl = m.fields;
  const std::string_view value = fl.string_of(fl[i]);
  redact_buf_.clear();
  size_t at = 0;
  for (size_t k = first; k < last; ++k) {
    const Range& r = ctx.ranges[k];
    ++gen_->rule_counters[r.rule].redactions;
    add_rule_hit(m, r.rule);  // the record carries the redacting rule's tag
    if (r.to <= at) continue;
    const size_t from = std::max<size_t>(r.from, at);
    redact_buf_.append(value.substr(at, from - at));
    redact_buf_.append(kRedacted);
    at = r.to;
  }
  redact_buf_.append(value.substr(std::min(at, value.size())));
  ++counters_.fields_redacted;
  if (!fl.replace_string(i, redact_buf_)) {
    ++counters_.redaction_masked;
    for (size_t k = first; k < last; ++k) fl.mask(i, ctx.ranges[k].from, ctx.ranges[k].to, '*');
  }
}

void ContentScanner::redact(Message& m, Protocol p, Direction dir) {
  FieldList& fl = m.fields;
  RedactCtx ctx{};
  ctx.im = gen_->im;
  ctx.proto_bit = protocol_bit(p);
  ctx.side_bit = static_cast<uint8_t>(dir == Direction::kClientToServer ? RuleSide::kRequest : RuleSide::kResponse);
  std::array<uint8_t, FieldList::kMaxFields> index{};  // scanned value k is field index[k]
  join_buf_.clear();
  for (size_t i = 0; i < fl.size(); ++i) {
    const Field& f = fl[i];
    if (f.kind != FieldKind::kString || f.len == 0) continue;
    ctx.starts[ctx.fields] = static_cast<uint32_t>(join_buf_.size());
    join_buf_.append(fl.string_of(f));
    ctx.ends[ctx.fields] = static_cast<uint32_t>(join_buf_.size());
    join_buf_.push_back('\0');
    index[ctx.fields++] = static_cast<uint8_t>(i);
  }
  if (ctx.fields == 0) return;
  counters_.fields_scanned += ctx.fields;
  ctx.text = join_buf_;
  if (!redact_scan(ctx)) return;
  if (ctx.spanning || ctx.overflow) {
    // A match crossed from one value into the next (a user pattern that
    // spans NUL), or there were more ranges than tracked: value by value.
    const size_t fields = ctx.fields;
    for (size_t k = 0; k < fields; ++k) {
      RedactCtx one{};
      one.im = ctx.im;
      one.proto_bit = ctx.proto_bit;
      one.side_bit = ctx.side_bit;
      one.text = fl.string_of(fl[index[k]]);
      one.ends[0] = static_cast<uint32_t>(one.text.size());
      one.fields = 1;
      if (!redact_scan(one) || one.n == 0) continue;
      if (one.overflow) {  // more ranges than we track: the whole value goes
        one.ranges[0] = Range{0, static_cast<uint32_t>(one.text.size()), one.ranges[0].rule, 0};
        one.n = 1;
      }
      std::sort(one.ranges.begin(), one.ranges.begin() + static_cast<std::ptrdiff_t>(one.n),
                [](const Range& a, const Range& b) { return a.from < b.from; });
      redact_apply(m, index[k], one, 0, one.n);
    }
    return;
  }
  if (ctx.n == 0) return;
  std::sort(ctx.ranges.begin(), ctx.ranges.begin() + static_cast<std::ptrdiff_t>(ctx.n),
            [](const Range& a, const Range& b) { return a.field != b.field ? a.field < b.field : a.from < b.from; });
  for (size_t k = 0; k < ctx.n;) {
    size_t e = k;
    while (e < ctx.n && ctx.ranges[e].field == ctx.ranges[k].field) ++e;
    redact_apply(m, index[ctx.ranges[k].field], ctx, k, e);
    k = e;
  }
}

size_t ContentScanner::annotate(Protocol p, Message* request, Message* response, Tags& tags) {
  if (gen_ == nullptr) return 0;
  size_t n = 0;
  rec_rules_n_ = 0;
  tags_cut_ = false;
  const bool redaction = gen_->im->redact_db != nullptr;
  Message* msgs[2] = {request, response};
  for (size_t side = 0; side < 2; ++side) {
    Message* m = msgs[side];
    if (m == nullptr) continue;
    if (m->rule_gen != gen_id_) {  // marked under a set that has since been replaced
      if (m->rule_hit_count != 0) ++counters_.tags_lost_reload;
      m->rule_hit_count = 0;
      m->rule_gen = gen_id_;
    }
    if (redaction) redact(*m, p, side == 0 ? Direction::kClientToServer : Direction::kServerToClient);
    for (size_t k = 0; k < m->rule_hit_count; ++k) add_tag(m->rule_hits[k], tags, n);
  }
  if (n > 0) ++counters_.records_tagged;
  if (tags_cut_) ++counters_.tags_truncated;
  return n;
}

// ---------------------------------------------------------------- RulesControl

RulesControl::RulesControl(std::string file, const BuiltinRedaction& builtin, const Limits& limits)
    : file_(std::move(file)), builtin_(builtin), limits_(limits) {
  std::vector<RuleSpec> rules;
  if (!file_.empty()) rules = load_rules_file(file_);
  std::string error;
  set_ = RuleSet::compile(std::move(rules), builtin_, error);
  if (!set_) throw ConfigError(file_ + ": " + error);
  version_ = 1;
}

RulesControl::~RulesControl() = default;

std::unique_ptr<ContentScanner::Generation> RulesControl::make_generation(const std::shared_ptr<const RuleSet>& set) {
  auto g = std::make_unique<ContentScanner::Generation>();
  g->id = next_gen_id_++;
  g->set = set;
  g->im = &set->impl();
  g->max_hits_per_direction = limits_.max_hits_per_direction;
  g->rule_counters.resize(set->size());
  auto fail = [](const std::string& what) { throw ConfigError("rules: " + what); };
  const RuleSet::Impl& im = set->impl();
  for (hs_database_t* db : {im.stream_db[0], im.stream_db[1], im.redact_db}) {
    if (db != nullptr && hs_alloc_scratch(db, &g->scratch) != HS_SUCCESS) fail("cannot allocate Hyperscan scratch");
  }
  for (size_t side = 0; side < 2; ++side) {
    if (im.stream_db[side] == nullptr) continue;
    g->streams[side].resize(limits_.max_streams, nullptr);
    g->free_streams[side].reserve(limits_.max_streams);
    for (uint32_t i = 0; i < limits_.max_streams; ++i) {
      if (hs_open_stream(im.stream_db[side], 0, &g->streams[side][i]) != HS_SUCCESS)
        fail("cannot allocate " + std::to_string(limits_.max_streams) + " Hyperscan streams (rules.max_streams)");
    }
    for (uint32_t i = limits_.max_streams; i-- > 0;) g->free_streams[side].push_back(i);
  }
  g->hits.resize(limits_.hit_pool);
  for (uint32_t i = limits_.hit_pool; i-- > 0;) {
    g->hits[i].next = g->hit_free;
    g->hit_free = i;
  }
  return g;
}

std::unique_ptr<ContentScanner> RulesControl::scanner(uint32_t flow_capacity) {
  std::unique_ptr<ContentScanner> s(
      new ContentScanner(*this, flow_capacity, limits_.inflaters, limits_.inflate_max_bytes));
  auto g = make_generation(set_);
  std::lock_guard<std::mutex> lock(mu_);
  s->gen_ = g.get();
  s->gen_id_ = g->id;
  s->active_.store(g.get(), std::memory_order_release);
  Owned o;
  o.scanner = s.get();
  o.gens.push_back(std::move(g));
  workers_.push_back(std::move(o));
  return s;
}

bool RulesControl::reload(std::string& message) {
  std::shared_ptr<const RuleSet> set;
  std::string error;
  try {
    std::vector<RuleSpec> rules;
    if (!file_.empty()) rules = load_rules_file(file_);
    set = RuleSet::compile(std::move(rules), builtin_, error);
    if (set) error.clear();
    else error = file_ + ": " + error;
  } catch (const ConfigError& e) {
    error = e.what();
  }
  std::vector<std::unique_ptr<ContentScanner::Generation>> gens;
  if (set) {
    try {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < workers_.size(); ++i) gens.push_back(make_generation(set));
    } catch (const ConfigError& e) {
      error = e.what();
      set.reset();
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!set) {
    ++reloads_failed_;
    last_error_ = error;
    message = "rules reload refused, the running set stays (version " + std::to_string(version_) + "): " + error;
    return false;
  }
  set_ = set;
  ++version_;
  ++reloads_ok_;
  last_error_.clear();
  for (size_t w = 0; w < workers_.size(); ++w) {
    Owned& o = workers_[w];
    ContentScanner::Generation* g = gens[w].get();
    ContentScanner::Generation* prev = o.scanner->offered_.exchange(g, std::memory_order_acq_rel);
    if (prev != nullptr) {  // offered earlier and never taken: it never ran
      std::erase_if(o.gens, [prev](const auto& p) { return p.get() == prev; });
    }
    o.offered = g;
    o.gens.push_back(std::move(gens[w]));
  }
  message = "rules reloaded: version " + std::to_string(version_) + ", " + std::to_string(set->user_rules()) +
            " rule(s)";
  return true;
}

void RulesControl::collect() {
  std::lock_guard<std::mutex> lock(mu_);
  for (Owned& o : workers_) {
    ContentScanner::Generation* active = o.scanner->active_.load(std::memory_order_acquire);
    if (o.offered == active) o.offered = nullptr;
    std::erase_if(o.gens, [&](const std::unique_ptr<ContentScanner::Generation>& g) {
      if (g.get() == active || g.get() == o.offered) return false;
      g->fold(folded_);  // retired: its counters are final
      return true;
    });
  }
}

RulesReport RulesControl::report() {
  std::lock_guard<std::mutex> lock(mu_);
  RulesReport r;
  r.present = true;
  r.file = file_;
  r.version = version_;
  r.rules = set_->user_rules();
  r.builtin = set_->size() - set_->user_rules();
  r.reloads_ok = reloads_ok_;
  r.reloads_failed = reloads_failed_;
  r.last_error = last_error_;
  std::map<std::string, RuleCounters> sum = folded_;
  for (const Owned& o : workers_) {
    for (const auto& g : o.gens) {
      g->fold(sum);
      for (size_t side = 0; side < 2; ++side) {
        r.stream_memory_bytes +=
            g->streams[side].size() * g->set->stream_bytes(side == 0 ? Direction::kClientToServer
                                                                      : Direction::kServerToClient);
      }
    }
  }
  for (size_t i = 0; i < set_->size(); ++i) {
    const std::string& id = set_->rule(i).id;
    r.per_rule.push_back({id, true, sum[id]});
    sum.erase(id);
  }
  for (const auto& [id, c] : sum) r.per_rule.push_back({id, false, c});
  ContentCounters t = folded_totals_;
  for (const Owned& o : workers_) add(t, o.scanner->counters_);
  r.totals = t;
  return r;
}

std::unique_ptr<RulesControl> make_rules_control(const Config& cfg) {
  if (cfg.job != JobKind::kRecords) return nullptr;
  BuiltinRedaction b{cfg.redact_credit_cards, cfg.redact_bearer_tokens, cfg.redact_passwords};
  if (cfg.rules_file.empty() && !b.credit_cards && !b.bearer_tokens && !b.passwords) return nullptr;
  RulesControl::Limits l;
  l.max_streams = cfg.rules_max_streams;
  l.hit_pool = cfg.rules_hit_pool;
  l.inflaters = cfg.rules_inflaters;
  l.inflate_max_bytes = cfg.rules_inflate_max_kb * 1024;
  return std::make_unique<RulesControl>(cfg.rules_file, b, l);
}

}  // namespace spanfeed
