// AMQP 0-9-1 wire helpers: method ids and names, the bounds-checked argument reader, method arguments to
// record fields. Internal to src/decode/amqp/; pure functions over spans, run on worker lcores, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "db_util.h"

#include "spanfeed/record.h"

namespace spanfeed::amqp {

constexpr size_t kNameMax = 255;  // shortstr
constexpr size_t kTextMax = 256;

// A method id: class id << 16 | method id.
constexpr uint32_t mid(uint16_t cls, uint16_t m) { return uint32_t{cls} << 16 | m; }

// `class.method` (`queue.declare`), nullptr for a method AMQP 0-9-1 (with RabbitMQ's extensions) lacks.
const char* method_name(uint32_t id);

// Bounds-checked reader of method arguments (AMQP 0-9-1 4.2.5: big-endian, shortstr, longstr, tables, bits).
struct Args {
  const uint8_t* p;
  size_t n;
  size_t i = 0;
  bool ok = true;

  bool need(size_t k) {
    if (!ok || n - i < k) ok = false;
    return ok;
  }
  uint8_t u8() { return need(1) ? p[i++] : 0; }
  uint16_t u16() {
    if (!need(2)) return 0;
    i += 2;
    return db::be16(p + i - 2);
  }
  uint32_t u32() {
    if (!need(4)) return 0;
    i += 4;
    return db::be32(p + i - 4);
  }
  uint64_t u64() {
    const uint64_t hi = u32();
    return hi << 32 | u32();
  }
  std::string_view shortstr() {
    const size_t l = u8();
    if (!need(l)) return {};
    i += l;
    return {reinterpret_cast<const char*>(p + i - l), l};
  }
  std::string_view longstr() {
    const size_t l = u32();
    if (!need(l)) return {};
    i += l;
    return {reinterpret_cast<const char*>(p + i - l), l};
  }
  void table() { (void)longstr(); }
};


// Fields of a method's arguments into `f`; returns its no-wait bit (no reply follows).
bool method_arguments(FieldList& f, uint32_t id, Args& a);

}  // namespace spanfeed::amqp
