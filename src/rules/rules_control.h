// RulesControl: the control core's side of the rules engine. Compiles the start-up set (failures
// are start-up errors), builds each worker's scanner, compiles and hands out a new set on SIGHUP
// reload, folds the counters of retired sets. Control core only; allocates.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rules/rule_set.h"
#include "rules/rules_report.h"
#include "rules/scanner.h"

namespace spanfeed {

struct Config;

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
  std::unique_ptr<RulesScanner> scanner(uint32_t flow_capacity);

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
  friend class RulesScanner;
  std::unique_ptr<RuleGeneration> make_generation(const std::shared_ptr<const RuleSet>& set);

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
    RulesScanner* scanner = nullptr;
    RuleGeneration* offered = nullptr;  // handed out, not yet seen active
    std::vector<std::unique_ptr<RuleGeneration>> gens;  // offered or active
  };
  std::vector<Owned> workers_;
  std::map<std::string, RuleCounters> folded_;  // counters of retired sets, by rule id
  RulesCounters folded_totals_;
};

// The rules a config asks for (rules.file + built-in switches). nullptr when
// there is nothing to scan for: no file and every built-in switched off.
std::unique_ptr<RulesControl> make_rules_control(const Config& cfg);

}  // namespace spanfeed
