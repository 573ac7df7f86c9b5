// MongoDB wire protocol decoder: OP_MSG, legacy OP_QUERY/OP_REPLY/OP_GET_MORE and fire-and-forget ops,
// OP_COMPRESSED (zlib, noop); requests matched to replies by requestID/responseTo; bounded BSON walker.
// Runs on a worker lcore. Allocates only in the constructor (one inflate context, its output buffer).
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "db_util.h"
#include "mongodb.h"

#include "spanfeed/decoder.h"
#include "decode/inflate.h"

namespace spanfeed {
namespace {

using db::le32;

constexpr Direction kReq = Direction::kClientToServer;
constexpr Direction kResp = Direction::kServerToClient;

constexpr uint32_t kHeaderBytes = 16;
constexpr uint32_t kMaxMessage = 48u << 20;  // maxMessageSizeBytes of mongod
constexpr size_t kInflateOut = 65536;        // decompressed prefix parsed (the command / reply body comes first)
constexpr size_t kNameMax = 128;             // collection / database / command names
constexpr int kMaxDepth = 2;                 // nested documents walked (reply.cursor.firstBatch)

constexpr int32_t kOpReply = 1;
constexpr int32_t kOpUpdate = 2001;
constexpr int32_t kOpInsert = 2002;
constexpr int32_t kOpQuery = 2004;
constexpr int32_t kOpGetMore = 2005;
constexpr int32_t kOpDelete = 2006;
constexpr int32_t kOpKillCursors = 2007;
constexpr int32_t kOpCompressed = 2012;
constexpr int32_t kOpMsg = 2013;

constexpr uint32_t kMsgMoreToCome = 2;  // OP_MSG flagBits: no reply follows

bool known_op(int32_t op) {
  return op == kOpReply || op == kOpUpdate || op == kOpInsert || op == kOpQuery || op == kOpGetMore ||
         op == kOpDelete || op == kOpKillCursors || op == kOpCompressed || op == kOpMsg || op == 2010 || op == 2011;
}

const char* op_name(int32_t op) {
  switch (op) {
    case kOpReply: return "OP_REPLY";
    case kOpUpdate: return "OP_UPDATE";
    case kOpInsert: return "OP_INSERT";
    case kOpQuery: return "OP_QUERY";
    case kOpGetMore: return "OP_GET_MORE";
    case kOpDelete: return "OP_DELETE";
    case kOpKillCursors: return "OP_KILL_CURSORS";
    case kOpCompressed: return "OP_COMPRESSED";
    case kOpMsg: return "OP_MSG";
    default: return "OP_UNKNOWN";
  }
}

bool plausible_header(const uint8_t* p, size_t n) {
  if (n < kHeaderBytes) return false;
  const uint32_t len = le32(p);
  return len >= kHeaderBytes && len <= kMaxMessage && known_op(static_cast<int32_t>(le32(p + 12)));
}

enum class Phase : uint8_t { kHeader, kBody, kSkip };

struct Side {
  uint64_t start = 0;
  uint64_t first_ts = 0;
  uint32_t len = 0;      // body bytes of the current message
  uint32_t skip = 0;
  uint32_t request_id = 0;
  uint32_t response_to = 0;
  int32_t op = 0;
  Phase phase = Phase::kHeader;
  bool checked = false;
  Resync resync;
};

struct State {
  Side side[2];
};
static_assert(sizeof(State) <= kDecoderStateBytes, "mongodb state must fit the per-flow slot");

// ---------------------------------------------------------------- BSON

struct Element {
  std::string_view name;
  uint8_t type = 0;
  const uint8_t* value = nullptr;
  size_t len = 0;  // value bytes available (may be cut for the last element of a truncated document)
};

// Walks the top-level elements of the document at p (n bytes available, possibly fewer than the document).
// Calls f(Element) until it returns false, the document ends, or the bytes run out. No allocation.
template <typename F>
void walk(const uint8_t* p, size_t n, F&& f) {
  if (n < 5) return;
  const size_t doc = std::min<size_t>(le32(p), n);
  size_t i = 4;
  while (i < doc) {
    Element e;
    e.type = p[i++];
    if (e.type == 0) return;
    const size_t nb = i;
    while (i < doc && p[i] != 0) ++i;
    if (i >= doc) return;
    e.name = std::string_view(reinterpret_cast<const char*>(p + nb), i - nb);
    ++i;
    size_t vlen = 0;
    switch (e.type) {
      case 0x01: case 0x09: case 0x11: case 0x12: vlen = 8; break;
      case 0x02: case 0x0D: case 0x0E:
        if (i + 4 > doc) return;
        vlen = 4 + static_cast<size_t>(le32(p + i));
        break;
      case 0x03: case 0x04: case 0x0F:
        if (i + 4 > doc) return;
        vlen = le32(p + i);
        break;
      case 0x05:
        if (i + 4 > doc) return;
        vlen = 5 + static_cast<size_t>(le32(p + i));
        break;
      case 0x06: case 0x0A: case 0xFF: case 0x7F: vlen = 0; break;
      case 0x07: vlen = 12; break;
      case 0x08: vlen = 1; break;
      case 0x0B: {
        size_t j = i;
        for (int k = 0; k < 2; ++k) {
          while (j < doc && p[j] != 0) ++j;
          ++j;
        }
        vlen = j - i;
        break;
      }
      case 0x0C:
        if (i + 4 > doc) return;
        vlen = 4 + static_cast<size_t>(le32(p + i)) + 12;
        break;
      case 0x10: vlen = 4; break;
      case 0x13: vlen = 16; break;
      default: return;  // unknown type: the rest cannot be walked
    }
    e.value = p + i;
    e.len = std::min(vlen, doc - i);
    if (!f(e)) return;
    if (vlen > doc - i) return;
    i += vlen;
  }
}

std::string_view bson_string(const Element& e) {
  if (e.type != 0x02 || e.len < 5) return {};
  const size_t l = le32(e.value);
  if (l == 0) return {};
  return std::string_view(reinterpret_cast<const char*>(e.value + 4), std::min(l - 1, e.len - 4));
}

bool bson_number(const Element& e, double* v) {
  switch (e.type) {
    case 0x01:
      if (e.len < 8) return false;
      std::memcpy(v, e.value, 8);
      return true;
    case 0x10:
      if (e.len < 4) return false;
      *v = static_cast<int32_t>(le32(e.value));
      return true;
    case 0x12:
      if (e.len < 8) return false;
      *v = static_cast<double>(static_cast<int64_t>(db::le64(e.value)));
      return true;
    case 0x08:
      if (e.len < 1) return false;
      *v = e.value[0] != 0 ? 1 : 0;
      return true;
    default: return false;
  }
}

// An integer field (a code, a count): int32 and int64 exactly, a double when it
// is a finite value an int64 can hold (cut toward zero), a boolean as 0/1.
bool bson_int(const Element& e, int64_t* v) {
  if (e.type == 0x12) {
    if (e.len < 8) return false;
    *v = static_cast<int64_t>(db::le64(e.value));
    return true;
  }
  double d;
  if (!bson_number(e, &d)) return false;
  if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return false;  // NaN, inf, out of range
  *v = static_cast<int64_t>(d);
  return true;
}

uint32_t count_elements(const uint8_t* p, size_t n) {
  uint32_t c = 0;
  walk(p, n, [&](const Element&) {
    ++c;
    return true;
  });
  return c;
}

// Fields of a command document (OP_MSG body / OP_QUERY on $cmd).
void command_fields(FieldList& f, const uint8_t* p, size_t n, bool want_db) {
  bool first = true;
  walk(p, n, [&](const Element& e) {
    if (first) {
      first = false;
      f.add_string("command", e.name, kNameMax);
      const std::string_view coll = bson_string(e);
      if (!coll.empty()) f.add_string("collection", coll, kNameMax);
      return true;
    }
    if (want_db && e.name == "$db") f.add_string("database", bson_string(e), kNameMax);
    return true;
  });
}

// Fields of a reply document; returns whether it reports an error.
bool reply_fields(FieldList& f, const uint8_t* p, size_t n, int depth = 0) {
  bool error = false;
  bool has_ok = false;
  bool has_write_code = false;  // the first entry of writeErrors: {index, code, errmsg}
  int64_t write_code = 0;
  std::string_view write_msg;
  walk(p, n, [&](const Element& e) {
    double v = 0;
    int64_t iv = 0;
    if (depth == 0 && e.name == "ok" && bson_number(e, &v)) {
      has_ok = true;
      f.add_uint("ok", v == 1 ? 1 : 0);
      if (v != 1) error = true;
    } else if (depth == 0 && (e.name == "errmsg" || e.name == "$err") && e.type == 0x02) {
      f.add_string("error_message", bson_string(e), 256);
      error = true;
    } else if (depth == 0 && e.name == "code" && bson_int(e, &iv)) {
      f.add_int("error_code", iv);
    } else if (depth == 0 && e.name == "codeName" && e.type == 0x02) {
      f.add_string("code_name", bson_string(e), 64);
    } else if (depth == 0 && e.name == "n" && bson_int(e, &iv)) {
      f.add_int("n", iv);
    } else if (depth == 0 && e.name == "writeErrors" && e.type == 0x04) {
      // ok: 1 with write errors (duplicate key, validation...): the write failed, the command did not.
      const uint32_t count = count_elements(e.value, e.len);
      f.add_uint("write_errors", count);
      if (count > 0) error = true;
      walk(e.value, e.len, [&](const Element& we) {
        if (we.type != 0x03) return false;
        walk(we.value, we.len, [&](const Element& x) {
          if (x.name == "code" && bson_int(x, &write_code)) {
            has_write_code = true;
          } else if (x.name == "errmsg" && x.type == 0x02) {
            write_msg = bson_string(x);
          }
          return true;
        });
        return false;  // the first one tells
      });
    } else if (depth == 0 && e.name == "cursor" && e.type == 0x03 && depth < kMaxDepth) {
      reply_fields(f, e.value, e.len, depth + 1);
    } else if (depth == 1 && (e.name == "firstBatch" || e.name == "nextBatch") && e.type == 0x04) {
      f.add_uint("returned", count_elements(e.value, e.len));
    }
    return true;
  });
  (void)has_ok;
  if (has_write_code && !f.has("error_code")) f.add_int("error_code", write_code);
  if (!write_msg.empty() && !f.has("error_message")) f.add_string("error_message", write_msg, 256);
  return error;
}

class MongoDecoder final : public Decoder {
 public:
  // One inflate context: a compressed message is inflated whole in one call.
  explicit MongoDecoder(const DecodeConfig& /*cfg*/) : inflater_(1, InflatePool::Format::kZlib, kInflateOut) {}

