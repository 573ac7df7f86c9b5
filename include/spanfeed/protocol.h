// Protocol descriptors and the registry: everything the rest of spanfeed knows about a protocol.
// Descriptors are constant data defined next to each decoder (src/decode/<name>/descriptor.cc); no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "spanfeed/endpoint.h"
#include "spanfeed/record.h"

namespace spanfeed {

enum class Transport : uint8_t { kTcp, kUdp };

// What a payload looks like to a decoder's structural check. kEither: the protocol's, but a message either
// side sends (an MQTT PUBLISH met mid-stream): the flow keeps its orientation (the higher port is the client).
enum class SniffResult : uint8_t { kNo, kRequest, kResponse, kEither };

class Decoder;
struct DecodeConfig;

// A payload signature for detection on unmapped ports: a Hyperscan regex
// (compiled with DOTALL) matched at the start of a flow's first chunk.
// Looser than the structural check, which confirms each candidate.
struct ProtocolSignature {
  const char* pattern;
  Transport transport;
};

// One field a protocol puts under `request` or `response`. `type` is a JSON
// type ("string", "integer", "boolean", "array"), or several separated by
// '|' ("integer|null"). Feeds docs/records.md, the record JSON Schema and the
// GELF mapping.
struct RecordFieldSpec {
  const char* side;  // "request" or "response"
  const char* name;
  const char* type;
  const char* meaning;
};

// A protocol's own numeric setting: `decode.<protocol>.<name>` in the config.
struct ProtocolOption {
  const char* name;
  uint64_t default_value;
  uint64_t min;
  uint64_t max;
  const char* meaning;
};
inline constexpr size_t kMaxProtocolOptions = 8;

struct ProtocolDescriptor {
  Protocol id;
  std::string_view name;   // records' `protocol`, config keys, metric labels, Kafka {protocol}
  std::string_view title;  // for people: "HTTP/1.x"
  std::span<const uint16_t> tcp_ports;  // default server ports
  std::span<const uint16_t> udp_ports;
  std::span<const ProtocolSignature> signatures;
  // Structural confirmation of a signature candidate: does this chunk (the
  // first of a flow, either direction) start a request or a response?
  SniffResult (*confirm)(std::span<const std::byte> chunk, Transport t);
  // One decoder per worker; allocates only here (start-up).
  std::unique_ptr<Decoder> (*make)(const DecodeConfig& cfg);
  std::span<const RecordFieldSpec> fields;
  // Request field that names what was asked (GELF short_message, summaries).
  std::string_view summary_field;
  std::span<const ProtocolOption> options;
  // RED metrics: the endpoint of a finished record with a request (include/spanfeed/endpoint.h,
  // docs/metrics.md "RED"). nullptr: every record of the protocol has the endpoint "-".
  EndpointFn endpoint = nullptr;
  // Process-wide set-up the first make() would otherwise pay for on the way to the first packet
  // (a library's initialisation): run once, on a helper thread while the EAL starts, before any
  // make(). nullptr: none.
  void (*prepare)() = nullptr;
};

// Every registered protocol, in registry order (index i holds Protocol(i + 1)).
std::span<const ProtocolDescriptor* const> protocol_registry();
// nullptr for kUnknown / out of range.
const ProtocolDescriptor* protocol_descriptor(Protocol p);
const ProtocolDescriptor* protocol_descriptor(std::string_view name);
// Every descriptor's prepare (start-up, any one thread).
void prepare_decoders();
// "http, redis, dns, ..." for messages and --help.
std::string protocol_names(std::string_view sep = ", ");

// One `decode.<protocol>.<name>: value` from the configuration.
struct ProtocolOptionSetting {
  Protocol protocol;
  std::string name;
  uint64_t value;
};
// Empty when `name` is an option of protocol `p` and `v` is in its range, else the error.
std::string check_protocol_option(Protocol p, std::string_view name, uint64_t v);
// The value of option `name` of `p`: the last setting for it, else the descriptor's default
// (0 when `p` has no such option: a programming error the registry test catches).
uint64_t protocol_option(std::span<const ProtocolOptionSetting> settings, Protocol p, std::string_view name);

}  // namespace spanfeed
