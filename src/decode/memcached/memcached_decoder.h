// The memcached decoder class, internal to src/decode/memcached/: one worker's decoder for the text protocol
// (text.cc), the binary protocol (binary.cc) and both inside memcached's UDP frames (udp.cc); memcached.cc holds
// the entry points. Runs on a worker lcore; allocates only in the constructor (the UDP datagram stash).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "spanfeed/decoder.h"

namespace spanfeed::memcached {

inline constexpr Direction kReq = Direction::kClientToServer;
inline constexpr Direction kResp = Direction::kServerToClient;

enum class Phase : uint8_t {
  kLine,    // text: next line (a command / response line)
  kData,    // text: `remaining` bytes of a data block (+ CRLF) to skip
  kHeader,  // binary: the 24-byte header
  kHead,    // binary: extras + key (`head` bytes)
  kValue,   // binary: `remaining` value bytes (kept when an error message, else skipped)
};

enum class Mode : uint8_t { kUnset, kText, kBinary };

// One direction's message in progress (text or binary; a flow is one or the other, a UDP datagram too).
struct Side {
  Message* msg = nullptr;
  uint64_t start = 0;
  uint64_t remaining = 0;  // text: data block bytes + CRLF left; binary: value bytes left
  Resync resync;           // framing lost (a gap, garbage): skip to the next command / reply line or header
  uint64_t value_bytes = 0;
  uint32_t values = 0;      // response: VALUE/VA items, binary: hits / STAT entries
  // binary: the header being decoded
  uint32_t opaque = 0;
  uint32_t head = 0;        // extras + key bytes
  uint16_t status = 0;
  uint16_t key_len = 0;
  uint8_t extras_len = 0;
  uint8_t opcode = 0;
  uint32_t value_len = 0;   // binary: value bytes of the packet (body - extras - key)
  Phase phase = Phase::kLine;
  bool in_message = false;
  bool multi = false;       // text: VALUE/STAT lines until END; binary: STAT responses until the empty key
  bool done_after_data = false;  // text: VA / storage command: the message ends with the data block
  bool noreply = false;     // request: no response will come
  bool error = false;       // response: ERROR / CLIENT_ERROR / SERVER_ERROR / binary status != 0
  bool lost_item = false;   // text response: a VALUE line's length no server sends: its data is skipped up to END
                            // (counted in resync.skipped)
  bool keep_value = false;  // binary: the value is an error message: take it
};

// One out-of-order UDP datagram kept until the ones before it arrive.
struct Stashed {
  uint16_t seq;
  uint16_t len;
  uint32_t buf;  // index in the decoder's stash pool
};
inline constexpr size_t kStashPerFlow = 6;  // out-of-order datagrams one response may keep waiting

// The UDP response being reassembled (one per flow: memcached clients wait for each answer).
struct UdpRx {
  uint64_t first_ts = 0;
  uint64_t payload_bytes = 0;  // payload fed to the parser (frame headers excluded)
  uint16_t rid = 0;            // request id of the frame header
  uint16_t count = 0;          // datagrams it announced
  uint16_t next = 0;           // next sequence number to feed
  uint16_t received = 0;       // datagrams fed or stashed
  uint16_t missing = 0;        // datagrams given up for lost
  uint16_t last_rid = 0;       // last response finished: its stragglers are ignored
  uint8_t nstash = 0;
  bool active = false;
  bool broken = false;         // a datagram was lost: the rest is counted, not parsed
  bool any_done = false;       // a response message was completed for `rid`
  bool has_last = false;
  Stashed stash[kStashPerFlow];
};

struct State {
  Side side[2];
  UdpRx udp;
  Mode mode = Mode::kUnset;
  Mode udp_mode = Mode::kUnset;  // UDP: the content of the response being reassembled
  bool in_sync = false;  // text requests: a known command was decoded since the start / the last gap
  bool text_seen = false;  // a text command was decoded on the flow (until then it may turn out binary)
  // Text over TCP: the client side lost bytes outside a data block (whole requests may be in the hole,
  // their replies still to come, ahead of those of the requests after it). `before_hole`: requests made
  // before it still unanswered, whose replies pair as usual; until the requests pending drain, later
  // replies are checked against the request they would pair with (text_reply_fits).
  bool after_hole = false;
  uint32_t before_hole = 0;
};
static_assert(sizeof(State) <= kDecoderStateBytes);

// Message::aux of binary requests: the opcode, and whether it is quiet (its reply may never come).
inline constexpr uint32_t kAuxBinary = 0x100;
inline constexpr uint32_t kAuxQuiet = 0x200;
inline constexpr uint32_t kAuxQuietGet = 0x400;  // a quiet get: no reply means a miss
// A quiet request pending when the client side lost bytes: the request that ended its silence may be among
// them, so the response that implies its outcome may come later than the one that did (flagged gap).
inline constexpr uint32_t kAuxReqGap = 0x800;

class MemcachedDecoder final : public Decoder {
 public:
  explicit MemcachedDecoder(const DecodeConfig& cfg);

