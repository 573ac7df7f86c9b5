// memcached text protocol: commands with data blocks, multi-get, noreply/quit, meta commands, FIFO matching.
// Runs on a worker lcore; per-flow state lives in the builder's preallocated array; never allocates.
#include <initializer_list>

#include "memcached_decoder.h"
#include "text_util.h"

namespace spanfeed::memcached {
namespace {

constexpr uint64_t kMaxDataBlock = 0x7FFFFFFFull - 2;

// A data block length as the server would take it.
bool parse_data_len(std::string_view tok, uint64_t* n) { return text::parse_u64(tok, n) && *n <= kMaxDataBlock; }


enum class Kind : uint8_t {
  kUnknown,
  kStorage,    // set add replace append prepend cas: <key> <flags> <exptime> <bytes> [cas] [noreply] + data
  kRetrieval,  // get gets: <key>*
  kTouchGet,   // gat gats: <exptime> <key>*
  kKeyed,      // delete incr decr touch: <key> ... [noreply]
  kMetaSet,    // ms <key> <datalen> <flags>* + data
  kMeta,       // mg md ma mn me: <key> <flags>*
  kOther,      // stats version verbosity flush_all ... : one-line or END-terminated reply
  kQuit,       // quit: no reply
};

struct CommandInfo {
  std::string_view name;
  Kind kind;
};

constexpr CommandInfo kCommands[] = {
    {"get", Kind::kRetrieval},   {"gets", Kind::kRetrieval}, {"set", Kind::kStorage},
    {"add", Kind::kStorage},     {"replace", Kind::kStorage}, {"append", Kind::kStorage},
    {"prepend", Kind::kStorage}, {"cas", Kind::kStorage},    {"delete", Kind::kKeyed},
    {"incr", Kind::kKeyed},      {"decr", Kind::kKeyed},     {"touch", Kind::kKeyed},
    {"gat", Kind::kTouchGet},    {"gats", Kind::kTouchGet},  {"mg", Kind::kMeta},
    {"ms", Kind::kMetaSet},      {"md", Kind::kMeta},        {"ma", Kind::kMeta},
    {"mn", Kind::kMeta},         {"me", Kind::kMeta},        {"stats", Kind::kOther},
    {"version", Kind::kOther},   {"verbosity", Kind::kOther}, {"flush_all", Kind::kOther},
    {"cache_memlimit", Kind::kOther}, {"shutdown", Kind::kOther}, {"slabs", Kind::kOther},
    {"lru", Kind::kOther},       {"lru_crawler", Kind::kOther}, {"misbehave", Kind::kOther},
    {"quit", Kind::kQuit},
};

Kind kind_of(std::string_view cmd) {
  for (const CommandInfo& c : kCommands) {
    if (c.name == cmd) return c.kind;
  }
  return Kind::kUnknown;
}

// A word the server would take for a command it does not know (and answer
// `ERROR`): a letter, then letters, digits or '_', at most 32 bytes.
bool is_verb(std::string_view w) {
  if (w.empty() || w.size() > 32) return false;
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!letter(w[0])) return false;
  for (char c : w) {
    if (!letter(c) && !text::is_digit(c) && c != '_') return false;
  }
  return true;
}

// Single-line replies (VALUE/STAT/VA/END are handled apart).
constexpr std::string_view kReplies[] = {
    "STORED", "NOT_STORED", "EXISTS", "NOT_FOUND", "DELETED", "TOUCHED", "OK",  "VERSION", "ERROR",
    "CLIENT_ERROR", "SERVER_ERROR", "RESET", "BUSY", "BADCLASS", "NOSPARE", "NOTFULL", "UNSAFE", "SAME",
    "HD", "EN", "NF", "NS", "EX", "MN", "ME",
};

bool is_reply_word(std::string_view w) {
  for (std::string_view r : kReplies) {
    if (r == w) return true;
  }
  if (w.empty() || w.size() > 20) return false;
  for (char c : w) {
    if (!text::is_digit(c)) return false;
  }
  return true;  // incr/decr result
}

}  // namespace

