// Kafka wire protocol decoder, framing and the streaming walk: length-prefixed requests (header v0-v2, flexible
// versions) and responses matched by correlation id; bodies walked as they stream by the versioned layouts of
// kafka_layouts.cc (record sets and long strings skipped by length, never buffered); fields in kafka_fields.cc.
// Runs on a worker lcore; per-flow state in the builder's slot; no allocation.
#include <algorithm>

#include "kafka.h"
#include "kafka_state.h"

#include "spanfeed/decoder.h"

namespace spanfeed {
namespace {

using namespace kafka;  // NOLINT: the decoder's own folder-local names

// Request and response headers, as layouts: the walker runs them like any body.
constexpr Op kRequestHeader[] = {
    {OpKind::kI16, Role::kApiKey}, {OpKind::kI16, Role::kApiVersion}, {OpKind::kI32, Role::kCorrelation},
    {OpKind::kStr16, Role::kClientId}, {OpKind::kTags},
};
constexpr Op kResponseHeader[] = {{OpKind::kI32, Role::kCorrelation}, {OpKind::kTags}};

bool fixed_width(OpKind k, uint32_t* w) {
  switch (k) {
    case OpKind::kI8: *w = 1; return true;
    case OpKind::kI16: *w = 2; return true;
    case OpKind::kI32: *w = 4; return true;
    case OpKind::kI64: *w = 8; return true;
    case OpKind::kUuid: *w = 16; return true;
    default: return false;
  }
}

// Index just past the kEnd matching the kArr at `pc`.
uint8_t past_end(std::span<const Op> ops, size_t pc) {
  int depth = 0;
  for (size_t i = pc; i < ops.size(); ++i) {
    if (ops[i].kind == OpKind::kArr) ++depth;
    if (ops[i].kind == OpKind::kEnd && --depth == 0) return static_cast<uint8_t>(i + 1);
  }
  return static_cast<uint8_t>(ops.size());
}

// A Produce body's first fixed fields, where the bytes reach them: a printable transactional id (v3+), acks
// of -1, 0 or 1 and a non-negative timeout. (A MySQL server's OK packets, read as a Kafka header, made a
// "Produce v2" with acks 256.)
bool plausible_produce(const uint8_t* p, size_t n, size_t off, uint16_t version) {
  if (flexible(kApiProduce, version)) {  // header v2: the client id's tagged fields, then compact strings
    if (off >= n) return true;
    if (p[off] != 0) return false;  // no client sends header tags
    ++off;
  }
  if (version >= 3) {
    if (off + 2 > n) return true;
    int32_t tl = 0;
    if (flexible(kApiProduce, version)) {
      uint32_t v = p[off] & 0x7fu;  // compact: length + 1 as a varint (two bytes at most up to 255)
      if (p[off++] & 0x80) {
        if (p[off] & 0x80) return false;
        v |= uint32_t{p[off++]} << 7;
      }
      tl = static_cast<int32_t>(v) - 1;
    } else {
      tl = static_cast<int16_t>(be16(p + off));
      off += 2;
    }
    if (tl < -1 || tl > 255) return false;
    for (size_t i = off; tl > 0 && i < std::min<size_t>(n, off + static_cast<size_t>(tl)); ++i) {
      if (p[i] < 0x20 || p[i] > 0x7e) return false;
    }
    off += static_cast<size_t>(std::max(tl, 0));
  }
  if (off + 2 > n) return true;
  const auto acks = static_cast<int16_t>(be16(p + off));
  if (acks < -1 || acks > 1) return false;
  return off + 6 > n || static_cast<int32_t>(be32(p + off + 2)) >= 0;
}

bool plausible_request(const uint8_t* p, size_t n, bool known_versions) {
  if (n < 8) return false;
  const uint32_t len = be32(p);
  const auto api = static_cast<int16_t>(be16(p + 4));
  const uint16_t version = be16(p + 6);
  const kafka::ApiLayout* l = kafka::api_layout(api);
  // The sniff (`known_versions`) takes no version past the highest whose layout is known: a Produce response
  // with correlation id 18 reads as a Produce v18 "request" whose client id is the topic. On a Kafka port a
  // newer version is still a request (recorded `unsupported_version`).
  const unsigned max_version = known_versions && l != nullptr && l->max_version > 0 ? l->max_version : 40;
  if (len < kMinRequest || len > kMaxMessage || l == nullptr || version > max_version) return false;
  if (n < 14) return true;
  const auto cl = static_cast<int16_t>(be16(p + 12));
  if (cl < -1 || cl > 255 || (cl > 0 && static_cast<uint32_t>(cl) > len - kMinRequest)) return false;
  for (size_t i = 14; cl > 0 && i < std::min<size_t>(n, 14 + static_cast<size_t>(cl)); ++i) {
    if (p[i] < 0x20 || p[i] > 0x7e) return false;
  }
  return api != kApiProduce || plausible_produce(p, n, 14 + static_cast<size_t>(std::max<int16_t>(cl, 0)), version);
}


class KafkaDecoder final : public Decoder {
 public:
  explicit KafkaDecoder(const DecodeConfig& /*cfg*/) {}

