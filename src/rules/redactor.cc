// Redactor: redaction of exported string fields by the redaction rules (user rules with
// redact: true, and the built-ins). Runs on a worker lcore; never allocates (buffers reserved).
#include "rules/redactor.h"

#include <algorithm>
#include <array>

#include "decode/text_util.h"
#include "rules/builtin_redaction.h"
#include "rules/rule_set_impl.h"
#include "spanfeed/word_hash.h"

namespace spanfeed {

namespace {

constexpr std::string_view kRedacted = "<redacted>";

// The clean set's hash of a message's arena: TextMemo::sample_hash's six words for a long one; every
// word of a short one, the last read whole from the arena's slack (FieldList::kArenaSlack readable
// bytes past its end) and masked, where word_hash::bytes copies it (a memcpy call under 8 bytes).
uint64_t arena_hash(std::string_view a) {
  static_assert(FieldList::kArenaSlack >= 8);
  const size_t n = a.size();
  if (n > 48) return TextMemo::sample_hash(a);
  const char* p = a.data();
  uint64_t h = 0x243f6a8885a308d3ull ^ (n * word_hash::kMul);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) h = word_hash::mix(h, word_hash::load64(p + i));
  if (i < n) h = word_hash::mix(h, word_hash::load64(p + i) & ((uint64_t{1} << (8 * (n - i))) - 1));
  return word_hash::fmix64(h);
}

struct Range {
  uint32_t from, to, rule;  // within the field's value
  uint32_t field;           // index into the scanned fields
};

}  // namespace

// The string fields of one message, scanned in one call: values joined with
// NUL separators (no built-in pattern crosses a NUL; a user pattern that does
// sends the message back through field-by-field scans).
// Only [0, fields) of starts/ends and [0, n) of ranges are ever read: the
// arrays are left uninitialised (zeroing them cost more than the scan setup).
struct Redactor::Ctx {
  const RuleSet::Impl* im = nullptr;
  std::string_view text;                  // the joined values (or one value)
  std::array<uint32_t, FieldList::kMaxFields> starts;  // value k: text[starts[k], ends[k])
  std::array<uint32_t, FieldList::kMaxFields> ends;
  size_t fields = 0;
  uint32_t proto_bit = 0;
  uint8_t side_bit = 0;
  std::array<Range, 24> ranges;
  size_t n = 0;
  bool overflow = false;
  bool spanning = false;
};

bool add_rule_hit(Message& m, uint32_t rule) {
  for (size_t k = 0; k < m.rule_hit_count; ++k) {
    if (m.rule_hits[k] == rule) return true;
  }
  if (m.rule_hit_count == Message::kMaxRuleHits) return false;
  m.rule_hits[m.rule_hit_count++] = static_cast<uint16_t>(rule);
  return true;
}

Redactor::Redactor() {
  redact_buf_.reserve(2 * FieldList::kArenaBytes);
  join_buf_.reserve(FieldList::kArenaBytes + FieldList::kMaxFields);
}