  Protocol protocol() const override { return Protocol::kMongodb; }
  bool matches_by_key() const override { return true; }  // by responseTo

  static SniffResult sniff(std::span<const std::byte> chunk, Transport t) {
    if (t != Transport::kTcp) return SniffResult::kNo;
    const uint8_t* p = db::u8p(chunk);
    if (!plausible_header(p, chunk.size()) || le32(p) > chunk.size()) return SniffResult::kNo;
    const auto op = static_cast<int32_t>(le32(p + 12));
    const uint32_t response_to = le32(p + 8);
    if ((op == kOpMsg || op == kOpQuery || op == kOpCompressed) && response_to == 0) return SniffResult::kRequest;
    if ((op == kOpMsg || op == kOpReply) && response_to != 0) return SniffResult::kResponse;
    return SniffResult::kNo;
  }

  void open(FlowContext& ctx, uint64_t /*ts*/) override { ctx.state<State>() = State{}; }

  void data(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts) override {
    State& st = ctx.state<State>();
    Side& sd = st.side[index_of(dir)];
    if (!sd.resync.lost && !sd.checked && bytes.size() < kHeaderBytes) sd.checked = true;  // too short to judge
    if (!sd.checked || sd.resync.lost) {
      sd.checked = true;
      if (!plausible_header(db::u8p(bytes), bytes.size())) {
        sd.resync.skip(ctx, bytes.size());
        return;
      }
      sd.resync.found(ctx);
      sd = Side{};
      sd.checked = true;
    }
    const uint32_t cap = ctx.config().carry_bytes;
    while (!bytes.empty()) {
      switch (sd.phase) {
        case Phase::kHeader: {
          if (!ctx.has_carry(dir)) {
            sd.start = ctx.offset(dir, bytes);
            sd.first_ts = ts;
          }
          std::span<const std::byte> out;
          const Take t = ctx.take(dir, bytes, kHeaderBytes, out);
          if (t == Take::kNeedMore) return;
          const uint8_t* h = db::u8p(out);
          if (t == Take::kNoMemory || !plausible_header(h, out.size())) {
            if (t == Take::kOk) ctx.count_decode_error();
            lose_sync(ctx, st, dir, bytes);
            return;
          }
          sd.len = le32(h) - kHeaderBytes;
          sd.request_id = le32(h + 4);
          sd.response_to = le32(h + 8);
          sd.op = static_cast<int32_t>(le32(h + 12));
          sd.phase = Phase::kBody;
          if (sd.len == 0) {
            sd.phase = Phase::kHeader;
            message(ctx, dir, sd, {}, ctx.offset(dir, bytes), ts);
          }
          break;
        }
        case Phase::kBody: {
          const size_t want = std::min<size_t>(sd.len, cap);
          std::span<const std::byte> out;
          const Take t = ctx.take(dir, bytes, want, out);
          if (t == Take::kNeedMore) return;
          if (t == Take::kNoMemory) {
            lose_sync(ctx, st, dir, bytes);
            return;
          }
          sd.skip = static_cast<uint32_t>(sd.len - want);
          sd.phase = sd.skip > 0 ? Phase::kSkip : Phase::kHeader;
          message(ctx, dir, sd, out, ctx.offset(dir, bytes) + sd.skip, ts);
          break;
        }
        case Phase::kSkip: {
          const size_t n = std::min<size_t>(sd.skip, bytes.size());
          bytes = bytes.subspan(n);
          sd.skip -= static_cast<uint32_t>(n);
          if (sd.skip == 0) sd.phase = Phase::kHeader;
          break;
        }
      }
    }
  }