  Protocol protocol() const override { return Protocol::kKafka; }
  bool matches_by_key() const override { return true; }  // by correlation id

  // A client's first request: a plausible header with a printable client id. Responses carry too little.
  static SniffResult sniff(std::span<const std::byte> chunk, Transport t) {
    if (t != Transport::kTcp || chunk.size() < 14) return SniffResult::kNo;
    return plausible_request(db::u8p(chunk), chunk.size(), true) ? SniffResult::kRequest : SniffResult::kNo;
  }

  void open(FlowContext& ctx, uint64_t /*ts*/) override { ctx.state<State>() = State{}; }

  void data(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts) override {
    State& st = ctx.state<State>();
    Side& sd = st.side[index_of(dir)];
    if (sd.phase == Phase::kLength && !ctx.has_carry(dir) && !check_start(ctx, st, dir, bytes)) return;
    while (true) {
      switch (sd.phase) {
        case Phase::kLength: {
          if (bytes.empty()) return;
          std::span<const std::byte> out;
          const Take t = ctx.take(dir, bytes, 4, out);
          if (t == Take::kNeedMore) return;
          const uint32_t len = t == Take::kOk ? be32(db::u8p(out)) : 0;
          if (len < (dir == kReq ? kMinRequest : kMinResponse) || len > kMaxMessage) {
            if (t == Take::kOk) ctx.count_decode_error();
            lose_sync(ctx, sd, dir, bytes);
            return;
          }
          begin_message(ctx, sd, len, ctx.offset(dir, bytes) - 4, ts);
          break;
        }
        case Phase::kWalk:
          if (!step(ctx, st, dir, bytes)) return;
          if (sd.flags & flag::kResync) return;  // lost the framing inside the walk
          break;
        case Phase::kSkip: {
          if (sd.msg_left == 0) {
            finish(ctx, st, dir, ctx.offset(dir, bytes), ts, 0);
            if (!bytes.empty() && !check_start(ctx, st, dir, bytes)) return;
            break;
          }
          if (bytes.empty()) return;
          const size_t n = std::min<size_t>(sd.msg_left, bytes.size());
          bytes = bytes.subspan(n);
          sd.msg_left -= static_cast<uint32_t>(n);
          break;
        }
      }
    }
  }