int Redactor::on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned /*flags*/, void* c) {
  using text::is_digit;
  auto& ctx = *static_cast<Ctx*>(c);
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

bool Redactor::scan(const RedactWith& with, Ctx& ctx, RulesCounters& c) {
  if (hs_scan(with.im.redact_db, ctx.text.data(), static_cast<unsigned>(ctx.text.size()), 0, with.scratch, on_match,
              &ctx) == HS_SUCCESS) {
    return true;
  }
  ++c.scan_errors;
  return false;
}

// Rewrites field `i` with its ranges [first, last) of ctx.ranges (sorted by start).
void Redactor::apply(const RedactWith& with, Message& m, size_t i, const Ctx& ctx, size_t first, size_t last,
                     RulesCounters& c) {
  FieldList& fl = m.fields;
  const std::string_view value = fl.string_of(fl[i]);
  redact_buf_.clear();
  size_t at = 0;
  for (size_t k = first; k < last; ++k) {
    const Range& r = ctx.ranges[k];
    ++with.per_rule[r.rule].redactions;
    add_rule_hit(m, r.rule);  // the record carries the redacting rule's tag
    if (r.to <= at) continue;
    const size_t from = std::max<size_t>(r.from, at);
    redact_buf_.append(value.substr(at, from - at));
    redact_buf_.append(kRedacted);
    at = r.to;
  }
  redact_buf_.append(value.substr(std::min(at, value.size())));
  ++c.fields_redacted;
  if (!fl.replace_string(i, redact_buf_)) {
    ++c.redaction_masked;
    for (size_t k = first; k < last; ++k) fl.mask(i, ctx.ranges[k].from, ctx.ranges[k].to, '*');
  }
}

void Redactor::redact(const RedactWith& with, Message& m, Protocol p, Direction dir, RulesCounters& c) {
  FieldList& fl = m.fields;
  if (with.im.redact_builtin_only) {
    // Built-ins only: when the arena (every value, unjoined) holds none of their literals, no value
    // does, and the join and the scan are skipped. A "maybe" (also across two values) joins and checks.
    const size_t strings = fl.strings();  // kept by the FieldList: no loop over the fields
    if (strings == 0) return;
    const std::string_view arena = fl.arena();
    const bool memo = arena.size() <= CleanSet::kKeyMax;
    const uint64_t h = memo ? arena_hash(arena) : 0;  // hashing every byte was a third of a hit
    if (memo && clean_.find(arena, h)) {
      c.fields_scanned += strings;
      return;
    }
    const bool slack = arena.size() + kBuiltinMayMatchSlack <= FieldList::kArenaBytes + FieldList::kArenaSlack;
    if (!(slack ? builtin_may_match_slack(arena) : builtin_may_match(arena))) {
      if (memo) clean_.remember(arena, h);
      c.fields_scanned += strings;
      return;
    }
  }
  Ctx ctx;  // not value-initialised: see Ctx (made past the built-ins' early returns, the common case)
  ctx.im = &with.im;
  ctx.proto_bit = protocol_bit(p);
  ctx.side_bit = static_cast<uint8_t>(dir == Direction::kClientToServer ? RuleSide::kRequest : RuleSide::kResponse);
  std::array<uint8_t, FieldList::kMaxFields> index;  // scanned value k is field index[k] (k < ctx.fields)
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
  c.fields_scanned += ctx.fields;
  ctx.text = join_buf_;
  // Built-ins only: a message with none of their literals cannot match (no Hyperscan call).
  if (with.im.redact_builtin_only && !builtin_may_match(ctx.text)) return;
  if (!scan(with, ctx, c)) return;
  if (ctx.spanning || ctx.overflow) {
    // A match crossed from one value into the next (a user pattern that
    // spans NUL), or there were more ranges than tracked: value by value.
    const size_t fields = ctx.fields;
    for (size_t k = 0; k < fields; ++k) {
      Ctx one;
      one.im = ctx.im;
      one.starts[0] = 0;
      one.proto_bit = ctx.proto_bit;
      one.side_bit = ctx.side_bit;
      one.text = fl.string_of(fl[index[k]]);
      one.ends[0] = static_cast<uint32_t>(one.text.size());
      one.fields = 1;
      if (!scan(with, one, c) || one.n == 0) continue;
      if (one.overflow) {  // more ranges than we track: the whole value goes
        one.ranges[0] = Range{0, static_cast<uint32_t>(one.text.size()), one.ranges[0].rule, 0};
        one.n = 1;
      }
      std::sort(one.ranges.begin(), one.ranges.begin() + static_cast<std::ptrdiff_t>(one.n),
                [](const Range& a, const Range& b) { return a.from < b.from; });
      apply(with, m, index[k], one, 0, one.n, c);
    }
    return;
  }
  if (ctx.n == 0) return;
  std::sort(ctx.ranges.begin(), ctx.ranges.begin() + static_cast<std::ptrdiff_t>(ctx.n),
            [](const Range& a, const Range& b) { return a.field != b.field ? a.field < b.field : a.from < b.from; });
  for (size_t k = 0; k < ctx.n;) {
    size_t e = k;
    while (e < ctx.n && ctx.ranges[e].field == ctx.ranges[k].field) ++e;
    apply(with, m, index[ctx.ranges[k].field], ctx, k, e, c);
    k = e;
  }
}

}  // namespace spanfeed
