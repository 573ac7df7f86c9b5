// Kafka wire layouts: the message schemas of the api keys spanfeed parses, as small versioned op lists that the
// streaming walker (kafka.cc) runs; api key and error code names. Constant data, read on worker lcores; no allocation.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace spanfeed::kafka {

// One field of a schema. Version-gated like Kafka's own JSON schemas (`"versions": "3+"`); strings, arrays and
// bytes are compact (unsigned varint length + 1) in the api's flexible versions, int16 / int32 otherwise.
enum class OpKind : uint8_t {
  kI8,       // also bool
  kI16,
  kI32,
  kI64,
  kUuid,     // 16 bytes (topic ids)
  kStr,      // string / nullable string
  kStr16,    // string with an int16 length in every version (the request header's client id)
  kBytes,    // bytes / nullable bytes: skipped
  kRecords,  // a record set (nullable bytes): record batches walked for their record counts, never kept
  kArr,      // array / nullable array: the ops up to the matching kEnd, once per element
  kEnd,
  kTags,     // tagged fields (flexible versions only; a no-op in the others): skipped
};

// What a field means to the record.
enum class Role : uint8_t {
  kNone,
  kApiKey,         // request header
  kApiVersion,
  kCorrelation,
  kClientId,
  kTopic,          // request: into `topics`
  kPartition,      // counted into `partitions`
  kTopError,       // response: top-level error code
  kItemError,      // response: per partition / topic / group / member error code
  kErrorMessage,   // response: first non-null error message
  kThrottle,       // response: throttle_time_ms
  kGroup,          // group_id
  kMember,         // member_id
  kGeneration,     // generation_id
  kTransactional,  // transactional_id
  kAcks,           // Produce: acks
  kRecordSet,      // Produce request / Fetch response: records and bytes
  kCoordinatorKey, // FindCoordinator: the key (a group or transactional id)
  kProtocolName,   // JoinGroup / SyncGroup response: the assignor chosen
};

struct Op {
  OpKind kind;
  Role role = Role::kNone;
  uint8_t min_version = 0;
  uint8_t max_version = 255;  // inclusive
};

inline constexpr uint8_t kNoFlexible = 255;  // an api without flexible versions (SaslHandshake)

struct ApiLayout {
  std::string_view name;  // "Produce", "Fetch", ...
  uint8_t flexible_from = 0;
  uint8_t max_version = 0;  // highest version whose layout is below (0 with empty op lists: names only)
  std::span<const Op> request;
  std::span<const Op> response;
};

// nullptr for an api key spanfeed has no name for.
const ApiLayout* api_layout(int16_t api_key);
// "NOT_LEADER_OR_FOLLOWER", ...; empty for a code without a name.
std::string_view error_name(int16_t code);
// Every api key with a layout (tests: each array body consumes bytes in every version).
std::span<const ApiLayout> api_layouts();

inline constexpr int16_t kApiProduce = 0;
inline constexpr int16_t kApiFetch = 1;
inline constexpr int16_t kApiApiVersions = 18;
inline constexpr int16_t kUnsupportedVersion = 35;

}  // namespace spanfeed::kafka
