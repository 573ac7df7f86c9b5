// Record records (one request/response pair), their bounded field lists and the JSON-lines encoder.
// Built and encoded on a worker lcore; FieldList never allocates, the encoder only appends to a reused string.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "spanfeed/packet.h"

namespace spanfeed {

// The record format's version: `schema_version` in every record, a Kafka message header, and the
// version of docs/record.schema.json. Within a major version fields are only added, never renamed,
// retyped or removed (docs/consuming.md); the minor version counts those additions.
inline constexpr std::string_view kRecordSchemaVersion = "1.0";

// Application protocols, one per line of the registry (protocols.def).
// Values index counter arrays; kUnknown is a flow no decoder claimed.
enum class Protocol : uint8_t {
  kUnknown,
#define SPANFEED_PROTOCOL(id, folder) id,
#include "spanfeed/protocols.def"
#undef SPANFEED_PROTOCOL
  kCount,
};
inline constexpr size_t kProtocolCount = static_cast<size_t>(Protocol::kCount);
std::string_view to_string(Protocol p);      // "http", "redis", ...: the record's `protocol`
bool protocol_from_string(std::string_view s, Protocol* out);

enum class RecordStatus : uint8_t {
  kOk,         // response seen, the server did not report an error
  kError,      // response seen and it is an error (HTTP >= 400, RESP '-', DNS rcode != NOERROR, ...)
  kTimeout,    // request without a response (timed out, queue overflow, lost in a gap, flow closed)
  kUnmatched,  // response without a request
  kCount,
};
inline constexpr size_t kRecordStatusCount = static_cast<size_t>(RecordStatus::kCount);
std::string_view to_string(RecordStatus s);

// Bits of Record::flags (and Message::flags): encoded as the `flags` array.
namespace record_flag {
inline constexpr uint32_t kGap = 1u << 0;        // built across bytes the capture lost
inline constexpr uint32_t kTruncated = 1u << 1;  // a message was incomplete (flow ended, line over the cap)
inline constexpr uint32_t kOverlapConflict = 1u << 2;  // overlapping TCP segments carried different bytes for it
inline constexpr uint32_t kReordered = 1u << 3;  // datagram response captured before its request: no latency
}  // namespace record_flag

// n bytes (keys, short values) without a library call: two overlapping loads and stores cover any
// length up to twice their width, and never read past src + n (the adders and the encoder use it).
inline void copy_short(char* dst, const char* src, size_t n) {
  if (n >= 8) {
    if (n > 16) {
      std::memcpy(dst, src, n);
      return;
    }
    uint64_t a, b;
    std::memcpy(&a, src, 8);
    std::memcpy(&b, src + n - 8, 8);
    std::memcpy(dst, &a, 8);
    std::memcpy(dst + n - 8, &b, 8);
  } else if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, src, 4);
    std::memcpy(&b, src + n - 4, 4);
    std::memcpy(dst, &a, 4);
    std::memcpy(dst + n - 4, &b, 4);
  } else if (n > 0) {
    dst[0] = src[0];
    dst[n / 2] = src[n / 2];
    dst[n - 1] = src[n - 1];
  }
}

// One protocol field of a request or response. Keys are string literals
// (static storage); string values live in the owning FieldList's arena.
enum class FieldKind : uint8_t { kString, kInt, kUint, kBool, kNull, kRawJson };

struct Field {
  const char* key = nullptr;  // static storage, snake_case
  FieldKind kind = FieldKind::kNull;
  uint16_t off = 0;  // kString / kRawJson: value bytes in the arena
  uint16_t len = 0;
  uint8_t key_len = 0;  // strlen(key): lookups and the encoder compare and copy keys without strlen
  uint64_t num = 0;  // kInt (as int64), kUint, kBool
};

// Bounded list of fields with a fixed arena for string values: adding never
// allocates; a value that does not fit is cut to the space left and
// `truncated()` is set (the decoders count it).
class FieldList {
 public:
  static constexpr size_t kMaxFields = 24;
  static constexpr size_t kArenaBytes = 1024;  // path + host + user agent + key of one message, cut beyond