  void gap(FlowContext& ctx, Direction dir, uint64_t missing, uint64_t /*ts*/) override {
    State& st = ctx.state<State>();
    Side& sd = st.side[index_of(dir)];
    if (sd.phase == Phase::kSkip && missing <= sd.skip) {
      sd.skip -= static_cast<uint32_t>(missing);
      if (sd.skip == 0) sd.phase = Phase::kHeader;
      ctx.count_gap_absorbed();
      return;
    }
    // Requests stay pending: replies carry responseTo, so the ones after the gap still match.
    restart_after_gap(sd);
  }

  void fin(FlowContext& /*ctx*/, Direction /*dir*/, uint64_t /*ts*/) override {}
  // The flow ended inside a message: a request or reply whose header arrived is made of what arrived of
  // it, flagged `truncated` (a cut request becomes a timeout record, as HTTP's do); one cut inside its
  // 16-byte header is too little to tell (counted).
  void close(FlowContext& ctx, uint64_t ts) override {
    State& st = ctx.state<State>();
    for (Direction dir : {kResp, kReq}) {
      Side& sd = st.side[index_of(dir)];
      if (sd.resync.lost) continue;
      if (sd.phase == Phase::kBody) {
        message(ctx, dir, sd, ctx.kept(dir), ctx.offset(dir, {}), ts, record_flag::kTruncated);
        sd = Side{};
      } else if (sd.phase == Phase::kHeader && ctx.has_carry(dir)) {
        ctx.count_partial_at_close();
      }
    }
  }