  void gap(FlowContext& ctx, Direction dir, uint64_t missing, uint64_t ts) override {
    State& st = ctx.state<State>();
    Side& sd = st.side[index_of(dir)];
    if (sd.flags & flag::kResync) return;
    if (absorb(ctx, sd, dir, missing)) {
      if (sd.m != nullptr) sd.m->flags |= record_flag::kGap;
      ctx.count_gap_absorbed();
      return;
    }
    // The hole cut the framing: what was read of the message in progress is its record (flagged `gap`);
    // requests stay pending: responses name their correlation id, so the ones after the hole still match.
    const uint64_t at = ctx.offset(dir, {});
    if (sd.phase == Phase::kWalk && sd.prog == Prog::kBody) {
      finish(ctx, st, dir, at + missing, ts, record_flag::kGap);
    } else {
      ctx.discard(sd.m);
      sd.m = nullptr;
    }
    ctx.drop_carry(dir);
    reset(sd, flag::kResync | flag::kChecked);
  }

  void fin(FlowContext& /*ctx*/, Direction /*dir*/, uint64_t /*ts*/) override {}

  // The flow ended inside a message: one whose header was read is recorded from what arrived, flagged
  // `truncated` (a cut request becomes a timeout record); one cut inside its header is too little (counted).
  void close(FlowContext& ctx, uint64_t ts) override {
    State& st = ctx.state<State>();
    for (Direction dir : {kReq, kResp}) {
      Side& sd = st.side[index_of(dir)];
      if (sd.flags & flag::kResync) continue;
      if ((sd.phase == Phase::kWalk && sd.prog == Prog::kBody) || (sd.phase == Phase::kSkip && sd.msg_left > 0)) {
        finish(ctx, st, dir, ctx.offset(dir, {}), ts, record_flag::kTruncated);
      } else if (sd.phase != Phase::kLength || ctx.has_carry(dir)) {
        ctx.discard(sd.m);
        sd.m = nullptr;
        ctx.count_partial_at_close();
      }
      reset(sd, sd.flags & flag::kPersistent);
    }
  }

 private:
  // ---------------------------------------------------------------- framing

  // At a message boundary: the direction's first bytes (and, after a loss, each chunk) must look like a
  // message start. False: the chunk was skipped.
  static bool check_start(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes) {
    Side& sd = st.side[index_of(dir)];
    const bool resync = (sd.flags & flag::kResync) != 0;
    if ((sd.flags & flag::kChecked) && !resync) return true;
    if (!resync && bytes.size() < 8) {  // too short to judge
      sd.flags |= flag::kChecked;
      return true;
    }
    const uint8_t* p = db::u8p(bytes);
    bool ok = false;
    if (dir == kReq) {
      ok = plausible_request(p, bytes.size(), false);
    } else if (bytes.size() >= 8) {
      const uint32_t len = be32(p);
      ok = len >= kMinResponse && len <= kMaxMessage;
      Inflight found;
      if (resync) ok = ok && lookup(ctx, st, be32(p + 4), &found);
    }
    if (ok) {
      if (resync) ctx.count_resync(sd.skip);
      reset(sd, flag::kChecked);
      return true;
    }
    if (!resync) ctx.count_decode_error();
    reset(sd, flag::kChecked | flag::kResync);
    sd.skip = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{sd.skip} + bytes.size(), UINT32_MAX));
    bytes = {};
    return false;
  }

  static void lose_sync(FlowContext& ctx, Side& sd, Direction dir, std::span<const std::byte>& bytes) {
    ctx.discard(sd.m);
    ctx.drop_carry(dir);
    reset(sd, flag::kChecked | flag::kResync);
    sd.skip = static_cast<uint32_t>(bytes.size());
    bytes = {};
  }

  static void reset(Side& sd, uint16_t keep_flags) {
    sd = Side{};
    sd.flags = keep_flags;
  }

  static void begin_message(FlowContext& ctx, Side& sd, uint32_t len, uint64_t start, uint64_t ts) {
    reset(sd, sd.flags & flag::kPersistent);
    sd.msg_left = len;
    sd.phase = Phase::kWalk;
    sd.m = ctx.new_message(ts);
    if (sd.m != nullptr) sd.m->stream_end = start;  // its start, until finish() sets the end
  }