bool text_reply_fits(std::string_view command, std::string_view reply) {
  if (reply == "ERROR" || reply == "CLIENT_ERROR" || reply == "SERVER_ERROR") return true;  // any command
  auto any = [&](std::initializer_list<std::string_view> words) {
    for (std::string_view w : words) {
      if (w == reply) return true;
    }
    return false;
  };
  switch (kind_of(command)) {
    case Kind::kRetrieval:
    case Kind::kTouchGet: return any({"VALUE", "END"});
    case Kind::kStorage: return any({"STORED", "NOT_STORED", "EXISTS", "NOT_FOUND"});
    case Kind::kKeyed:
      if (command == "delete") return any({"DELETED", "NOT_FOUND"});
      if (command == "touch") return any({"TOUCHED", "NOT_FOUND"});
      return reply == "NOT_FOUND" || (!reply.empty() && text::is_digit(reply[0]));  // incr, decr
    case Kind::kMeta:
    case Kind::kMetaSet: return any({"HD", "VA", "EN", "NF", "NS", "EX", "MN", "ME"});
    default: return true;  // stats, version, ... and verbs it does not know: not judged
  }
}

bool text_request_start(std::span<const std::byte> chunk) {
  std::string_view s = text::as_sv(chunk);
  size_t nl = s.find("\r\n");
  if (nl == std::string_view::npos || nl == 0) return false;
  std::string_view line = s.substr(0, nl);
  std::string_view cmd = text::next_token(line);
  const Kind k = kind_of(cmd);
  // only commands with a key: too generic otherwise ("version\r\n" also looks like other protocols)
  return (k == Kind::kRetrieval || k == Kind::kStorage || k == Kind::kKeyed) && !line.empty();
}

bool text_response_start(std::span<const std::byte> chunk) {
  std::string_view s = text::as_sv(chunk);
  size_t nl = s.find("\r\n");
  if (nl == std::string_view::npos || nl == 0) return false;
  std::string_view line = s.substr(0, nl);
  return text::next_token(line) == "VALUE" && !line.empty();
}

void MemcachedDecoder::text_data(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts) {
  Side& sd = ctx.state<State>().side[index_of(dir)];
  while (!bytes.empty()) {
    if (sd.in_message && sd.msg != nullptr) sd.msg->last_ts_ns = ts;
    if (sd.phase == Phase::kData) {
      const size_t n = bytes.size() < sd.remaining ? bytes.size() : static_cast<size_t>(sd.remaining);
      bytes = bytes.subspan(n);
      sd.remaining -= n;
      if (sd.remaining == 0) {
        sd.phase = Phase::kLine;
        if (sd.done_after_data) finish(ctx, sd, dir, ctx.offset(dir, bytes), ts, 0);
      }
      continue;
    }
    if (dir == kReq) {
      request_line(ctx, sd, bytes, ts);
    } else {
      response_line(ctx, sd, bytes, ts);
    }
  }
}