 private:
  static void lose_sync(FlowContext& /*ctx*/, State& st, Direction dir, std::span<const std::byte>& bytes) {
    Side& sd = st.side[index_of(dir)];
    sd = Side{};
    sd.checked = true;
    sd.resync.lose(bytes.size());
    bytes = {};
  }

  // One message: header fields in sd, `body` = its first bytes after the header.
  void message(FlowContext& ctx, Direction dir, const Side& sd, std::span<const std::byte> body, uint64_t end,
               uint64_t ts, uint32_t flags = 0) {
    Message* m = ctx.new_message(sd.first_ts);
    if (m == nullptr) return;
    m->flags |= flags;
    m->end_span(sd.start, end, ts);
    FieldList& f = m->fields;
    int32_t op = sd.op;
    const uint8_t* p = db::u8p(body);
    size_t n = body.size();
    if (dir == kReq) {
      m->key = sd.request_id;
      f.add_string("op", op_name(op));
      f.add_uint("request_id", sd.request_id);
    } else {
      m->key = sd.response_to;
      f.add_string("op", op_name(op));
    }
    if (op == kOpCompressed) {
      if (n < 9) {
        ctx.count_decode_error();
      } else {
        const auto orig = static_cast<int32_t>(le32(p));
        const uint8_t compressor = p[8];
        f.add_string("compressor", compressor == 0 ? "noop" : compressor == 1 ? "snappy" : compressor == 2 ? "zlib"
                                                            : compressor == 3 ? "zstd" : "unknown");
        if (compressor == 0) {
          op = orig;
          p += 9;
          n -= 9;
        } else if (const uint32_t z = compressor == 2 ? inflater_.lease() : InflatePool::kNone;
                   z != InflatePool::kNone) {
          z_stream& zs = inflater_.stream(z);
          const std::span<std::byte> out = inflater_.out();
          zs.next_in = const_cast<Bytef*>(p + 9);
          zs.avail_in = static_cast<uInt>(n - 9);
          zs.next_out = reinterpret_cast<Bytef*>(out.data());
          zs.avail_out = static_cast<uInt>(out.size());
          const int rc = inflate(&zs, Z_SYNC_FLUSH);
          const size_t produced = out.size() - zs.avail_out;
          inflater_.release(z);
          if ((rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR) && produced > 0) {
            op = orig;
            p = reinterpret_cast<const uint8_t*>(out.data());
            n = produced;
            ctx.content(dir, std::span<const std::byte>(out.data(), produced), false);  // for the rules
          } else {
            ctx.count_decode_error();
          }
        } else {
          ctx.count_decode_error();  // snappy / zstd: not decoded here; the record keeps the match
        }
        if (op != kOpCompressed) f.add_string("original_op", op_name(op));
      }
    }
    bool error = false;
    bool no_reply = false;
    switch (op) {
      case kOpMsg: {
        if (n < 4) break;
        const uint32_t flags = le32(p);
        no_reply = dir == kReq && (flags & kMsgMoreToCome) != 0;
        size_t i = 4;
        bool body_seen = false;
        uint32_t seq_docs = 0;
        while (i < n) {
          const uint8_t kind = p[i++];
          if (i + 4 > n) break;
          const uint32_t sz = le32(p + i);
          if (kind == 0) {
            if (!body_seen) {
              body_seen = true;
              if (dir == kReq) {
                command_fields(f, p + i, n - i, true);
              } else {
                error = reply_fields(f, p + i, n - i);
              }
            }
          } else if (kind == 1) {
            // document sequence: size, identifier, documents
            size_t j = i + 4;
            while (j < n && p[j] != 0) ++j;
            ++j;
            while (j + 4 <= n && j < i + sz) {
              const uint32_t dl = le32(p + j);
              if (dl < 5) break;
              ++seq_docs;
              j += dl;
            }
          } else {
            break;
          }
          if (sz < 4) break;
          i += sz;
        }
        if (seq_docs > 0) f.add_uint("documents", seq_docs);
        break;
      }
      case kOpQuery: {
        if (n < 4) break;
        size_t i = 4;
        size_t e = i;
        while (e < n && p[e] != 0) ++e;
        const std::string_view full(reinterpret_cast<const char*>(p + i), e - i);
        i = e + 1 + 8;
        const size_t dot = full.find('.');
        const std::string_view dbname = full.substr(0, dot);
        const std::string_view coll = dot == std::string_view::npos ? std::string_view{} : full.substr(dot + 1);
        f.add_string("database", dbname, kNameMax);
        if (coll == "$cmd" && i < n) {
          command_fields(f, p + i, n - i, false);
        } else {
          f.add_string("command", "query");
          f.add_string("collection", coll, kNameMax);
        }
        break;
      }
      case kOpGetMore: case kOpInsert: case kOpUpdate: case kOpDelete: {
        size_t i = 4;  // flags (OP_INSERT) or a reserved int32, then fullCollectionName
        size_t e = i;
        while (e < n && p[e] != 0) ++e;
        const std::string_view full(reinterpret_cast<const char*>(p + std::min<size_t>(i, n)), e > i ? e - i : 0);
        const size_t dot = full.find('.');
        f.add_string("database", full.substr(0, dot), kNameMax);
        if (dot != std::string_view::npos) f.add_string("collection", full.substr(dot + 1), kNameMax);
        f.add_string("command", op == kOpGetMore ? "getMore" : op == kOpInsert ? "insert"
                                : op == kOpUpdate ? "update" : "delete");
        no_reply = op != kOpGetMore;
        break;
      }
      case kOpKillCursors:
        f.add_string("command", "killCursors");
        no_reply = true;
        break;
      case kOpReply: {
        if (n < 20) break;
        const uint32_t flags = le32(p);
        const uint32_t returned = le32(p + 16);
        f.add_uint("number_returned", returned);
        if (flags & 2) error = true;  // QueryFailure
        if (returned > 0 && n > 20) error = reply_fields(f, p + 20, n - 20) || error;
        break;
      }
      default: break;
    }
    if (dir == kReq) {
      if (no_reply) {
        ctx.emit_no_reply(m);
      } else {
        ctx.commit_request(m);
      }
      return;
    }
    ctx.complete_response_by_key(m, error ? RecordStatus::kError : RecordStatus::kOk, sd.response_to);
  }

  InflatePool inflater_;
};

}  // namespace

namespace mongodb {

std::unique_ptr<Decoder> make_decoder(const DecodeConfig& cfg) { return std::make_unique<MongoDecoder>(cfg); }
SniffResult confirm(std::span<const std::byte> chunk, Transport t) { return MongoDecoder::sniff(chunk, t); }

}  // namespace mongodb

}  // namespace spanfeed
