// Counter lists: a component declares its scalar counters once, as an X-macro
// list X(field, kind, metric, help). The struct's fields, the summary JSON
// keys, the /metrics families and the docs/metrics.md rows are generated from
// it (tests/core/counter_list_test.cc fails when the doc disagrees). Header
// only, constexpr data; no allocation.
#pragma once

#include <cstdint>
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

}  // namespace spanfeed
