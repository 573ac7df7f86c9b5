// memcached binary protocol: 24-byte headers, opcodes and statuses by name, keys, value/extras sizes, CAS,
// matching by opaque, quiet commands (answered only on a hit / an error) and STAT's many responses.
// Runs on a worker lcore; per-flow state lives in the builder's preallocated array; never allocates.
#include <cstdio>

#include "memcached_decoder.h"

namespace spanfeed::memcached {
namespace {

constexpr size_t kHeaderBytes = 24;
constexpr uint8_t kMagicRequest = 0x80;
constexpr uint8_t kMagicResponse = 0x81;
constexpr uint8_t kOpStat = 0x10;
constexpr uint8_t kOpQuitQ = 0x17;
constexpr uint32_t kMaxHead = 255 + 250;  // extras (1-byte length) + the longest key memcached takes
constexpr uint32_t kMaxErrorText = 256;   // error responses carry a short text ("Not found"): kept up to this
constexpr uint32_t kMaxBody = 1u << 30;   // no server takes more (memcached's item limit is at most 1 GiB)

constexpr std::string_view kOpcodes[] = {
    "Get", "Set", "Add", "Replace", "Delete", "Increment", "Decrement", "Quit",                     // 0x00
    "Flush", "GetQ", "NoOp", "Version", "GetK", "GetKQ", "Append", "Prepend",                       // 0x08
    "Stat", "SetQ", "AddQ", "ReplaceQ", "DeleteQ", "IncrementQ", "DecrementQ", "QuitQ",            // 0x10
    "FlushQ", "AppendQ", "PrependQ", "Verbosity", "Touch", "GAT", "GATQ", "",                       // 0x18
    "SASLListMechs", "SASLAuth", "SASLStep", "GATK", "GATKQ", "", "", "",                          // 0x20
    "", "", "", "", "", "", "", "",                                                                 // 0x28
    "RGet", "RSet", "RSetQ", "RAppend", "RAppendQ", "RPrepend", "RPrependQ", "RDelete",            // 0x30
    "RDeleteQ", "RIncr", "RIncrQ", "RDecr", "RDecrQ", "SetVBucket", "GetVBucket", "DelVBucket",    // 0x38
};

uint64_t be64(const uint8_t* p) { return static_cast<uint64_t>(be32(p)) << 32 | be32(p + 4); }

bool get_family(uint8_t op) {
  switch (op) {
    case 0x00: case 0x09: case 0x0c: case 0x0d: case 0x1d: case 0x1e: case 0x23: case 0x24: return true;
    default: return false;
  }
}

bool known_status(uint16_t st) {
  return st <= 0x09 || st == 0x20 || st == 0x21 || st == 0x22 || (st >= 0x81 && st <= 0x86);
}

}  // namespace

std::string_view opcode_name(uint8_t op, char (&buf)[8]) {
  if (op < std::size(kOpcodes) && !kOpcodes[op].empty()) return kOpcodes[op];
  const int n = std::snprintf(buf, sizeof(buf), "0x%02x", static_cast<unsigned>(op));
  return {buf, n > 0 ? static_cast<size_t>(n) : 0};
}

std::string_view status_name(uint16_t st, char (&buf)[8]) {
  switch (st) {
    case 0x00: return "no_error";
    case 0x01: return "key_not_found";
    case 0x02: return "key_exists";
    case 0x03: return "value_too_large";
    case 0x04: return "invalid_arguments";
    case 0x05: return "item_not_stored";
    case 0x06: return "non_numeric_value";
    case 0x07: return "vbucket_mismatch";
    case 0x08: case 0x20: return "auth_error";
    case 0x09: case 0x21: return "auth_continue";
    case 0x22: return "out_of_range";
    case 0x81: return "unknown_command";
    case 0x82: return "out_of_memory";
    case 0x83: return "not_supported";
    case 0x84: return "internal_error";
    case 0x85: return "busy";
    case 0x86: return "temporary_failure";
    default: break;
  }
  const int n = std::snprintf(buf, sizeof(buf), "0x%04x", static_cast<unsigned>(st));
  return {buf, n > 0 ? static_cast<size_t>(n) : 0};
}

bool binary_quiet(uint8_t op) {
  switch (op) {
    case 0x09: case 0x0d: case 0x11: case 0x12: case 0x13: case 0x14: case 0x15: case 0x16: case 0x17:
    case 0x18: case 0x19: case 0x1a: case 0x1e: case 0x24: case 0x32: case 0x34: case 0x36: case 0x38:
    case 0x3a: case 0x3c:
      return true;
    default: return false;
  }
}

bool binary_quiet_get(uint8_t op) { return op == 0x09 || op == 0x0d || op == 0x1e || op == 0x24; }

// A header the server would take (or send): its magic, a known opcode (requests) or status (responses), raw data type,
// extras + key within the body, a body no server accepts more of.
bool plausible_binary(const uint8_t* h, size_t n, bool response) {
  if (n < kHeaderBytes || h[0] != (response ? kMagicResponse : kMagicRequest) || h[5] != 0) return false;
  const uint32_t body = be32(h + 8);
  if (static_cast<uint32_t>(h[4]) + be16(h + 2) > body || body > kMaxBody) return false;
  if (response) return known_status(be16(h + 6));  // an unknown opcode is answered too (unknown_command)
  char buf[8];
  return opcode_name(h[1], buf).data() != buf;
}

void MemcachedDecoder::binary_lose_sync(FlowContext& ctx, Side& sd, Direction dir, std::span<const std::byte>& bytes,
                                        uint64_t ts) {
  ctx.count_decode_error();
  if (sd.in_message) binary_end(ctx, sd, dir, {}, ctx.offset(dir, bytes), ts, record_flag::kTruncated);
  sd = Side{};
  sd.phase = Phase::kHeader;
  sd.resync.lose(bytes.size());
  bytes = {};
  ctx.drop_carry(dir);
}

void MemcachedDecoder::binary_data(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts) {
  Side& sd = ctx.state<State>().side[index_of(dir)];
  if (sd.resync.lost) {
    // Framing lost (a gap, bytes that are no header): a chunk that starts with a plausible header is the
    // next message.
    if (!plausible_binary(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), dir == kResp)) {
      sd.resync.add(bytes.size());
      return;
    }
    sd.resync.found(ctx);
    sd = Side{};
    sd.phase = Phase::kHeader;
  }
  while (!bytes.empty()) {
    if (sd.in_message && sd.msg != nullptr) sd.msg->last_ts_ns = ts;
    std::span<const std::byte> out;
    switch (sd.phase) {
      case Phase::kLine:
      case Phase::kData:
      case Phase::kHeader: {
        if (!ctx.has_carry(dir) && !sd.multi) sd.start = ctx.offset(dir, bytes);
        const Take t = ctx.take(dir, bytes, kHeaderBytes, out);
        if (t == Take::kNeedMore) return;
        if (t == Take::kNoMemory || !binary_header(ctx, sd, dir, reinterpret_cast<const uint8_t*>(out.data()),
                                                        ctx.offset(dir, bytes), ts)) {
          binary_lose_sync(ctx, sd, dir, bytes, ts);
          return;
        }
        break;
      }
      case Phase::kHead: {
        const Take t = ctx.take(dir, bytes, sd.head, out);
        if (t == Take::kNeedMore) return;
        if (t == Take::kNoMemory) {
          binary_lose_sync(ctx, sd, dir, bytes, ts);
          return;
        }
        binary_head(ctx, sd, dir, reinterpret_cast<const uint8_t*>(out.data()), ctx.offset(dir, bytes), ts);
        break;
      }
      case Phase::kValue: {
        if (sd.keep_value) {
          const Take t = ctx.take(dir, bytes, static_cast<size_t>(sd.remaining), out);
          if (t == Take::kNeedMore) return;
          if (t == Take::kNoMemory) {  // no buffer for the text: skip it instead
            sd.keep_value = false;
            break;
          }
          sd.remaining = 0;
          binary_end(ctx, sd, dir, out, ctx.offset(dir, bytes), ts, 0);
          break;
        }
        const size_t n = bytes.size() < sd.remaining ? bytes.size() : static_cast<size_t>(sd.remaining);
        bytes = bytes.subspan(n);
        sd.remaining -= n;
        if (sd.remaining == 0) binary_end(ctx, sd, dir, {}, ctx.offset(dir, bytes), ts, 0);
        break;
      }
    }
  }
}

