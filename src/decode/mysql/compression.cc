// MySQL decoder, compressed protocol: 7-byte compressed-packet framing, raw or zlib payloads inflated into
// the packet layer. Runs on a worker lcore; allocates nothing (inflate contexts are leased, made at start-up).
#include <zlib.h>

#include <algorithm>

#include "mysql_decoder.h"

namespace spanfeed::mysql {

void MysqlDecoder::compressed(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes,
                              uint64_t ts) {
  Side& sd = st.side[index_of(dir)];
  while (!bytes.empty() && !sd.resync.lost) {
    if (sd.comp_left == 0) {
      if (!ctx.has_carry(dir)) sd.comp_start = ctx.offset(dir, bytes);
      std::span<const std::byte> out;
      const Take t = ctx.take(dir, bytes, 7, out);
      if (t == Take::kNeedMore) return;
      if (t == Take::kNoMemory) {
        lose_sync(ctx, st, dir, bytes);
        return;
      }
      const uint8_t* h = db::u8p(out);
      sd.comp_left = le24(h);
      sd.comp_raw = le24(h + 4) == 0;
      release_z(sd);
      if (!sd.comp_raw) {
        const uint32_t z = inflaters_.lease();
        if (z != InflatePool::kNone) sd.zctx = static_cast<uint8_t>(z);
        if (sd.zctx == kNoZctx) {  // no inflate context free: this packet cannot be decoded
          ctx.count_decode_error();
          lose_sync(ctx, st, dir, bytes);
          return;
        }
      }
      continue;
    }
    const size_t n = std::min<size_t>(sd.comp_left, bytes.size());
    std::span<const std::byte> in = bytes.first(n);
    bytes = bytes.subspan(n);
    sd.comp_left -= static_cast<uint32_t>(n);
    const uint64_t comp_end = ctx.offset(dir, bytes) + sd.comp_left;
    if (sd.zctx == kNoZctx && !sd.comp_raw) continue;  // bytes after the deflate stream ended: ignored
    if (sd.comp_raw) {
      ctx.content(dir, in, false);  // the rules see the payload, not the compressed framing
      feed(ctx, st, dir, in, ts, sd.comp_start, false, comp_end);
      continue;
    }
    z_stream& z = inflaters_.stream(sd.zctx);
    const std::span<std::byte> block = inflaters_.out();
    z.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    bool done = false;
    while (!done) {
      z.next_out = reinterpret_cast<Bytef*>(block.data());
      z.avail_out = static_cast<uInt>(block.size());
      const int rc = inflate(&z, Z_NO_FLUSH);
      const size_t produced = block.size() - z.avail_out;
      if (produced > 0) {
        ctx.content(dir, std::span<const std::byte>(block.data(), produced), false);  // what the rules scan
        feed(ctx, st, dir, std::span<const std::byte>(block.data(), produced), ts, sd.comp_start, false, comp_end);
        if (sd.resync.lost) return;
      }
      if (rc == Z_STREAM_END) {
        release_z(sd);
        done = true;
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        ctx.count_decode_error();  // corrupt deflate data: resync on the next command
        lose_sync(ctx, st, dir, bytes);
        return;
      } else if (z.avail_in == 0 && z.avail_out != 0) {
        done = true;  // needs the next chunk
      }
    }
    if (sd.comp_left == 0 && sd.zctx != kNoZctx) {
      release_z(sd);
      ctx.count_decode_error();  // the packet ended before its deflate stream
      lose_sync(ctx, st, dir, bytes);
      return;
    }
  }
}

void MysqlDecoder::lose_sync(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes) {
  Side& sd = st.side[index_of(dir)];
  if (dir == kReq) {
    if (sd.msg != nullptr) ctx.discard(sd.msg);
    sd.msg = nullptr;
  } else {
    cut_response(ctx, st);
  }
  release_z(sd);
  reset_side(sd);
  sd.resync.lose(bytes.size());
  bytes = {};
}

}  // namespace spanfeed::mysql