void MemcachedDecoder::request_line(FlowContext& ctx, Side& sd, std::span<const std::byte>& bytes, uint64_t ts) {
  if (!ctx.has_carry(kReq)) sd.start = ctx.offset(kReq, bytes);
  const size_t before = bytes.size();
  std::string_view line;
  bool cut = false;
  if (ctx.next_line(kReq, bytes, line, &cut) != Take::kOk) {
    if (sd.resync.lost) sd.resync.add(before - bytes.size());
    return;
  }
  if (line.empty()) return;
  std::string_view rest = line;
  const std::string_view cmd = text::next_token(rest);
  Kind kind = kind_of(cmd);
  bool& in_sync = ctx.state<State>().in_sync;
  // An unknown verb on a line boundary we trust (a known command came
  // before it and no gap since) is a request: the server answers it `ERROR`.
  // Anywhere else (flow picked up mid-stream, after a gap) it is skipped.
  const bool unknown_verb = kind == Kind::kUnknown && in_sync && !sd.resync.lost && is_verb(cmd);
  if (unknown_verb) kind = Kind::kOther;
  if (kind == Kind::kUnknown) {
    sd.resync.skip(ctx, before - bytes.size());
    return;
  }
  sd.resync.found(ctx);
  in_sync = true;
  ctx.state<State>().text_seen = true;
  const uint64_t start = sd.start;
  sd = Side{};
  sd.start = start;
  sd.in_message = true;
  Message* m = ctx.new_message(ts);
  sd.msg = m;
  if (m != nullptr) m->key = key_;  // UDP: the frame's request id
  if (m != nullptr && (cut || line_cut_)) m->flags |= record_flag::kTruncated;
  auto field_str = [&](const char* k, std::string_view v) {
    if (m != nullptr) m->fields.add_string(k, v, 250);  // memcached keys are at most 250 bytes
  };
  field_str("command", cmd);
  std::string_view tok[8];
  size_t ntok = 0;
  uint32_t extra = 0;
  while (!rest.empty()) {
    std::string_view t = text::next_token(rest);
    if (ntok < 8) {
      tok[ntok++] = t;
    } else {
      ++extra;
    }
  }
  const bool last_noreply = ntok > 0 && tok[ntok - 1] == "noreply";
  uint64_t data_len = 0;
  bool has_data = false;
  switch (kind) {
    case Kind::kStorage: {
      if (ntok > 0) field_str("key", tok[0]);
      const size_t need = cmd == "cas" ? 5 : 4;
      if (ntok < need || !parse_data_len(tok[3], &data_len)) {
        // no usable length: the server answers CLIENT_ERROR and reads no data block; the next line is a command
        ctx.count_decode_error();
        if (m != nullptr) m->flags |= record_flag::kTruncated;
        break;
      }
      has_data = true;
      sd.noreply = last_noreply;
      if (m != nullptr) m->fields.add_uint("value_bytes", data_len);
      break;
    }
    case Kind::kRetrieval:
    case Kind::kTouchGet: {
      const size_t first = kind == Kind::kTouchGet ? 1 : 0;
      if (ntok > first) field_str("key", tok[first]);
      if (m != nullptr) m->fields.add_uint("keys", ntok + extra - (ntok > first ? first : ntok));
      break;
    }
    case Kind::kKeyed:
      if (ntok > 0) field_str("key", tok[0]);
      sd.noreply = last_noreply;
      break;
    case Kind::kMetaSet:
      if (ntok > 0) field_str("key", tok[0]);
      if (ntok < 2 || !parse_data_len(tok[1], &data_len)) {
        ctx.count_decode_error();
        if (m != nullptr) m->flags |= record_flag::kTruncated;
        break;
      }
      has_data = true;
      if (m != nullptr) m->fields.add_uint("value_bytes", data_len);
      break;
    case Kind::kMeta:
      if (ntok > 0 && cmd != "mn") field_str("key", tok[0]);
      break;
    case Kind::kOther:
      sd.noreply = last_noreply && !unknown_verb;  // the server's ERROR ignores noreply
      break;
    case Kind::kQuit:
      sd.noreply = true;
      break;
    case Kind::kUnknown: break;
  }
  if (m != nullptr && sd.noreply && kind != Kind::kQuit) m->fields.add_bool("noreply", true);
  if (has_data) {
    sd.phase = Phase::kData;
    sd.remaining = data_len + 2;
    sd.done_after_data = true;
    return;
  }
  finish(ctx, sd, kReq, ctx.offset(kReq, bytes), ts, 0);
}