  // A hole inside bytes the walk skips by count (a string's tail, a record set, the rest of the message).
  static bool absorb(FlowContext& ctx, Side& sd, Direction dir, uint64_t missing) {
    if (sd.phase == Phase::kSkip && missing <= sd.msg_left) {
      sd.msg_left -= static_cast<uint32_t>(missing);
      return true;
    }
    if (sd.phase != Phase::kWalk) return false;
    const bool records = (sd.flags & flag::kInRecords) != 0;
    if (sd.skip > 0 && missing <= sd.skip) {
      sd.skip -= static_cast<uint32_t>(missing);
      sd.msg_left -= static_cast<uint32_t>(missing);
      if (records) sd.rec_left -= static_cast<uint32_t>(missing);
      return true;
    }
    if (records) {  // the batches after the hole cannot be counted: the rest of the record set is skipped
      const uint64_t kept = ctx.kept(dir).size() + sd.skip;
      if (missing + kept > sd.rec_left) return false;
      ctx.drop_carry(dir);
      const auto used = static_cast<uint32_t>(missing + kept);
      sd.msg_left -= used;
      sd.rec_left -= used;
      sd.skip = sd.rec_left;
      sd.step = Step::kBatch;
      return true;
    }
    return false;
  }

  // ---------------------------------------------------------------- the walk

  static std::span<const Op> program(const Side& sd, Direction dir) {
    if (sd.prog == Prog::kHeader) {
      if (dir == kReq) return kRequestHeader;
      return kResponseHeader;
    }
    const kafka::ApiLayout* l = kafka::api_layout(sd.api);
    if (l == nullptr) return {};
    return dir == kReq ? l->request : l->response;
  }

  static bool active(const Op& op, const Side& sd) {
    return sd.version >= op.min_version && sd.version <= op.max_version;
  }

