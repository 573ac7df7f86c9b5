// RulesScanner: per-worker streaming scans, matches attributed to messages, record tags, decoded
// content (inflated bodies). Runs on one worker lcore and never allocates: streams, hits and zlib
// contexts come from pools the control core built (RulesControl::make_generation).
#include "rules/scanner.h"

#include <algorithm>
#include <mutex>

#include "rules/generation.h"
#include "rules/rules_control.h"

namespace spanfeed {

static_assert(kNoIndex == InflatePool::kNone, "a DirState holds pool indices and kNoIndex alike");

struct RulesScanner::DirState {
  uint32_t gen = 0;  // the generation the fields below belong to
  uint32_t stream = kNoIndex;
  uint64_t stream_base = 0;  // stream offset where the Hyperscan stream started
  uint32_t hit_head = kNoIndex;
  uint32_t hit_tail = kNoIndex;
  uint16_t hit_count = 0;
  bool decoded = false;    // the stream was opened for a decoded flow (offsets meaningful)
  bool exhausted = false;  // no stream was free: this direction is not scanned (counted once)
  bool failed = false;     // Hyperscan reported an error: not scanned any more
  // Decoded content of the message in progress (compressed HTTP body, MySQL
  // compressed payloads): its own Hyperscan stream and, for bodies, a zlib context.
  uint32_t body_stream = kNoIndex;
  uint32_t inflater = kNoIndex;
  uint32_t body_out = 0;    // inflated bytes of this body so far
  bool body_done = false;   // the body is not scanned any further (error, cap, gap, no context)
};

struct RulesScanner::ScanCtx {
  RulesScanner* self;
  DirState* ds;
  uint32_t proto_bit;
  bool keep;
  uint64_t base;
  bool decoded;  // scanning decoded content: hits belong to the message in progress
};

RulesScanner::RulesScanner(RulesControl& owner, uint32_t flow_capacity, uint32_t inflaters,
                           uint32_t inflate_max_bytes)
    : owner_(owner),
      inflaters_(inflaters, InflatePool::Format::kZlibOrGzip, 16384),
      inflate_max_bytes_(inflate_max_bytes) {
  // Reserved, not constructed: dir_state() makes a slot's pair when the slot
  // is first reached (flow tables hand out low slots first). Never reallocates.
  dirs_.reserve(static_cast<size_t>(flow_capacity) * 2);
}

RulesScanner::~RulesScanner() {
  std::lock_guard<std::mutex> lock(owner_.mu_);
  for (auto it = owner_.workers_.begin(); it != owner_.workers_.end(); ++it) {
    if (it->scanner != this) continue;
    for (auto& g : it->gens) g->fold(owner_.folded_);
    RulesCounters c = counters_;
    if (gen_ != nullptr) {  // matches still waiting when the worker went away
      c.hits_discarded += gen_->hits_in_use;
      c.hits_pending -= std::min<uint64_t>(c.hits_pending, gen_->hits_in_use);
    }
    accumulate(owner_.folded_totals_, c);
    owner_.workers_.erase(it);
    break;
  }
}

void RulesScanner::adopt_offered() {
  RuleGeneration* g = offered_.exchange(nullptr, std::memory_order_acq_rel);
  if (g == nullptr) return;
  if (gen_ != nullptr) {
    // Streams and waiting matches of the old set are abandoned: flows scan
    // afresh under the new set from their next bytes.
    counters_.hits_discarded += gen_->hits_in_use;
    counters_.hits_pending -= std::min<uint64_t>(counters_.hits_pending, gen_->hits_in_use);
  }
  gen_ = g;
  gen_id_ = g->id;
  // Bodies being inflated start afresh too: every zlib context is free again
  // (directions still pointing at one are of the old set and reset on sight).
  inflaters_.release_all();
  ++counters_.rule_sets_adopted;
  active_.store(g, std::memory_order_release);
}

void RulesScanner::sync(DirState& ds) {
  // State of a replaced rule set: its streams and matches went with that set,
  // its zlib context back to the pool when the set was replaced. A body that
  // was being inflated cannot resume mid-stream: the rest of it is not scanned.
  if (ds.gen == gen_id_) return;
  const bool body = ds.inflater != kNoIndex && !ds.body_done;
  ds = DirState{.gen = gen_id_};
  if (body) {
    ds.body_done = true;
    ++counters_.inflate_reload;
  }
}

RulesScanner::DirState& RulesScanner::dir_state(uint32_t slot, size_t side) {
  const size_t i = static_cast<size_t>(slot) * 2 + side;
  if (i >= dirs_.size()) dirs_.resize(static_cast<size_t>(slot) * 2 + 2);
  return dirs_[i];
}

bool RulesScanner::ensure_stream(DirState& ds, size_t side) {
  if (ds.stream != kNoIndex) return true;
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

void RulesScanner::release(DirState& ds, size_t side) {
  if (ds.stream == kNoIndex) return;
  hs_reset_stream(gen_->streams[side][ds.stream], 0, nullptr, nullptr, nullptr);
  gen_->free_streams[side].push_back(ds.stream);  // capacity reserved for every stream: never reallocates
  ds.stream = kNoIndex;
}

void RulesScanner::scan(uint32_t slot, Protocol p, bool decoded, bool udp, Direction dir, uint64_t offset,
                          std::span<const std::byte> data) {
  if (gen_ == nullptr || data.empty() || gen_->im->stream_db[index_of(dir)] == nullptr) return;
  scan_stream(slot, p, decoded, udp, dir, offset, data);
}

[[gnu::noinline]] void RulesScanner::scan_stream(uint32_t slot, Protocol p, bool decoded, bool udp, Direction dir,
                                                 uint64_t offset, std::span<const std::byte> data) {
  const size_t side = index_of(dir);
  DirState& ds = dir_state(slot, side);
  sync(ds);
  if (ds.stream != kNoIndex && ds.decoded != decoded) release(ds, side);  // detection changed what offsets mean
  const bool fresh = ds.stream == kNoIndex;
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

int RulesScanner::on_match(unsigned id, unsigned long long /*from*/, unsigned long long to, unsigned /*flags*/,
                             void* c) {
  auto& ctx = *static_cast<ScanCtx*>(c);
  RuleGeneration& g = *ctx.self->gen_;
  if ((g.im->protocols[id] & ctx.proto_bit) == 0) return 0;
  ++g.rule_counters[id].matches;
  if (ctx.keep) ctx.self->add_hit(*ctx.ds, id, ctx.base + to, ctx.decoded);
  return 0;
}

void RulesScanner::add_hit(DirState& ds, uint32_t rule, uint64_t end, bool decoded) {
  RuleGeneration& g = *gen_;
  if (ds.hit_tail != kNoIndex) {
    RuleGeneration::Hit& t = g.hits[ds.hit_tail];
    if (t.rule == rule && t.decoded == decoded && end <= t.last_end + 1) {  // one match growing byte by byte (x+)
      if (end > t.last_end) t.last_end = end;
      return;
    }
  }
  if (g.hit_free == kNoIndex || ds.hit_count >= g.max_hits_per_direction) {
    ++counters_.hits_dropped;
    return;
  }
  const uint32_t i = g.hit_free;
  RuleGeneration::Hit& h = g.hits[i];
  g.hit_free = h.next;
  h = RuleGeneration::Hit{end, end, rule, kNoIndex, decoded};
  if (ds.hit_tail != kNoIndex) {
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

void RulesScanner::free_hit(DirState& ds, uint32_t i, uint32_t prev) {
  RuleGeneration& g = *gen_;
  RuleGeneration::Hit& h = g.hits[i];
  if (prev != kNoIndex) {
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

void RulesScanner::gap(uint32_t slot, Direction dir) {
  if (gen_ == nullptr) return;
  const size_t side = index_of(dir);
  DirState& ds = dir_state(slot, side);
  if (ds.gen != gen_id_) return;
  if (ds.inflater != kNoIndex && !ds.body_done) {  // a compressed body cannot be inflated across a hole
    ++counters_.inflate_gaps;
    ds.body_done = true;
  }
  if (ds.stream == kNoIndex) return;
  release(ds, side);
  ++counters_.stream_restarts;
}

void RulesScanner::end_body(DirState& ds, size_t side) {
  if (ds.body_stream != kNoIndex) {
    hs_reset_stream(gen_->streams[side][ds.body_stream], 0, nullptr, nullptr, nullptr);
    gen_->free_streams[side].push_back(ds.body_stream);
    ds.body_stream = kNoIndex;
  }
  if (ds.inflater != kNoIndex) {
    inflaters_.release(ds.inflater);
    ds.inflater = kNoIndex;
  }
  ds.body_out = 0;
  ds.body_done = false;
}

namespace {

// Moves a stream index from `free` to `into` (if `into` has none yet). None
// left: counts `busy` and marks the content done.
bool lease(std::vector<uint32_t>& free, uint32_t& into, Counter& busy, Counter& leased, bool& done) {
  if (into != kNoIndex) return true;
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

RulesScanner::DirState* RulesScanner::content_state(uint32_t slot, Direction dir) {
  if (gen_ == nullptr || gen_->im->stream_db[index_of(dir)] == nullptr) return nullptr;  // no rules would look
  DirState& ds = dir_state(slot, index_of(dir));
  sync(ds);
  return ds.body_done ? nullptr : &ds;
}

void RulesScanner::decoded(uint32_t slot, Protocol p, Direction dir, std::span<const std::byte> bytes) {
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

void RulesScanner::body(uint32_t slot, Protocol p, Direction dir, std::span<const std::byte> encoded) {
  DirState* dsp = encoded.empty() ? nullptr : content_state(slot, dir);
  if (dsp == nullptr) return;
  DirState& ds = *dsp;
  if (ds.inflater == kNoIndex) {
    ds.inflater = inflaters_.lease();
    if (ds.inflater == kNoIndex) {
      ++counters_.inflate_busy;
      ds.body_done = true;
      return;
    }
    ++counters_.bodies_inflated;
  }
  z_stream& z = inflaters_.stream(ds.inflater);
  const std::span<std::byte> out = inflaters_.out();
  z.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(encoded.data()));
  z.avail_in = static_cast<uInt>(encoded.size());
  while (z.avail_in > 0 && !ds.body_done) {
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = inflate(&z, Z_NO_FLUSH);
    size_t produced = out.size() - z.avail_out;
    if (ds.body_out + produced > inflate_max_bytes_) {
      produced = inflate_max_bytes_ - ds.body_out;
      ++counters_.inflate_truncated;  // a decompression bomb stops here
      ds.body_done = true;
    }
    ds.body_out += static_cast<uint32_t>(produced);
    if (produced > 0) decoded(slot, p, dir, std::span<const std::byte>(out.data(), produced));
    if (rc == Z_STREAM_END) break;  // anything after the compressed stream is ignored
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      ++counters_.inflate_errors;
      ds.body_done = true;
    } else if (produced == 0 && rc == Z_BUF_ERROR) {
      break;  // needs more input
    }
  }
}

void RulesScanner::close(uint32_t slot) {
  if (gen_ == nullptr) return;
  // Nothing to release when the set has no stream rules (directions of an
  // older set are reset lazily by their generation id).
  if (gen_->im->stream_db[0] == nullptr && gen_->im->stream_db[1] == nullptr) return;
  for (size_t side = 0; side < 2; ++side) {
    DirState& ds = dir_state(slot, side);
    sync(ds);
    release(ds, side);
    end_body(ds, side);
    while (ds.hit_head != kNoIndex) {
      free_hit(ds, ds.hit_head, kNoIndex);
      ++counters_.hits_discarded;
    }
    ds = DirState{.gen = gen_id_};
  }
}

void RulesScanner::mark(uint32_t slot, Direction dir, Message& m) {
  if (gen_ == nullptr) return;
  m.rule_gen = gen_id_;
  if (gen_->im->stream_db[index_of(dir)] == nullptr) return;  // no stream rules on this side: no hits
  mark_hits(slot, dir, m);
}

[[gnu::noinline]] void RulesScanner::mark_hits(uint32_t slot, Direction dir, Message& m) {
  const size_t side = index_of(dir);
  DirState& ds = dir_state(slot, side);
  if (ds.gen != gen_id_) return;
  if (ds.body_stream != kNoIndex || ds.inflater != kNoIndex || ds.body_done) end_body(ds, side);  // its content ends here
  if (ds.hit_head == kNoIndex) return;
  // The message's bytes: [s, e). A match belongs to it when it ends inside.
  const uint64_t e = m.stream_end != 0 ? m.stream_end : UINT64_MAX;
  const uint64_t s = m.stream_end != 0 ? m.stream_end - std::min(m.stream_end, m.bytes) : 0;
  const uint64_t head_end = m.head_bytes != 0 ? s + m.head_bytes : UINT64_MAX;
  bool cut = false;
  uint32_t prev = kNoIndex;
  for (uint32_t i = ds.hit_head; i != kNoIndex;) {
    RuleGeneration::Hit& h = gen_->hits[i];
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

void RulesScanner::add_tag(uint32_t rule, Tags& tags, size_t& n) {
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

size_t RulesScanner::annotate(Protocol p, Message* request, Message* response, Tags& tags) {
  if (gen_ == nullptr) return 0;
  size_t n = 0;
  rec_rules_n_ = 0;
  tags_cut_ = false;
  const bool redaction = gen_->im->redact_db != nullptr;
  const RedactWith with{*gen_->im, gen_->scratch, gen_->rule_counters};
  Message* msgs[2] = {request, response};
  for (size_t side = 0; side < 2; ++side) {
    Message* m = msgs[side];
    if (m == nullptr) continue;
    if (m->rule_gen != gen_id_) {  // marked under a set that has since been replaced
      if (m->rule_hit_count != 0) ++counters_.tags_lost_reload;
      m->rule_hit_count = 0;
      m->rule_gen = gen_id_;
    }
    if (redaction) {
      redactor_.redact(with, *m, p, side == 0 ? Direction::kClientToServer : Direction::kServerToClient,
                       counters_);
    }
    for (size_t k = 0; k < m->rule_hit_count; ++k) add_tag(m->rule_hits[k], tags, n);
  }
  if (n > 0) ++counters_.records_tagged;
  if (tags_cut_) ++counters_.tags_truncated;
  return n;
}

}  // namespace spanfeed
