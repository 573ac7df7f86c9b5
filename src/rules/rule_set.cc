// RuleSet: compiles user rules and the enabled built-in redaction rules into Hyperscan databases.
// Control core only (start-up and SIGHUP reload); allocates.
#include "rules/rule_set_impl.h"

#include <functional>

#include "decode/detect/hs_cache.h"

namespace spanfeed {

namespace {

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

// Compiles `patterns` into one database; on failure names the rule.
hs_database_t* compile_db(const std::vector<std::string>& patterns, const std::vector<unsigned>& flags,
                          const std::vector<unsigned>& ids, unsigned mode,
                          const std::function<std::string(unsigned)>& describe, std::string& error) {
  if (patterns.empty()) return nullptr;
  std::vector<const char*> exprs;
  for (const auto& p : patterns) exprs.push_back(p.c_str());
  hs_database_t* db = nullptr;
  hs_compile_error_t* err = nullptr;
  if (hs_compile_multi_cached(exprs.data(), flags.data(), ids.data(), static_cast<unsigned>(exprs.size()), mode, &db,
                              &err) != HS_SUCCESS) {
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

RuleSet::~RuleSet() = default;

size_t RuleSet::stream_bytes(Direction side) const { return impl_->stream_size[index_of(side)]; }

std::shared_ptr<const RuleSet> RuleSet::compile(std::vector<RuleSpec> rules, const BuiltinRedaction& builtin,
                                                std::string& error) {
  std::shared_ptr<RuleSet> set(new RuleSet());
  set->impl_ = std::make_unique<Impl>();
  Impl& im = *set->impl_;
  set->user_rules_ = rules.size();
  for (auto& r : rules) {
    if (r.tag.empty()) r.tag = r.id;
    for (const BuiltinPattern& b : builtin_patterns()) {
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
  for (const BuiltinPattern& b : builtin_patterns()) {
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
  im.redact_builtin_only = pats.empty();  // no user redaction rule
  for (const BuiltinPattern& b : builtin_patterns()) {
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

}  // namespace spanfeed