  // One op or one piece of one; false: the chunk is used up (its bytes consumed or kept).
  bool step(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes) {
    Side& sd = st.side[index_of(dir)];
    if (sd.skip > 0) {
      if (bytes.empty()) return false;
      const auto n = static_cast<uint32_t>(std::min<size_t>(sd.skip, bytes.size()));
      bytes = bytes.subspan(n);
      sd.skip -= n;
      sd.msg_left -= n;
      if (sd.flags & flag::kInRecords) sd.rec_left -= n;
      return true;
    }
    const std::span<const Op> ops = program(sd, dir);
    if (sd.pc >= ops.size()) {
      end_program(ctx, st, dir);
      return true;
    }
    const Op& op = ops[sd.pc];
    const bool flex = (sd.flags & flag::kFlexible) != 0;
    std::span<const std::byte> out;
    switch (sd.step) {
      case Step::kOp: {
        if (op.kind != OpKind::kEnd && !active(op, sd)) {
          sd.pc = op.kind == OpKind::kArr ? past_end(ops, sd.pc) : static_cast<uint8_t>(sd.pc + 1);
          return true;
        }
        uint32_t w = 0;
        const bool fixed = fixed_width(op.kind, &w);
        if ((sd.flags & flag::kPrefixOnly) && (!fixed || sd.depth > 0)) {
          sd.pc = kPcEnd;
          return true;
        }
        if (fixed) {
          const Got g = get(ctx, sd, dir, bytes, w, out);
          if (g != Got::kYes) return not_got(ctx, sd, dir, bytes, g);
          apply_fixed(ctx, st, dir, op.role, db::u8p(out), w);
          if (sd.pc != kPcEnd) ++sd.pc;
          return true;
        }
        switch (op.kind) {
          case OpKind::kEnd:
            if (sd.depth == 0) return mismatch(ctx, sd);
            if (--sd.counts[sd.depth - 1] > 0) {
              sd.pc = sd.pcs[sd.depth - 1];
            } else {
              --sd.depth;
              ++sd.pc;
            }
            return true;
          case OpKind::kTags:
            if (!flex || (sd.prog == Prog::kHeader && (sd.flags & flag::kHeaderV0))) {
              ++sd.pc;
              return true;
            }
            sd.step = Step::kTagCount;
            return true;
          default:
            sd.step = Step::kLength;
            return true;
        }
      }
      case Step::kLength: {
        int64_t len = 0;
        if (flex && op.kind != OpKind::kStr16) {
          const int r = varint(sd, bytes);
          if (r <= 0) return r < 0 ? mismatch(ctx, sd) : false;
          len = static_cast<int64_t>(sd.var) - 1;  // compact: length + 1, 0 for null
        } else {
          const uint32_t w = op.kind == OpKind::kStr || op.kind == OpKind::kStr16 ? 2 : 4;
          const Got g = get(ctx, sd, dir, bytes, w, out);
          if (g != Got::kYes) return not_got(ctx, sd, dir, bytes, g);
          const uint8_t* p = db::u8p(out);
          len = w == 2 ? static_cast<int16_t>(be16(p)) : static_cast<int32_t>(be32(p));
        }
        sd.step = Step::kOp;
        if (len > static_cast<int64_t>(sd.msg_left)) return mismatch(ctx, sd);
        switch (op.kind) {
          case OpKind::kArr:
            if (len <= 0) {
              sd.pc = past_end(ops, sd.pc);
              return true;
            }
            if (sd.depth == kMaxDepth) return mismatch(ctx, sd);
            sd.counts[sd.depth] = static_cast<uint32_t>(len);
            sd.pcs[sd.depth] = static_cast<uint8_t>(sd.pc + 1);
            ++sd.depth;
            ++sd.pc;
            return true;
          case OpKind::kBytes:
            sd.skip = len > 0 ? static_cast<uint32_t>(len) : 0;
            ++sd.pc;
            return true;
          case OpKind::kRecords:
            if (len > 0) {
              sd.rec_left = static_cast<uint32_t>(len);
              sd.record_bytes += static_cast<uint32_t>(len);
              sd.flags |= flag::kInRecords;
              sd.step = Step::kBatch;
            } else {
              ++sd.pc;
            }
            return true;
          default:  // strings
            if (len <= 0) {
              apply_string(sd, dir, op.role, {}, len < 0);
              ++sd.pc;
              return true;
            }
            sd.var = static_cast<uint32_t>(len);
            sd.step = Step::kString;
            return true;
        }
      }
      case Step::kString: {
        const uint32_t keep = std::min<uint32_t>(sd.var, kKeep);
        const Got g = get(ctx, sd, dir, bytes, keep, out);
        if (g != Got::kYes) return not_got(ctx, sd, dir, bytes, g);
        apply_string(sd, dir, op.role,
                     std::string_view(reinterpret_cast<const char*>(out.data()), out.size()), false);
        sd.skip = sd.var - keep;
        sd.step = Step::kOp;
        ++sd.pc;
        return true;
      }
      case Step::kTagCount:
      case Step::kTagKey:
      case Step::kTagSize: {
        const int r = varint(sd, bytes);
        if (r <= 0) return r < 0 ? mismatch(ctx, sd) : false;
        if (sd.step == Step::kTagCount) {
          sd.tags_left = sd.var;
          if (sd.tags_left > sd.msg_left) return mismatch(ctx, sd);
        } else if (sd.step == Step::kTagKey) {
          sd.step = Step::kTagSize;
          return true;
        } else {
          if (sd.var > sd.msg_left) return mismatch(ctx, sd);
          sd.skip = sd.var;
          --sd.tags_left;
        }
        if (sd.tags_left > 0) {
          sd.step = Step::kTagKey;
        } else {
          sd.step = Step::kOp;
          ++sd.pc;
        }
        return true;
      }
      case Step::kBatch: {
        if (sd.rec_left == 0) {
          sd.flags &= static_cast<uint16_t>(~flag::kInRecords);
          sd.step = Step::kOp;
          ++sd.pc;
          return true;
        }
        if (sd.rec_left < kBatchHead) {  // a cut batch at the end of a fetched record set
          sd.skip = sd.rec_left;
          return true;
        }
        const Got g = get(ctx, sd, dir, bytes, kBatchHead, out);
        if (g != Got::kYes) return not_got(ctx, sd, dir, bytes, g);
        sd.rec_left -= kBatchHead;
        const uint8_t* p = db::u8p(out);
        const auto size = static_cast<int32_t>(be32(p + 8));  // bytes after the length field
        const uint8_t magic = p[16];
        const int64_t rest = static_cast<int64_t>(size) + 12 - kBatchHead;
        if (size < 5 || rest > static_cast<int64_t>(sd.rec_left)) {
          sd.skip = sd.rec_left;  // cut (a fetch ends where max bytes did) or not a batch: not counted
        } else if (magic >= 2 && rest >= kBatchCountEnd - kBatchHead) {
          sd.var = static_cast<uint32_t>(rest);
          sd.step = Step::kBatchCount;
        } else {
          ++sd.records;  // message format v0/v1: one message (a compressed wrapper counts once)
          sd.skip = static_cast<uint32_t>(rest);
        }
        return true;
      }
      case Step::kBatchCount: {
        constexpr uint32_t kMore = kBatchCountEnd - kBatchHead;
        const Got g = get(ctx, sd, dir, bytes, kMore, out);
        if (g != Got::kYes) return not_got(ctx, sd, dir, bytes, g);
        sd.rec_left -= kMore;
        const uint32_t count = be32(db::u8p(out) + kMore - 4);
        sd.records = count > UINT32_MAX - sd.records ? UINT32_MAX : sd.records + count;
        sd.skip = sd.var - kMore;
        sd.step = Step::kBatch;
        return true;
      }
    }
    return mismatch(ctx, sd);
  }