  void clear() {
    count_ = 0;
    used_ = 0;
    strings_ = 0;
    truncated_ = false;
  }
  // The adders are inline so that a literal key's length folds at compile time
  // (key_len); keys are at most 255 bytes.
  // String value, cut to max_len bytes and to the arena space left.
  void add_string(const char* key, std::string_view value, size_t max_len = kArenaBytes) {
    // Most values (16 bytes at most, room left, not cut) inline: no call. The rest out of line.
    const size_t n = value.size();
    const size_t count = count_;
    const size_t used = used_;
    if (n <= 16 && n <= max_len && count < kMaxFields && n <= kArenaBytes - used) [[likely]] {
      Field& f = fields_[count];
      f.key = key;
      f.kind = FieldKind::kString;
      f.off = static_cast<uint16_t>(used);
      f.len = static_cast<uint16_t>(n);
      f.key_len = key_length(key);
      f.num = 0;
      count_ = static_cast<uint16_t>(count + 1);
      strings_ = static_cast<uint16_t>(strings_ + (n != 0));
      copy_short(arena_.data() + used, value.data(), n);
      used_ = static_cast<uint16_t>(used + n);
      return;
    }
    add_string(key, key_length(key), value, max_len);
  }
  void add_int(const char* key, int64_t v) { add_num(key, key_length(key), FieldKind::kInt, static_cast<uint64_t>(v)); }
  void add_uint(const char* key, uint64_t v) { add_num(key, key_length(key), FieldKind::kUint, v); }
  void add_bool(const char* key, bool v) { add_num(key, key_length(key), FieldKind::kBool, v ? 1 : 0); }
  void add_null(const char* key) { add_num(key, key_length(key), FieldKind::kNull, 0); }
  // A value already encoded as JSON (e.g. DNS answers array). Must be valid
  // JSON; dropped (not cut) when it does not fit.
  bool add_raw_json(const char* key, std::string_view json) {
    size_t b = raw_begin();
    if (!raw_append(json)) return false;
    return raw_commit(key, b, FieldKind::kRawJson);
  }
  // Sets a numeric field, replacing it when present (counts filled in late).
  void set_uint(const char* key, uint64_t v) { set_uint(key, key_length(key), v); }
  bool has(std::string_view key) const { return find(key) != nullptr; }
  const Field* find(std::string_view key) const;
  std::string_view string_of(const Field& f) const { return {arena_.data() + f.off, f.len}; }
  // String value of `key`, empty when absent or not a string.
  std::string_view get_string(std::string_view key) const;
  // Replaces string field i's value (redaction): in place when not longer,
  // else at the arena's end. False when it does not fit (value unchanged).
  bool replace_string(size_t i, std::string_view value);
  // Overwrites bytes [from, to) of string field i with `c` (same length).
  void mask(size_t i, size_t from, size_t to, char c);

  size_t size() const { return count_; }
  // String fields with a value (not empty): what the redactor scans. Kept as fields are added,
  // replaced or retyped, so a message with none costs no loop over its fields.
  size_t strings() const { return strings_; }
  const Field& operator[](size_t i) const { return fields_[i]; }
  size_t arena_left() const { return kArenaBytes - used_; }
  // Every value's bytes in one span (string and raw JSON values, replaced ones too, no
  // separators): a superset of each value, for prefilters that may answer "maybe" too often.
  std::string_view arena() const { return {arena_.data(), used_}; }
  // Bytes readable past a value's end inside the arena (the encoder loads 16 at a time).
  static constexpr size_t kArenaSlack = 16;
  bool truncated() const { return truncated_; }

  // Raw arena writing for values built piece by piece (DNS answers): begin,
  // append, end. Returns false (and drops the value) when it does not fit.
  size_t raw_begin() const { return used_; }
  bool raw_append(std::string_view s);
  bool raw_commit(const char* key, size_t begin, FieldKind kind) { return raw_commit(key, key_length(key), begin, kind); }
  void raw_abort(size_t begin) { used_ = static_cast<uint16_t>(begin); }

 private:
  static uint8_t key_length(const char* key) { return static_cast<uint8_t>(__builtin_strlen(key)); }
  void add_string(const char* key, uint8_t key_len, std::string_view value, size_t max_len);
  void add_num(const char* key, uint8_t key_len, FieldKind kind, uint64_t v);
  bool raw_commit(const char* key, uint8_t key_len, size_t begin, FieldKind kind);
  void set_uint(const char* key, uint8_t key_len, uint64_t v);

  std::array<Field, kMaxFields> fields_{};
  std::array<char, kArenaBytes + kArenaSlack> arena_{};
  uint16_t count_ = 0;
  uint16_t used_ = 0;
  uint16_t strings_ = 0;  // string fields whose value is not empty
  bool truncated_ = false;
};

// One request or one response as a decoder saw it.
struct Message {
  uint64_t first_ts_ns = 0;  // capture time of the packet with its first byte
  uint64_t last_ts_ns = 0;   // ... with its last byte
  uint64_t bytes = 0;        // stream bytes of the message, bytes lost in gaps included
  uint32_t flags = 0;        // record_flag bits
  uint32_t key = 0;          // match key for id-matched protocols (DNS id)
  uint32_t aux = 0;          // decoder's own use (HTTP: request was HEAD/CONNECT)
  uint64_t stream_end = 0;   // stream offset just past the message (its bytes: [stream_end - bytes, stream_end))
  uint32_t head_bytes = 0;   // leading bytes that are its header block (HTTP); 0: no split
  // The record's protocol when not the flow's (kUnknown: the flow's): gRPC calls on an HTTP/2 connection.
  Protocol protocol = Protocol::kUnknown;
  // Rules that matched inside the message (indices into the rule set
  // of generation rule_gen), filled in when the message is complete.
  static constexpr size_t kMaxRuleHits = 8;
  std::array<uint16_t, kMaxRuleHits> rule_hits{};
  uint8_t rule_hit_count = 0;
  uint32_t rule_gen = 0;
  FieldList fields;

