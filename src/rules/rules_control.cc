// RulesControl: start-up compile, per-worker generations, SIGHUP reload, counter folding and the
// rules report. Control core only; allocates.
#include "rules/rules_control.h"

#include "rules/generation.h"
#include "spanfeed/config.h"

namespace spanfeed {

void accumulate(RulesCounters& a, const RulesCounters& b) {
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


void accumulate(RuleCounters& a, const RuleCounters& b) {
  a.matches += b.matches;
  a.records += b.records;
  a.redactions += b.redactions;
}

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

std::unique_ptr<RuleGeneration> RulesControl::make_generation(const std::shared_ptr<const RuleSet>& set) {
  auto g = std::make_unique<RuleGeneration>();
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

std::unique_ptr<RulesScanner> RulesControl::scanner(uint32_t flow_capacity) {
  std::unique_ptr<RulesScanner> s(
      new RulesScanner(*this, flow_capacity, limits_.inflaters, limits_.inflate_max_bytes));
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
  std::vector<std::unique_ptr<RuleGeneration>> gens;
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
    RuleGeneration* g = gens[w].get();
    RuleGeneration* prev = o.scanner->offered_.exchange(g, std::memory_order_acq_rel);
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
    RuleGeneration* active = o.scanner->active_.load(std::memory_order_acquire);
    if (o.offered == active) o.offered = nullptr;
    std::erase_if(o.gens, [&](const std::unique_ptr<RuleGeneration>& g) {
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
  RulesCounters t = folded_totals_;
  for (const Owned& o : workers_) accumulate(t, o.scanner->counters_);
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
