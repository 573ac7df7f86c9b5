// MySQL client/server protocol decoder: handshake/login, commands, result sets, OK/EOF/ERR, prepared statements,
// 16 MiB continuation packets and the zlib compressed protocol; FIFO matching, resync on the next client command.
// This file: the Decoder entry points, detection and resync (the rest: handshake.cc, compression.cc, commands.cc,
// responses.cc). Runs on a worker lcore. Allocates only in the constructor (statement table, inflate contexts).
#include <zlib.h>

#include "decode/inflate.h"

#include <algorithm>
#include <cstring>

#include "mysql_decoder.h"
#include "mysql.h"

namespace spanfeed::mysql {

MysqlDecoder::MysqlDecoder(const DecodeConfig& cfg)
    : redact_(cfg.redact_secrets),
      stmts_(kStmtEntries),
      inflaters_(kInflateContexts, InflatePool::Format::kZlib, kInflateOut) {}

MysqlDecoder::~MysqlDecoder() = default;

SniffResult MysqlDecoder::sniff(std::span<const std::byte> chunk, Transport t) {
  if (t != Transport::kTcp) return SniffResult::kNo;
  const uint8_t* p = db::u8p(chunk);
  const size_t n = chunk.size();
  if (looks_like_greeting(p, n) && le24(p) + 4 == n) return SniffResult::kResponse;
  if (n >= 6 && le24(p) + 4 == n && p[3] == 0 && (p[4] == kComQuery || p[4] == kComStmtPrepare) &&
      starts_with_sql_keyword(p + 5, n - 5))
    return SniffResult::kRequest;
  // Mid-stream: a connection pool's keep-alive COM_PING, alone in its segment.
  if (n == 5 && le24(p) == 1 && p[3] == 0 && p[4] == kComPing) return SniffResult::kRequest;
  // The compressed protocol (a packet sent uncompressed: length, sequence 0, uncompressed length 0) carrying
  // a statement as above.
  if (n >= 13 && le24(p) + 7 == n && p[3] == 0 && le24(p + 4) == 0 && le24(p + 7) + 11 == n && p[10] == 0 &&
      (p[11] == kComQuery || p[11] == kComStmtPrepare) && starts_with_sql_keyword(p + 12, n - 12))
    return SniffResult::kRequest;
  return SniffResult::kNo;
}

void MysqlDecoder::open(FlowContext& ctx, uint64_t /*ts*/) {
  State& st = ctx.state<State>();
  st = State{};
  st.gen = db::next_gen(gen_);
}

void MysqlDecoder::data(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts) {
  State& st = ctx.state<State>();
  Side& sd = st.side[index_of(dir)];
  while (!bytes.empty()) {
    switch (st.mode) {
      case Mode::kEncrypted:
        ctx.counters().undecoded_bytes += bytes.size();
        return;
      case Mode::kUnknown:
        if (!detect(ctx, st, dir, bytes)) return;
        break;
      case Mode::kHandshake:
        if (!handshake(ctx, st, dir, bytes, ts)) return;
        break;
      case Mode::kCommand:
        if (sd.resync.lost && !resync(ctx, st, dir, bytes)) return;
        if (st.compressed) {
          compressed(ctx, st, dir, bytes, ts);
        } else {
          const uint64_t off = ctx.offset(dir, bytes);
          feed(ctx, st, dir, bytes, ts, off, true, 0);
          bytes = {};
        }
        return;
    }
  }
}

void MysqlDecoder::gap(FlowContext& ctx, Direction dir, uint64_t /*missing*/, uint64_t ts) {
  State& st = ctx.state<State>();
  if (st.mode == Mode::kEncrypted) return;
  Side& sd = st.side[index_of(dir)];
  if (sd.msg != nullptr) sd.msg->flags |= record_flag::kGap;
  if (dir == kReq) {
    if (sd.msg != nullptr && st.mode == Mode::kCommand && sd.seq == 0) {
      // A command cut by the gap: what arrived of it is the request (its answer may still come).
      sd.msg->flags |= record_flag::kTruncated;
      end_request_packet(ctx, st, ctx.offset(kReq, {}), ts);
    } else if (sd.msg != nullptr && st.mode != Mode::kHandshake) {
      ctx.discard(sd.msg);
      sd.msg = nullptr;
    }
  } else {
    cut_response(ctx, st);
  }
  release_z(sd);
  reset_side(sd);
  sd.resync.lose();
  if (st.mode == Mode::kHandshake || st.mode == Mode::kUnknown) {
    // the login exchange cannot be followed any more: wait for a command
    Side& c = st.side[0];
    if (c.msg != nullptr) {
      ctx.discard(c.msg);
      c.msg = nullptr;
    }
    st.mode = Mode::kUnknown;
  }
}

void MysqlDecoder::fin(FlowContext& ctx, Direction dir, uint64_t ts) {
  State& st = ctx.state<State>();
  if (dir == kResp) end_response(ctx, st, ts);
}

void MysqlDecoder::close(FlowContext& ctx, uint64_t ts) {
  State& st = ctx.state<State>();
  Side& r = st.side[1];
  if (r.msg == nullptr && st.mode == Mode::kCommand && !r.resync.lost && (r.hdr_n > 0 || (r.in_payload && r.lpos == 0)))
    ctx.count_partial_at_close();  // a response cut inside its first packet header: its request times out
  end_response(ctx, st, ts);
  close_request(ctx, st, ts);
  for (Side& sd : st.side) {
    if (sd.msg != nullptr) {
      ctx.discard(sd.msg);
      sd.msg = nullptr;
    }
    release_z(sd);
  }
}

// ---------------------------------------------------------------- per-side bookkeeping

void MysqlDecoder::reset_side(Side& sd) {
  Message* m = sd.msg;
  const uint8_t z = sd.zctx;
  sd = Side{};
  sd.msg = m;
  sd.zctx = z;
}

void MysqlDecoder::release_z(Side& sd) {
  if (sd.zctx != kNoZctx) inflaters_.release(sd.zctx);
  sd.zctx = kNoZctx;
}

// ---------------------------------------------------------------- detection / resync

// Mode::kUnknown: a greeting starts the handshake, a client command the command phase.
bool MysqlDecoder::detect(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes) {
  const uint8_t* p = db::u8p(bytes);
  Side& sd = st.side[index_of(dir)];
  if (dir == kResp && !ctx.has_carry(kResp) && looks_like_greeting(p, bytes.size())) {
    st.mode = Mode::kHandshake;
    for (Side& s : st.side) {
      reset_side(s);
      s.resync.lost = false;
    }
    return true;
  }
  if (dir == kReq && (looks_like_command(p, bytes.size()) || looks_like_compressed_command(p, bytes.size()))) {
    st.mode = Mode::kCommand;
    return true;  // resync() takes it from here
  }
  sd.resync.add(bytes.size());
  bytes = {};
  return false;
}

// Command phase, framing lost: the client side waits for a chunk starting with a command; the server side
// waits for that command to be seen.
bool MysqlDecoder::resync(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes) {
  Side& sd = st.side[index_of(dir)];
  if (dir == kResp) {
    sd.resync.add(bytes.size());
    bytes = {};
    return false;
  }
  const uint8_t* p = db::u8p(bytes);
  bool comp = false;
  if (looks_like_compressed_command(p, bytes.size())) {
    comp = true;
  } else if (!looks_like_command(p, bytes.size())) {
    sd.resync.add(bytes.size());
    bytes = {};
    return false;
  }
  ctx.count_resync(uint64_t{sd.resync.skipped} + st.side[1].resync.skipped);
  st.compressed = comp;
  drop_response(ctx, st);
  for (Side& s : st.side) {
    release_z(s);
    reset_side(s);
    s.resync.lost = false;
  }
  return true;
}

std::unique_ptr<Decoder> make_decoder(const DecodeConfig& cfg) { return std::make_unique<MysqlDecoder>(cfg); }
SniffResult confirm(std::span<const std::byte> chunk, Transport t) { return MysqlDecoder::sniff(chunk, t); }

}  // namespace spanfeed::mysql
