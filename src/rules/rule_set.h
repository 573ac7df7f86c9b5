// An immutable compiled rule set (Hyperscan databases behind an opaque Impl), shared by every
// worker's scanner. Compiled on the control core (allocates); read-only on the workers.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "rules/builtin_redaction.h"
#include "rules/rule_file.h"

namespace spanfeed {

// User rules (stream databases per side) and redaction rules (a block
// database with start-of-match over field values).
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

  struct Impl;  // rules/rule_set_impl.h (includes hs.h: rules sources only)
  const Impl& impl() const { return *impl_; }

 private:
  RuleSet() = default;
  std::vector<RuleSpec> rules_;
  size_t user_rules_ = 0;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spanfeed