  // The message ends: its stream bytes are [start, end) (none if end <= start), its last byte came at ts.
  void end_span(uint64_t start, uint64_t end, uint64_t ts) {
    bytes = end > start ? end - start : 0;
    stream_end = end;
    last_ts_ns = ts;
  }

  void reset() {
    first_ts_ns = last_ts_ns = bytes = stream_end = 0;
    flags = key = aux = head_bytes = 0;
    protocol = Protocol::kUnknown;
    rule_hit_count = 0;
    rule_gen = 0;
    fields.clear();
  }
};

struct Endpoint {
  IpAddr ip{};
  uint16_t port = 0;
};

// Tags one record carries at most (rules), and their storage.
inline constexpr size_t kMaxRecordTags = 8;
using RecordTags = std::array<std::string_view, kMaxRecordTags>;

// What a RecordSink receives. Pointers are valid only during emit().
struct Record {
  uint64_t ts_ns = 0;  // first request packet (response for unmatched)
  uint64_t id = 0;     // worker_id << 56 | per-worker counter: encoded as 16 hex digits
  Protocol protocol = Protocol::kUnknown;
  uint8_t ip_version = 4;
  Endpoint client;
  Endpoint server;
  RecordStatus status = RecordStatus::kOk;
  bool has_latency = false;  // false for timeout / unmatched / no-reply: latency_us is null
  uint64_t latency_us = 0;   // last response packet - first request packet
  const Message* request = nullptr;   // null: unmatched
  const Message* response = nullptr;  // null: timeout or a request that expects no reply
  uint32_t flags = 0;                 // record_flag bits (request | response)
  std::span<const std::string_view> tags;
  std::string_view recording_id;  // omitted from the record when empty
  const TunnelSummary* tunnel = nullptr;  // "tunnel" object (decap.records); null: omitted
};

// A cheap 32-bit mix of the record's connection (both ports and the first word of both
// addresses: an IPv4 address's bytes, an IPv6 one's first word) for direct-mapped per-worker
// caches of connection data, indexed by its top bits. Not a key: entries compare the endpoints.
inline uint32_t connection_mix(const Record& r) {
  uint32_t c4, s4;
  std::memcpy(&c4, r.client.ip.bytes, 4);
  std::memcpy(&s4, r.server.ip.bytes, 4);
  return (c4 ^ s4 ^ (uint32_t{r.client.port} << 16) ^ r.server.port) * 0x9E3779B1u;
}

// Where finished roundtrips go (exporters). Called on the worker thread; the
// record and everything it points to is valid only during the call.
class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual void emit(const Record& r) = 0;
};

// Appends `r` as one JSON object plus '\n' to `out`. Never throws; allocates
// only when `out` has to grow (reuse the string: clear() keeps its capacity).
void append_json_line(const Record& r, std::string& out);
// The same line written at buf[at, ...) where buf.size() is the room to write in (grown when the
// line needs more): returns the line's end. The bytes of buf past it are scratch; the caller cuts
// buf to its lines' end before anyone reads it. Writing in place saves a copy per record.
size_t write_json_line(const Record& r, std::string& buf, size_t at);

// JSON string escaping (quotes included): control characters as \u00XX,
// invalid UTF-8 bytes as U+FFFD so the output is always valid JSON.
// kShortEscapes also writes \b and \f (as nlohmann-json does: the GELF encoder
// keeps the documents it used to make); kUnquoted writes the valid UTF-8 text
// itself (invalid bytes as U+FFFD, nothing escaped, no quotes).
enum class JsonEscapes : uint8_t { kRecord, kShortEscapes, kUnquoted };
void append_json_string(std::string_view s, std::string& out, JsonEscapes style = JsonEscapes::kRecord);

// "2026-11-22T10:00:00.123456Z" from nanoseconds since the epoch.
void append_iso8601_us(uint64_t ts_ns, std::string& out);

// Text form of an address (IPv4 dotted, IPv6 RFC 5952 via inet_ntop).
void append_ip(const IpAddr& ip, uint8_t ip_version, std::string& out);

// A sink that encodes every record into a reused buffer and hands the line to
// a callback-free consumer: subclass and implement write_line().
class JsonLinesSink : public RecordSink {
 public:
  void emit(const Record& r) override {
    line_.clear();
    append_json_line(r, line_);
    write_line(line_);
  }
  // The line includes its '\n'; valid only during the call.
  virtual void write_line(std::string_view line) = 0;

 private:
  std::string line_;
};

}  // namespace spanfeed