void MemcachedDecoder::response_line(FlowContext& ctx, Side& sd, std::span<const std::byte>& bytes, uint64_t ts) {
  if (!sd.in_message && !ctx.has_carry(kResp)) sd.start = ctx.offset(kResp, bytes);
  const size_t before = bytes.size();
  std::string_view line;
  bool cut = false;
  if (ctx.next_line(kResp, bytes, line, &cut) != Take::kOk) {
    if (sd.resync.lost) sd.resync.add(before - bytes.size());
    return;
  }
  std::string_view rest = line;
  const std::string_view word = text::next_token(rest);
  if (sd.lost_item) {
    if (word != "END") {
      sd.resync.add(before - bytes.size());
      return;
    }
    ctx.count_resync(sd.resync.skipped);  // the reply's END: framing found again
    finish(ctx, sd, kResp, ctx.offset(kResp, bytes), ts, 0);
    return;
  }
  const bool item = word == "VALUE" || word == "VA";
  const bool known = item || word == "STAT" || word == "END" || is_reply_word(word);
  if (!known || (sd.in_message && !sd.multi)) {
    if (sd.in_message) {  // garbage inside a multi-line reply: end it here
      ctx.count_decode_error();
      finish(ctx, sd, kResp, ctx.offset(kResp, bytes), ts, record_flag::kTruncated);
      sd.resync.lose();
      return;
    }
    sd.resync.skip(ctx, before - bytes.size());
    return;
  }
  if (!sd.in_message) {
    sd.resync.found(ctx);
    const uint64_t start = sd.start;
    sd = Side{};
    sd.start = start;
    sd.in_message = true;
    sd.msg = ctx.new_message(ts);
    if (sd.msg != nullptr) sd.msg->fields.add_string("response", word, 16);
  }
  Message* m = sd.msg;
  if (cut && m != nullptr) m->flags |= record_flag::kTruncated;
  if (word == "VALUE" || word == "VA") {
    // VALUE <key> <flags> <bytes> [<cas>]   |   VA <size> <flags>*
    std::string_view t1 = text::next_token(rest);
    std::string_view len_tok = t1;
    if (word == "VALUE") {
      text::next_token(rest);
      len_tok = text::next_token(rest);
    }
    uint64_t len = 0;
    if (!parse_data_len(len_tok, &len)) {
      // Longer than any data block (the bound of the request side), or no number: `len + 2` would be
      // meaningless (2^64-1 wraps to 1). The reply is cut here; a VALUE reply still ends with END, so skip
      // to it (inside the reply, like the data block we cannot measure); a VA reply has no end marker.
      ctx.count_decode_error();
      if (m != nullptr) m->flags |= record_flag::kTruncated;
      if (word == "VALUE") {
        sd.lost_item = true;
        sd.multi = true;
        sd.resync = Resync{};
        return;
      }
      finish(ctx, sd, kResp, ctx.offset(kResp, bytes), ts, 0);
      sd.resync.lose();
      return;
    }
    ++sd.values;
    sd.value_bytes += len;
    sd.multi = word == "VALUE";
    sd.done_after_data = word == "VA";
    sd.phase = Phase::kData;
    sd.remaining = len + 2;
    return;
  }
  if (word == "STAT") {
    sd.multi = true;
    return;
  }
  if (word == "ERROR" || word == "CLIENT_ERROR" || word == "SERVER_ERROR") {
    sd.error = true;
    if (m != nullptr && !rest.empty()) m->fields.add_string("error_message", rest, 256);
  }
  finish(ctx, sd, kResp, ctx.offset(kResp, bytes), ts, 0);  // END, or a one-line reply
}

void MemcachedDecoder::text_finish_response(FlowContext& /*ctx*/, Side& done, Message* m) {
  if (done.values > 0 || m->fields.get_string("response") == "END") {
    m->fields.add_uint("values", done.values);
    m->fields.add_uint("value_bytes", done.value_bytes);
  }
}

}  // namespace spanfeed::memcached