  enum class Got : uint8_t { kYes, kWait, kMismatch, kNoMemory };

  // n bytes of the message, contiguous; n past the message's end is a layout mismatch.
  static Got get(FlowContext& ctx, Side& sd, Direction dir, std::span<const std::byte>& bytes, uint32_t n,
                 std::span<const std::byte>& out) {
    if (n > sd.msg_left) return Got::kMismatch;
    const Take t = ctx.take(dir, bytes, n, out);
    if (t == Take::kNeedMore) return Got::kWait;
    if (t == Take::kNoMemory) return Got::kNoMemory;
    sd.msg_left -= n;
    return Got::kYes;
  }

  // What step() returns when get() did not deliver.
  static bool not_got(FlowContext& ctx, Side& sd, Direction dir, std::span<const std::byte>& bytes, Got g) {
    if (g == Got::kMismatch) return mismatch(ctx, sd);
    if (g == Got::kNoMemory) return give_up(ctx, sd, dir, bytes);
    return false;
  }

  // Unsigned varint, a byte at a time: 1 done (sd.var), 0 needs more bytes, -1 malformed.
  static int varint(Side& sd, std::span<const std::byte>& bytes) {
    while (true) {
      if (sd.msg_left == 0 || sd.shift > 28) return -1;
      if (bytes.empty()) return 0;
      const auto b = static_cast<uint8_t>(bytes[0]);
      bytes = bytes.subspan(1);
      --sd.msg_left;
      if (sd.shift == 0) sd.var = 0;
      sd.var |= static_cast<uint32_t>(b & 0x7f) << sd.shift;
      if ((b & 0x80) == 0) {
        sd.shift = 0;
        return 1;
      }
      sd.shift = static_cast<uint8_t>(sd.shift + 7);
    }
  }

  // The layout does not fit the bytes (a field past the message's end, an absurd count): the rest of the
  // message is skipped by its length; the record keeps what was read. Counted.
  static bool mismatch(FlowContext& ctx, Side& sd) {
    if (sd.phase != Phase::kWalk) return true;
    ctx.count_decode_error();
    sd.phase = Phase::kSkip;
    sd.skip = 0;
    sd.flags &= static_cast<uint16_t>(~flag::kInRecords);
    return true;
  }

