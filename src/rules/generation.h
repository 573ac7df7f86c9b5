// A rule set as one worker runs it: Hyperscan scratch, stream pools, the hit pool and per-rule
// counters. Built on the control core (RulesControl::make_generation, allocates); used by one
// worker's scanner (never allocates there); freed by the control core once the worker left it.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rules/rule_set_impl.h"
#include "rules/rules_report.h"

namespace spanfeed {

// Aligned: the generations of all workers are made one after another on a
// reload, and the fields a worker writes per match (hit_free, hits_in_use)
// must not share a cache line with the next worker's allocations.
struct alignas(64) RuleGeneration {
  struct Hit {
    uint64_t first_end = 0;  // stream offset just past the match (adjacent ends of one rule merge)
    uint64_t last_end = 0;
    uint32_t rule = 0;
    uint32_t next = kNoIndex;
    bool decoded = false;  // found in decoded content: belongs to the message in progress, not to offsets
  };

  uint32_t id = 0;
  std::shared_ptr<const RuleSet> set;
  const RuleSet::Impl* im = nullptr;
  hs_scratch_t* scratch = nullptr;
  std::array<std::vector<hs_stream_t*>, 2> streams;
  std::array<std::vector<uint32_t>, 2> free_streams;
  std::vector<Hit> hits;
  uint32_t hit_free = kNoIndex;
  uint64_t hits_in_use = 0;
  uint32_t max_hits_per_direction = 64;
  std::vector<RuleCounters> rule_counters;

  // Folds this set's per-rule counters into `into` (by rule id).
  void fold(std::map<std::string, RuleCounters>& into) const {
    for (size_t i = 0; i < rule_counters.size(); ++i) accumulate(into[set->rule(i).id], rule_counters[i]);
  }

  ~RuleGeneration() {
    for (auto& side : streams) {
      for (hs_stream_t* s : side) {
        if (s != nullptr) hs_close_stream(s, nullptr, nullptr, nullptr);
      }
    }
    hs_free_scratch(scratch);
  }
};

}  // namespace spanfeed
