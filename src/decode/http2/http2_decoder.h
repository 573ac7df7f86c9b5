// The HTTP/2 (h2c) decoder: frame parsing per direction, HPACK through the connection pool's nghttp2
// inflaters, one record per stream (gRPC calls as `grpc`). Folder-local; its members are defined in
// http2.cc (entry points, lifecycle), frames.cc (framing) and streams.cc (headers, records, gRPC).
// Runs on a worker lcore; allocates only in the constructor (the pool) and inside nghttp2's per-connection budget.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "conn_pool.h"

#include "spanfeed/decoder.h"

namespace spanfeed::http2 {

inline constexpr Direction kReq = Direction::kClientToServer;
inline constexpr Direction kResp = Direction::kServerToClient;

inline constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
inline constexpr uint32_t kFrameHeader = 9;
inline constexpr uint32_t kDefaultMaxFrame = 16384;      // SETTINGS_MAX_FRAME_SIZE initial value
inline constexpr uint32_t kUnknownMaxFrame = (1u << 24) - 1;  // mid-connection: the settings were not seen
inline constexpr uint32_t kControlMax = 256;  // control frame bytes read (SETTINGS: 42 entries)

enum FrameType : uint8_t {
  kData = 0, kHeaders = 1, kPriority = 2, kRstStream = 3, kSettings = 4, kPushPromise = 5, kPing = 6,
  kGoaway = 7, kWindowUpdate = 8, kContinuation = 9,
};
namespace fflag {
inline constexpr uint8_t kEndStream = 0x1;  // DATA, HEADERS; ACK on SETTINGS / PING
inline constexpr uint8_t kEndHeaders = 0x4;
inline constexpr uint8_t kPadded = 0x8;
inline constexpr uint8_t kPriority = 0x20;
}  // namespace fflag

enum class Phase : uint8_t {
  kPreface,  // client: the 24-byte connection preface
  kHeader,   // a 9-byte frame header
  kPayload,  // DATA / HEADERS / PUSH_PROMISE / CONTINUATION payload, streamed
  kControl,  // a control frame's first bytes (take)
  kSkip,     // the rest of a frame not parsed
  kLost,     // framing lost (a gap across frames, a bad header): wait for a chunk that starts with a frame
};

// One direction's framing (part of the per-flow state).
struct DirState {
  uint32_t len = 0;        // current frame's payload length
  uint32_t sid = 0;        // its stream id
  uint32_t left = 0;       // payload bytes still to come
  uint32_t promised = 0;   // PUSH_PROMISE: the promised stream id being read
  uint32_t block_sid = 0;  // stream of the header block in progress (CONTINUATION expected), 0: none
  uint32_t max_frame = kUnknownMaxFrame;  // the receiver's SETTINGS_MAX_FRAME_SIZE
  Resync resync;           // framing lost (Phase::kLost): the bytes skipped until a frame starts again
  uint8_t type = 0;
  uint8_t flags = 0;
  uint8_t pad = 0;         // padding length of the frame (read from its first byte)
  uint8_t prefix = 0;      // bytes before the content: pad length, priority (5), promised id (4)
  uint8_t prefix_got = 0;
  uint8_t preface_got = 0;
  Phase phase = Phase::kHeader;
  bool block_end_stream = false;  // the HEADERS that opened the block had END_STREAM
  bool block_push = false;        // the block is a PUSH_PROMISE's (the promised stream's request)
  bool block_skip = false;        // the block's headers are not decoded (HPACK lost or no stream)
  bool hpack_lost = false;        // this direction's HPACK state is gone: later blocks are undecodable
  bool gap_lost = false;          // ... because a gap took bytes outside a DATA payload (so may it a stream's frames)
};

struct State {
  DirState d[2];
  // The last streams finished: frames that still come for them (a server's trailers after the client's
  // RST_STREAM) make no second record. Their header blocks are still inflated (the table must stay in step).
  uint32_t closed[4] = {};
  uint8_t closed_next = 0;
  uint32_t conn = ConnPool::kNone;  // pool context; kNone: untracked (pool full)
  bool upgraded = false;            // HTTP/1.1 Upgrade: h2c
};
static_assert(sizeof(State) <= kDecoderStateBytes, "http2 state must fit the per-flow slot");

class Http2Decoder final : public Decoder {
 public:
  Http2Decoder(const DecodeConfig& cfg, Protocol as);

  Protocol protocol() const override { return as_; }
  bool matches_by_key() const override { return true; }  // by stream id
  static SniffResult sniff(std::span<const std::byte> chunk, Transport t);

  void open(FlowContext& ctx, uint64_t ts) override;
  void upgraded(FlowContext& ctx, const Message* origin, uint64_t ts) override;
  void data(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts) override;
  void gap(FlowContext& ctx, Direction dir, uint64_t missing, uint64_t ts) override;
  void fin(FlowContext& ctx, Direction dir, uint64_t ts) override;
  void close(FlowContext& ctx, uint64_t ts) override;

 private:
  // frames.cc
  void preface(FlowContext& ctx, State& st, std::span<const std::byte>& bytes);
  void frame_header(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes, uint64_t ts);
  void payload(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes, uint64_t ts);
  void control(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes, uint64_t ts);
  void frame_end(FlowContext& ctx, State& st, Direction dir, uint64_t ts);
  void lose_framing(FlowContext& ctx, State& st, Direction dir, bool count);
  static bool plausible_frame(const uint8_t* p, size_t n, uint32_t max_frame);

  // streams.cc
  Stream* find(State& st, uint32_t sid);
  Stream* open_stream(FlowContext& ctx, State& st, uint32_t sid, uint64_t ts);
  void block_start(FlowContext& ctx, State& st, Direction dir, uint32_t sid, uint64_t ts);
  void block_bytes(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte> in, bool final);
  void block_end(FlowContext& ctx, State& st, Direction dir, uint64_t ts);
  void header(Stream& s, Direction dir, bool trailer, std::string_view name, std::string_view value);
  void data_bytes(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte> in);
  void end_stream(FlowContext& ctx, State& st, Direction dir, uint32_t sid, uint64_t ts);
  // Makes the stream's record (or commits its request) and empties its slot; `closed`: remember its id so
  // that late frames for it make no second record (not for an eviction: its response is still to come).
  void finish(FlowContext& ctx, State& st, Stream& s, uint64_t ts, uint32_t flags, bool closed = true);
  void mark_undecodable(FlowContext& ctx, Stream& s);

  Protocol as_;
  bool redact_;
  uint32_t header_table_max_;
  ConnPool pool_;
};

}  // namespace spanfeed::http2