  Protocol protocol() const override { return Protocol::kMemcached; }
  static SniffResult sniff(std::span<const std::byte> chunk, Transport t);

  void open(FlowContext& ctx, uint64_t ts) override;
  void data(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts) override;
  void gap(FlowContext& ctx, Direction dir, uint64_t missing, uint64_t ts) override;
  void fin(FlowContext& ctx, Direction dir, uint64_t ts) override;
  void close(FlowContext& ctx, uint64_t ts) override;

 private:
  // memcached.cc: the message end shared by both encodings.
  void finish(FlowContext& ctx, Side& sd, Direction dir, uint64_t end, uint64_t ts, uint32_t flags);

  // text.cc
  void text_data(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts);
  void request_line(FlowContext& ctx, Side& sd, std::span<const std::byte>& bytes, uint64_t ts);
  void response_line(FlowContext& ctx, Side& sd, std::span<const std::byte>& bytes, uint64_t ts);
  void text_finish_response(FlowContext& ctx, Side& done, Message* m);

  // binary.cc
  void binary_data(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts);
  // `end`: the stream position just past the bytes read (where a packet without a value ends).
  bool binary_header(FlowContext& ctx, Side& sd, Direction dir, const uint8_t* h, uint64_t end, uint64_t ts);
  void binary_head(FlowContext& ctx, Side& sd, Direction dir, const uint8_t* p, uint64_t end, uint64_t ts);
  void binary_end(FlowContext& ctx, Side& sd, Direction dir, std::span<const std::byte> value, uint64_t end,
                  uint64_t ts, uint32_t flags);
  void binary_lose_sync(FlowContext& ctx, Side& sd, Direction dir, std::span<const std::byte>& bytes, uint64_t ts);
  // The message in progress in `dir` ends here (cut by a gap, the flow's end, a lost datagram).
  void end_in_progress(FlowContext& ctx, Direction dir, bool binary, uint64_t end, uint64_t ts, uint32_t flags);
  void resolve_quiet(FlowContext& ctx, uint32_t opaque, uint8_t opcode, uint64_t ts, uint32_t extra_flags);

  // udp.cc
  void udp_datagram(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts);
  void udp_feed(FlowContext& ctx, std::span<const std::byte> payload, uint64_t ts);
  void udp_drain(FlowContext& ctx, uint64_t ts);
  void udp_flush(FlowContext& ctx, uint64_t ts);
  static void udp_late(UdpRx& u, uint16_t seq);
  void udp_hole(FlowContext& ctx, uint16_t lost, uint64_t ts);
  void udp_cut(FlowContext& ctx, uint64_t ts);
  void udp_end(FlowContext& ctx, uint64_t ts);
  void udp_release(UdpRx& u);
  void udp_response_fields(FlowContext& ctx, Message* m);

  uint32_t key_ = 0;             // match key of the message being decoded (UDP request id)
  uint32_t responses_done_ = 0;  // responses finished (UDP: did a datagram complete one?)
  bool line_cut_ = false;        // UDP: the request line being ended was cut by the capture (flag truncated)
  uint64_t udp_timeout_ns_;
  // UDP stash pool: fixed buffers for out-of-order datagrams (bounded bytes per worker).
  static constexpr size_t kStashBufBytes = 1500;  // memcached sends at most 1400-byte datagrams (UDP_MAX_PAYLOAD_SIZE)
  uint32_t stash_count_;
  std::unique_ptr<std::byte[]> stash_;
  std::unique_ptr<uint32_t[]> stash_free_;
  uint32_t stash_free_n_ = 0;
};

// Opcode and status names of the binary protocol (binary.cc).
std::string_view opcode_name(uint8_t op, char (&buf)[8]);
std::string_view status_name(uint16_t st, char (&buf)[8]);
bool binary_quiet(uint8_t op);
bool binary_quiet_get(uint8_t op);
bool plausible_binary(const uint8_t* h, size_t n, bool response);
// A text reply whose first word is `reply` can answer the text command `command` (text.cc).
bool text_reply_fits(std::string_view command, std::string_view reply);
// First bytes of a text request / reply (text.cc).
bool text_request_start(std::span<const std::byte> chunk);
bool text_response_start(std::span<const std::byte> chunk);

inline uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t be32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 | p[3];
}

}  // namespace spanfeed::memcached
