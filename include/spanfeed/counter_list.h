// Counter lists: a component declares its scalar counters once, as an X-macro
// list X(field, kind, metric, help). The struct's fields, the summary JSON
// keys, the /metrics families and the docs/metrics.md rows are generated from
// it (tests/core/counter_list_test.cc fails when the doc disagrees). Header
// only, constexpr data; only the help builders (control core, docs) allocate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace spanfeed {

enum class CounterKind : uint8_t {
  kCounter,  // only grows during a run
  kGauge,    // a level: now, or a high-water mark
};

constexpr std::string_view to_string(CounterKind k) {
  return k == CounterKind::kCounter ? "counter" : "gauge";
}

// One entry of a component's list, with the member it reads.
template <class Counters>
struct CounterField {
  std::string_view name;    // struct field and summary JSON key
  CounterKind kind;
  std::string_view metric;  // /metrics family without "spanfeed_" ("": summary only)
  std::string_view help;    // what the value means, a non-zero one above all (Markdown)
  uint64_t Counters::*member;
};

// X-macro helpers: a field declaration, and an entry of the CounterField table.
#define SPANFEED_COUNTER_DECLARE(name, kind, metric, help) uint64_t name = 0;
#define SPANFEED_COUNTER_ENTRY(Type, name, kind, metric, help) \
  CounterField<Type>{#name, CounterKind::kind, metric, help, &Type::name},
// A list declared twice from one X-macro (SPANFEED_COUNTER_STRUCT): the
// struct template with V = Counter is the live struct (counters.h: relaxed
// atomic, one writer), with V = uint64_t the snapshot; copy_to copies one
// into the other.
#define SPANFEED_COUNTER_DECLARE_V(name, kind, metric, help) V name{};
#define SPANFEED_COUNTER_COPY(name, kind, metric, help) to.name = name;
#define SPANFEED_COUNTER_FIELD(name, kind, metric, help) \
  CounterField<Fields>{#name, CounterKind::kind, metric, help, &Fields::name},
// Declares `template <class V> struct Name` (LIST's fields as V, and
// copy_to) and kFields, the CounterField table over Name<uint64_t>.
#define SPANFEED_COUNTER_STRUCT(Name, kFields, LIST)                                      \
  template <class V>                                                                      \
  struct Name {                                                                           \
    LIST(SPANFEED_COUNTER_DECLARE_V)                                                      \
    template <class W>                                                                    \
    void copy_to(Name<W>& to) const {                                                     \
      LIST(SPANFEED_COUNTER_COPY)                                                         \
    }                                                                                     \
  };                                                                                      \
  namespace Name##_fields {                                                               \
  using Fields = Name<uint64_t>;                                                          \
  inline constexpr CounterField<Fields> kTable[] = {LIST(SPANFEED_COUNTER_FIELD)};        \
  }                                                                                       \
  inline constexpr const auto& kFields = Name##_fields::kTable;

// A metric of a list may be one series of a labelled family:
// "sink_records_total{outcome=delivered}" is the series outcome="delivered" of
// sink_records_total. Entries naming one family share it; its help is theirs,
// joined (family_help).
struct MetricName {
  std::string_view family;
  std::string_view label;  // "" when the entry is a family of its own
  std::string_view value;
};

constexpr MetricName parse_metric(std::string_view m) {
  const size_t b = m.find('{');
  if (b == std::string_view::npos || m.back() != '}') return {m, {}, {}};
  const std::string_view lv = m.substr(b + 1, m.size() - b - 2);
  const size_t eq = lv.find('=');
  if (eq == std::string_view::npos) return {m, {}, {}};
  return {m.substr(0, b), lv.substr(0, eq), lv.substr(eq + 1)};
}

// The help of a list's family (Markdown): an unlabelled entry's own help, or
// "`value`: help" of each of the family's series, in list order.
template <class Fields>
std::string family_help(const Fields& fields, std::string_view family) {
  std::string out;
  for (const auto& f : fields) {
    const MetricName m = parse_metric(f.metric);
    if (f.metric.empty() || m.family != family) continue;
    if (m.label.empty()) return std::string(f.help);
    if (!out.empty()) out += ' ';
    out += "`";
    out += m.value;
    out += "`: ";
    out += f.help;
  }
  return out;
}

// An enum-indexed array counter's names and help: "`name`: help" of each
// value after `intro` (the help of its labelled family, Markdown).
template <size_t N>
std::string labelled_help(std::string_view intro, const std::string_view (&names)[N],
                          const std::string_view (&helps)[N]) {
  std::string out(intro);
  for (size_t i = 0; i < N; ++i) {
    out += " `";
    out += names[i];
    out += "`: ";
    out += helps[i];
  }
  return out;
}

}  // namespace spanfeed