// The header of one packet: a new message, or the next STAT response of the one in progress.
bool MemcachedDecoder::binary_header(FlowContext& ctx, Side& sd, Direction dir, const uint8_t* h, uint64_t end,
                                     uint64_t ts) {
  if (!plausible_binary(h, kHeaderBytes, dir == kResp)) {
    // an unknown opcode with a sane layout is still a request (the server answers unknown_command)
    if (dir == kResp || h[0] != kMagicRequest || h[5] != 0 || static_cast<uint32_t>(h[4]) + be16(h + 2) > be32(h + 8) ||
        be32(h + 8) > kMaxBody)
      return false;
  }
  const uint8_t op = h[1];
  const uint16_t key_len = be16(h + 2);
  const uint8_t extras_len = h[4];
  const uint16_t status = be16(h + 6);
  const uint32_t body = be32(h + 8);
  const uint32_t opaque = be32(h + 12);
  const uint64_t cas = be64(h + 16);
  if (dir == kResp && sd.multi && (op != kOpStat || opaque != sd.opaque)) {
    // a STAT reply interrupted by another response: it ends here
    binary_end(ctx, sd, dir, {}, ctx.offset(dir, {}), ts, record_flag::kTruncated);
  }
  const bool continues = dir == kResp && sd.multi;
  if (!continues) {
    const uint64_t start = sd.start;
    sd = Side{};
    sd.start = start;
    sd.in_message = true;
    Message* m = ctx.new_message(ts);
    sd.msg = m;
    char buf[8];
    if (m != nullptr) {
      if (dir == kReq) {
        m->fields.add_string("command", opcode_name(op, buf));
        m->key = ctx.udp() ? key_ : opaque;
        m->aux = kAuxBinary | op | (binary_quiet(op) ? kAuxQuiet : 0) | (binary_quiet_get(op) ? kAuxQuietGet : 0);
      } else {
        m->fields.add_string("status", status_name(status, buf));
      }
      if (cas != 0) m->fields.add_uint("cas", cas);
    }
  }
  sd.opcode = op;
  sd.key_len = key_len;
  sd.extras_len = extras_len;
  sd.status = status;
  sd.opaque = opaque;
  sd.value_len = body - extras_len - key_len;
  sd.head = static_cast<uint32_t>(extras_len) + key_len;
  sd.remaining = sd.value_len;
  sd.phase = Phase::kHeader;
  if (dir == kReq && op == kOpQuitQ) sd.noreply = true;
  if (sd.head > kMaxHead || sd.head > ctx.config().carry_bytes) {
    sd.remaining += sd.head;  // longer than any key the server takes: skipped unread
    sd.head = 0;
  }
  if (sd.head > 0) {
    sd.phase = Phase::kHead;
    return true;
  }
  binary_head(ctx, sd, dir, nullptr, end, ts);
  return true;
}