  // No carry buffer for a split field: the framing is lost.
  static bool give_up(FlowContext& ctx, Side& sd, Direction dir, std::span<const std::byte>& bytes) {
    lose_sync(ctx, sd, dir, bytes);
    return false;
  }

  void end_program(FlowContext& ctx, State& st, Direction dir) {
    Side& sd = st.side[index_of(dir)];
    if (sd.prog == Prog::kBody || sd.pc == kPcEnd) {
      sd.phase = Phase::kSkip;
      return;
    }
    // Header read: the body's layout by api key and version.
    sd.prog = Prog::kBody;
    sd.pc = 0;
    sd.step = Step::kOp;
    sd.depth = 0;
    const kafka::ApiLayout* l = kafka::api_layout(sd.api);
    const bool known = dir == kReq || (sd.flags & flag::kKnownApi);
    if (!known || l == nullptr || (dir == kReq ? l->request : l->response).empty()) {
      sd.phase = Phase::kSkip;  // no layout: header fields only
      return;
    }
    if (sd.version > l->max_version) {
      sd.flags |= flag::kUnknownVersion | flag::kPrefixOnly;
      ctx.count_decode_error();
      if (sd.m != nullptr) sd.m->fields.add_bool("unsupported_version", true);
    }
  }

  // ---------------------------------------------------------------- records

  void finish(FlowContext& ctx, State& st, Direction dir, uint64_t end, uint64_t ts, uint32_t flags) {
    Side& sd = st.side[index_of(dir)];
    Message* m = sd.m;
    if (dir == kReq) {
      // Remembered for the response, which carries no api key: front_request() names the oldest pending one,
      // the ring the recent ones (those answered out of order, acks-0 Produce requests).
      Inflight& e = st.ring[st.ring_next];
      e = Inflight{sd.corr, sd.api, static_cast<uint8_t>(std::min<uint16_t>(sd.version, 255)),
                   static_cast<uint8_t>((sd.flags & flag::kAcks0) != 0 && sd.api == kafka::kApiProduce)};
      st.ring_next = static_cast<uint8_t>((st.ring_next + 1) % kInflight);
    }
    if (m != nullptr) {
      m->flags |= flags;
      m->end_span(m->stream_end, end, ts);  // stream_end held the message's start until now
      add_totals(sd, dir);
    }
    sd.m = nullptr;
    const uint16_t fl = sd.flags;
    const uint32_t corr = sd.corr;
    const int16_t api = sd.api;
    const uint16_t version = sd.version;
    reset(sd, fl & flag::kPersistent);
    if (m == nullptr) return;
    if (dir == kReq) {
      m->aux = (static_cast<uint32_t>(api + 1) << 16) | std::min<uint16_t>(version, 255);
      if ((fl & flag::kAcks0) && api == kafka::kApiProduce) {
        ctx.emit_no_reply(m);  // acks 0: the broker sends nothing back
      } else {
        ctx.commit_request(m);
      }
      return;
    }
    if (fl & flag::kNoReply) {  // an acks-0 Produce answered anyway (librdkafka's mock cluster does)
      ++ctx.counters().interim[static_cast<size_t>(Protocol::kKafka)];
      ctx.discard(m);
      return;
    }
    ctx.complete_response_by_key(m, (fl & flag::kError) ? RecordStatus::kError : RecordStatus::kOk, corr);
  }

};

}  // namespace

namespace kafka {

std::unique_ptr<Decoder> make_decoder(const DecodeConfig& cfg) { return std::make_unique<KafkaDecoder>(cfg); }
SniffResult confirm(std::span<const std::byte> chunk, Transport t) { return KafkaDecoder::sniff(chunk, t); }

}  // namespace kafka

}  // namespace spanfeed
