// AMQP 0-9-1 wire helpers: method ids and names, method arguments (read with WireReader) to record
// fields. Internal to src/decode/amqp/; pure functions over spans, run on worker lcores, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "wire_reader.h"

#include "spanfeed/record.h"

namespace spanfeed::amqp {

constexpr size_t kNameMax = 255;  // shortstr
constexpr size_t kTextMax = 256;

// A method id: class id << 16 | method id.
constexpr uint32_t mid(uint16_t cls, uint16_t m) { return uint32_t{cls} << 16 | m; }

// `class.method` (`queue.declare`), nullptr for a method AMQP 0-9-1 (with RabbitMQ's extensions) lacks.
const char* method_name(uint32_t id);

// Fields of a method's arguments into `f`; returns its no-wait bit (no reply follows).
// Arguments are AMQP 0-9-1 4.2.5 types: big-endian integers, shortstr (WireReader::str8), longstr and
// tables (str32).
bool method_arguments(FieldList& f, uint32_t id, WireReader& a);

}  // namespace spanfeed::amqp