// Extras and key read (or none): the value comes next, or the packet ends here, at stream position `end`
// (the chunk may hold more packets after it).
void MemcachedDecoder::binary_head(FlowContext& ctx, Side& sd, Direction dir, const uint8_t* p, uint64_t end,
                                   uint64_t ts) {
  if (p != nullptr && sd.key_len > 0 && sd.msg != nullptr && !(dir == kResp && sd.opcode == kOpStat)) {
    sd.msg->fields.add_string("key", {reinterpret_cast<const char*>(p) + sd.extras_len, sd.key_len}, 250);
  }
  sd.keep_value = dir == kResp && sd.status != 0 && sd.remaining > 0 && sd.remaining <= kMaxErrorText;
  if (sd.remaining > 0) {
    sd.phase = Phase::kValue;
    return;
  }
  binary_end(ctx, sd, dir, {}, end, ts, 0);
}

// One packet is over: its message ends (a STAT response before the empty-key one continues it).
void MemcachedDecoder::binary_end(FlowContext& ctx, Side& sd, Direction dir, std::span<const std::byte> value,
                                  uint64_t end, uint64_t ts, uint32_t flags) {
  sd.phase = Phase::kHeader;
  if (dir == kResp && sd.opcode == kOpStat && sd.status == 0 && flags == 0) {
    if (sd.key_len != 0) {  // one statistic; the empty-key response ends them
      ++sd.values;
      sd.value_bytes += sd.value_len;
      sd.multi = true;
      return;
    }
  }
  Message* m = sd.msg;
  if (m != nullptr) {
    FieldList& f = m->fields;
    if (dir == kReq) {
      if (sd.value_len > 0) f.add_uint("value_bytes", sd.value_len);
      if (sd.extras_len > 0) f.add_uint("extras_bytes", sd.extras_len);
      f.add_uint("opaque", sd.opaque);
      if (binary_quiet(sd.opcode)) f.add_bool("quiet", true);
    } else if (sd.opcode == kOpStat) {
      f.add_uint("values", sd.values);
      f.add_uint("value_bytes", sd.value_bytes);
    } else {
      if (get_family(sd.opcode)) f.add_uint("values", sd.status == 0 ? 1 : 0);
      if (sd.value_len > 0 && sd.status == 0) f.add_uint("value_bytes", sd.value_len);
      if (sd.extras_len > 0) f.add_uint("extras_bytes", sd.extras_len);
      if (sd.status != 0 && !value.empty())
        f.add_string("error_message", {reinterpret_cast<const char*>(value.data()), value.size()}, kMaxErrorText);
    }
    f.add_bool("binary", true);
  }
  if (dir == kResp) {
    sd.error = sd.status != 0;
    // A response built across lost bytes may have come late (a retransmission the capture kept): what it
    // implies carries its gap flag.
    const uint32_t late = ((sd.msg != nullptr ? sd.msg->flags : 0) | flags) & record_flag::kGap;
    if (!ctx.udp()) resolve_quiet(ctx, sd.opaque, sd.opcode, ts, late);
  }
  finish(ctx, sd, dir, end, ts, flags);
}

