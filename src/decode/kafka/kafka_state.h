// The kafka decoder's per-flow state (both directions' walk, the recent requests) and the record-field helpers
// shared by kafka.cc (framing, the walk) and kafka_fields.cc; internal to src/decode/kafka/.
// Worker lcore; trivially copyable data in the builder's per-flow slot; no allocation.
#pragma once

#include <cstdint>
#include <string_view>

#include "db_util.h"
#include "kafka_wire.h"

#include "spanfeed/decoder.h"

namespace spanfeed::kafka {

using db::be16;
using db::be32;

constexpr Direction kReq = Direction::kClientToServer;
constexpr Direction kResp = Direction::kServerToClient;

constexpr uint32_t kMaxMessage = 128u << 20;  // above socket.request.max.bytes (100 MiB) and fetch.max.bytes
constexpr uint32_t kMinRequest = 10;          // api key, version, correlation id, client id length
constexpr uint32_t kMinResponse = 4;          // correlation id
constexpr size_t kKeep = 128;                 // string bytes kept (topic names are at most 249)
constexpr size_t kMaxDepth = 4;               // nested arrays (Fetch response: topics / partitions / aborted txns)
constexpr size_t kInflight = 7;               // recent requests' api key / version remembered per flow
constexpr uint8_t kMaxTopics = 16;            // names in a request's `topics`
constexpr size_t kErrorNames = 3;             // distinct per-partition error names kept
constexpr uint32_t kBatchHead = 17;           // base offset, length, epoch / crc, magic: both record formats
constexpr uint32_t kBatchCountEnd = 61;       // v2 batch: the record count ends here
constexpr uint8_t kPcEnd = 255;               // walk stopped (no more fields read)


enum class Phase : uint8_t { kLength, kWalk, kSkip };
enum class Prog : uint8_t { kHeader, kBody };
enum class Step : uint8_t { kOp, kLength, kString, kTagCount, kTagKey, kTagSize, kBatch, kBatchCount };

namespace flag {
constexpr uint16_t kFlexible = 1 << 0;
constexpr uint16_t kPrefixOnly = 1 << 1;  // unknown version: the leading fixed fields only
constexpr uint16_t kUnknownVersion = 1 << 2;
constexpr uint16_t kListOpen = 1 << 3;    // `topics` being written in the message's arena
constexpr uint16_t kListDone = 1 << 4;
constexpr uint16_t kInRecords = 1 << 5;
constexpr uint16_t kError = 1 << 6;       // a non-zero error code
constexpr uint16_t kAcks0 = 1 << 7;       // Produce with acks 0: no response expected
constexpr uint16_t kNoReply = 1 << 8;     // response to an acks-0 Produce (the mock cluster sends them)
constexpr uint16_t kKnownApi = 1 << 9;    // response: its request's api key / version found
constexpr uint16_t kResync = 1 << 10;     // lost the framing: wait for a plausible message start
constexpr uint16_t kChecked = 1 << 11;    // the direction's first bytes were checked
constexpr uint16_t kHeaderV0 = 1 << 12;   // ApiVersions response: header v0 (no tagged fields) in every version
constexpr uint16_t kPersistent = kResync | kChecked;
}  // namespace flag

struct Side {
  Message* m = nullptr;   // message being read (nullptr: pool empty; the walk goes on for the framing)
  uint32_t msg_left = 0;  // bytes of the message not consumed yet
  uint32_t skip = 0;      // bytes to drop before the walk goes on (string tail, bytes, batch body)
  uint32_t var = 0;       // varint being read; a string's length; a batch's bytes
  uint32_t rec_left = 0;  // record set bytes left
  uint32_t tags_left = 0;
  uint32_t corr = 0;
  uint32_t records = 0;
  uint32_t record_bytes = 0;
  uint32_t partitions = 0;
  uint32_t counts[kMaxDepth] = {};  // elements left per open array
  uint32_t topic_hash = 0;          // last topic added (a name repeated in a row is listed once)
  int16_t api = 0;
  uint16_t version = 0;
  uint16_t flags = 0;
  uint16_t list_begin = 0;
  uint16_t failed = 0;  // non-zero per-item error codes
  int16_t errs[kErrorNames] = {};
  uint8_t pcs[kMaxDepth] = {};  // first op of each open array's element
  uint8_t pc = 0;
  uint8_t depth = 0;
  uint8_t shift = 0;
  uint8_t topics = 0;
  Phase phase = Phase::kLength;
  Prog prog = Prog::kHeader;
  Step step = Step::kOp;
};

struct Inflight {
  uint32_t corr = 0;
  int16_t api = -1;  // -1: empty
  uint8_t version = 0;
  uint8_t no_reply = 0;
};

struct State {
  Side side[2];
  Inflight ring[kInflight];
  uint8_t ring_next = 0;
};
static_assert(sizeof(State) <= kDecoderStateBytes, "kafka state must fit the per-flow slot");
// The request of correlation id `corr` (the oldest pending one, else the ring of recent ones).
bool lookup(FlowContext& ctx, const State& st, uint32_t corr, Inflight* out);
// Whether `version` of `api` is a flexible one (compact strings, tagged fields).
bool flexible(int16_t api, uint16_t version);
// A fixed-width field of `role` was read (p: its w bytes, big-endian).
void apply_fixed(FlowContext& ctx, State& st, Direction dir, Role role, const uint8_t* p, uint32_t w);
// A string of `role` was read (its first kKeep bytes; null: a null string).
void apply_string(Side& sd, Direction dir, Role role, std::string_view s, bool null);
// `topics` written so far becomes a field (strings share the arena with it).
void close_topics(Side& sd);
// The counts the walk kept (partitions, records, per-partition errors) become fields of sd.m.
void add_totals(Side& sd, Direction dir);

}  // namespace spanfeed::kafka