// memcached answers requests in order and quiet ones only on a hit (gets) or an error (the rest): the quiet
// requests pending before the one this response answers got no answer, so they were misses / successes.
// Each becomes a record with an implied response (0 bytes, `implied`: true) now, not a timeout later.
// Nothing is implied when this response's request is not pending (lost in a gap): the quiet requests may
// have been sent after it.
void MemcachedDecoder::resolve_quiet(FlowContext& ctx, uint32_t opaque, uint8_t opcode, uint64_t ts,
                                     uint32_t extra_flags) {
  Message* answered = ctx.front_request();
  while (answered != nullptr && !(answered->key == opaque && (answered->aux & 0xFF) == opcode))
    answered = ctx.next_request(answered);
  if (answered == nullptr) return;
  for (Message* q = ctx.front_request(); q != nullptr && q != answered;) {
    Message* next = ctx.next_request(q);
    if ((q->aux & kAuxQuiet) != 0) {  // a non-quiet one left here lost its answer: it times out
      Message* r = ctx.new_message(ts);
      if (r == nullptr) return;
      // Pending when the response side lost bytes (gap): its answer may have been lost, nothing is implied
      // (no status, `ok`, flagged `gap`).
      const bool unknown = (q->flags & record_flag::kGap) != 0;
      const bool get = (q->aux & kAuxQuietGet) != 0 && !unknown;
      r->stream_end = ctx.offset(kResp, {});
      if (!unknown) r->fields.add_string("status", get ? "key_not_found" : "no_error");
      if (get) r->fields.add_uint("values", 0);
      r->fields.add_bool("binary", true);
      r->fields.add_bool("implied", true);
      if ((q->aux & kAuxReqGap) != 0) r->flags |= record_flag::kGap;
      r->flags |= extra_flags;
      ctx.complete_response_by_key(r, get ? RecordStatus::kError : RecordStatus::kOk, q->key);
    }
    q = next;
  }
}

}  // namespace spanfeed::memcached
