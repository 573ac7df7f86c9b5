// Protocol decoders and the per-worker RecordBuilder: dispatch by port/sniff, per-flow state, request/response matching.
// Runs on one worker lcore (no locks); allocates only in constructors, never per packet or per flow.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "spanfeed/flow_table.h"
#include "spanfeed/protocol.h"
#include "spanfeed/record.h"
#include "spanfeed/tcp_reassembly.h"

namespace spanfeed {

// One "this port speaks this protocol" entry of the dispatch map.
struct PortBinding {
  Protocol protocol;
  Transport transport;
  uint16_t port;
};

// Every registered protocol's default ports (its descriptor's tcp_ports / udp_ports).
std::vector<PortBinding> default_port_bindings();

inline constexpr uint64_t kNsPerUs = 1000;

struct DecodeConfig {
  uint32_t worker_id = 0;               // high byte of every record id
  uint32_t flow_capacity = 65536;       // = FlowTableConfig::capacity (Flow::slot < this)
  std::string recording_id;             // added to every record when not empty
  bool tunnel_in_records = false;       // decap.records: the flow's encapsulation in each record
  std::vector<PortBinding> ports = default_port_bindings();
  bool sniff_unknown_ports = true;      // try the decoders' payload sniffs on unmapped ports
  uint32_t sniff_max_chunks = 4;        // data chunks per flow to sniff before giving up (unknown)
  uint64_t response_timeout_ns = 30 * kNsPerSec;  // request without response for this long: "timeout"
  uint32_t max_pending_per_flow = 1024;  // requests waiting for a response per flow; more: oldest -> timeout
  uint32_t message_pool_size = 16384;   // messages (pending + in progress) per worker, ~1.7 KiB each, taken as used
  uint32_t carry_bytes = 16384;         // per-direction buffer for a line / DNS-TCP message split over chunks: the cap
  uint32_t carry_buffer_count = 1024;   // such buffers per worker (taken only while a message is split)
  uint32_t timeout_budget = 16;         // pending requests timed out per on_data call at most (rest: advance_time)
  bool redact_secrets = true;           // HTTP Authorization/Cookie/Set-Cookie, Redis AUTH: "<redacted>"
  std::vector<ProtocolOptionSetting> options;  // decode.<protocol>.<option>: see each descriptor

  // A protocol's own option: set in `options`, else its descriptor's default.
  uint64_t option(Protocol p, std::string_view name) const { return protocol_option(options, p, name); }
};

// Empty when usable, else the start-up error message.
std::string validate(const DecodeConfig& cfg);

// How a flow got (or did not get) a decoder. Each flow that saw data ends in
// exactly one of these (flows closed before any payload: kNoData).
enum class DetectOutcome : uint8_t {
  kByPort,     // server port in the map (either endpoint)
  kBySniff,    // payload matched a decoder's sniff
  kNoDecoder,  // port mapped to a protocol whose decoder was not registered (RecordBuilder::register_decoder)
  kUnknown,    // no port match and no sniff within sniff_max_chunks: not decoded (HTTP/2, TLS, ...)
  kNoData,     // closed before any payload
  kCount,
};
inline constexpr size_t kDetectOutcomeCount = static_cast<size_t>(DetectOutcome::kCount);
std::string_view to_string(DetectOutcome o);

// Why a request ended as a "timeout" record.
enum class TimeoutCause : uint8_t {
  kExpired,   // no response within response_timeout_ns (advance_time / on_data)
  kOverflow,  // max_pending_per_flow reached: the oldest pending request was flushed
  kGap,       // the response direction lost bytes: its pending requests' responses are gone
  kClose,     // the flow closed (FIN/RST/idle/evicted/shutdown) with requests pending
  kCount,
};
inline constexpr size_t kTimeoutCauseCount = static_cast<size_t>(TimeoutCause::kCount);
std::string_view to_string(TimeoutCause c);

// The decoders' scalar counters, declared once (include/spanfeed/counter_list.h):
// the fields of DecodeCounters, the keys of a worker's "records" summary
// object, and /metrics families summed over the workers (no labels).
#define SPANFEED_DECODE_COUNTERS(X) \
  X(unmatched, kCounter, "", \
    "Responses without a request (also in `roundtrips_total{status=\"unmatched\"}`).") \
  X(responses_of_evicted, kCounter, "responses_of_evicted_total", \
    "Responses to requests the per-flow pending queue had already evicted " \
    "(`request_timeouts_total{cause=\"overflow\"}`): they make no record (the request's timeout record " \
    "stands for the exchange) and the responses after them still pair with their own requests (in-order " \
    "protocols: all but DNS and MongoDB, which pair by id). Non-zero: clients pipelining more than 1,024 " \
    "requests (`max_pending_per_flow`) on one connection. Responses = matched + unmatched + this.") \
  X(unmatched_by_ack, kCounter, "decode_responses_before_request_total", \
    "Responses whose ACK shows the server had not received the first byte of the request they would " \
    "pair with when it sent them: they answer an earlier request the capture lost (or one a gap flushed), " \
    "so they are `unmatched` and that request waits for its own. Part of `unmatched`.") \
  X(reordered_pairs, kCounter, "decode_reordered_pairs_total", \
    "Datagram responses (DNS, memcached over UDP) captured before their own request, then paired with it " \
    "when it came within 10 ms: the mirror delivered the two out of order. Their records are flagged " \
    "`reordered` and have no latency. Rising on a fast local server: the SPAN's two directions are " \
    "merged with some skew.") \
  X(records_emitted, kCounter, "", \
    "Records handed to the sink: the sum of `roundtrips_total`.") \
  X(pending_now, kGauge, "decode_requests_pending", \
    "Requests waiting for their response now.") \
  X(pending_overflow, kCounter, "", \
    "Requests flushed because a flow had 64 pending (also `request_timeouts_total{cause=\"overflow\"}`).") \
  X(message_pool_exhausted, kCounter, "decode_message_pool_exhausted_total", \
    "Messages that could not be tracked because the worker's message pool was empty: a request was " \
    "lost or a response left unmatched. Non-zero: more requests in flight than the pool holds.") \
  X(carry_overflow, kCounter, "decode_carry_overflow_total", \
    "Lines or message headers longer than the carry buffer: cut, the rest skipped (the record misses fields).") \
  X(carry_pool_exhausted, kCounter, "decode_carry_pool_exhausted_total", \
    "Lines split across packets that found no free carry buffer: the line was cut.") \
  X(field_truncated, kCounter, "decode_fields_truncated_total", \
    "Messages whose field space was full: their values were cut.") \
  X(gaps, kCounter, "decode_gaps_total", \
    "Stream gaps (capture loss) the decoders heard.") \
  X(gap_bytes, kCounter, "decode_gap_bytes_total", \
    "Bytes missing in those gaps.") \
  X(gaps_absorbed, kCounter, "decode_gaps_absorbed_total", \
    "Gaps that fell inside a body or bulk value: skipped by count, the message still decoded and " \
    "flagged `gap`.") \
  X(resyncs, kCounter, "decode_resyncs_total", \
    "Times a decoder found a message boundary again after a gap or bytes it could not parse (a refused " \
    "Redis bulk length, an absurd memcached value length...). Follows `reassembly_gaps_total` and " \
    "`decode_errors_total`.") \
  X(resync_skipped_bytes, kCounter, "decode_resync_skipped_bytes_total", \
    "Bytes decoders skipped while looking for the next message boundary: in no record.") \
  X(partial_at_close, kCounter, "partial_at_close_total", \
    "Flows that ended inside a message's first bytes (start line, header, length prefix): too little to " \
    "make a record of. Some is normal (connections cut mid-request); a rising rate: clients aborting, or " \
    "a capture cutting streams (short snaplen, loss at the end of flows).") \
  X(undecoded_bytes, kCounter, "decode_undecoded_bytes_total", \
    "Payload bytes of flows without a decoder (unknown protocol, no decoder, before detection).") \
  X(encrypted_flows, kCounter, "decode_encrypted_flows_total", \
    "Flows that switched to TLS (MySQL/PostgreSQL SSLRequest accepted): the rest is not decoded.") \
  X(flows_opened, kCounter, "", \
    "Flows the decoders heard of: the sum of `flow_detection_total` plus `flows_undetected_now`.") \
  X(flows_undetected_now, kGauge, "decode_flows_undetected", \
    "Open flows whose protocol is not known yet (payload still being sniffed, or no data yet).") \
  X(h2_streams_undecodable, kCounter, "decode_http2_streams_undecodable_total", \
    "HTTP/2 and gRPC streams whose headers could not be decoded because the connection's HPACK state was " \
    "lost (a gap, a header block that failed, a capture that starts mid-connection and refers to dynamic " \
    "table entries it never saw): recorded flagged `undecodable`, their fields left out, never guessed.") \
  X(h2_connections_untracked, kCounter, "decode_http2_connections_untracked_total", \
    "HTTP/2 connections that found no free connection context (HPACK tables, stream table) in the worker's " \
    "pool (`decode.http2.connections`): their bytes are counted as undecoded, no records.") \
  X(h2_streams_evicted, kCounter, "decode_http2_streams_evicted_total", \
    "HTTP/2 streams that left the table early because their connection had more open streams than it " \
    "holds (`decode.http2.max_streams`): the request still pairs with its response; its body bytes after " \
    "that are not counted, and one not yet complete is flagged `truncated`.") \
  X(h2_hpack_capped, kCounter, "decode_http2_hpack_capped_total", \
    "HPACK inflaters stopped by the per-connection memory cap (`decode.http2.hpack_memory_bytes`) or by a " \
    "table size beyond `decode.http2.header_table_bytes`: that direction's later header blocks are undecodable.")

// Per-worker decoding counters, bumped by the worker only; the control core
// reads the copy its job publishes (Job::publish).
// Ledger (checked by the tests):
//   sum(requests) == sum(matched) + sum(timeouts) + pending_now
//   sum(responses) == sum(matched) + unmatched + responses_of_evicted
//   records_emitted == sum(roundtrips) == sum(matched) + sum(timeouts) + unmatched + no_reply
// (a response of a request the pending cap evicted makes no record: the request's timeout record was it)
//   flows_opened == sum(detect) + flows_undetected_now
struct alignas(64) DecodeCounters {
  std::array<std::array<uint64_t, kRecordStatusCount>, kProtocolCount> roundtrips{};
  std::array<uint64_t, kProtocolCount> requests{};       // requests queued to wait for a response
  std::array<uint64_t, kProtocolCount> responses{};      // responses completed (matched or not)
  std::array<uint64_t, kProtocolCount> matched{};        // responses paired with a request
  std::array<uint64_t, kProtocolCount> no_reply{};       // requests that expect no reply (memcached noreply/quit): ok records
  std::array<uint64_t, kProtocolCount> decode_errors{};  // bytes that do not parse as the protocol
  std::array<uint64_t, kProtocolCount> interim{};        // HTTP 1xx interim responses (not records)
  std::array<uint64_t, kTimeoutCauseCount> timeouts{};
  std::array<uint64_t, kDetectOutcomeCount> detect{};
  std::array<uint64_t, kProtocolCount> detected_by_payload{};  // kBySniff, per protocol found
  uint64_t detect_rejected = 0;        // a signature matched but the decoder's structural check said no
  SPANFEED_DECODE_COUNTERS(SPANFEED_COUNTER_DECLARE)

  uint64_t roundtrips_total() const {
    uint64_t t = 0;
    for (const auto& p : roundtrips)
      for (uint64_t v : p) t += v;
    return t;
  }
  uint64_t of(Protocol p, RecordStatus s) const {
    return roundtrips[static_cast<size_t>(p)][static_cast<size_t>(s)];
  }
  uint64_t sum(const std::array<uint64_t, kProtocolCount>& a) const {
    uint64_t t = 0;
    for (uint64_t v : a) t += v;
    return t;
  }
  uint64_t timeouts_total() const {
    uint64_t t = 0;
    for (uint64_t v : timeouts) t += v;
    return t;
  }
  uint64_t detect_total() const {
    uint64_t t = 0;
    for (uint64_t v : detect) t += v;
    return t;
  }
  bool ledger_balanced() const {
    return sum(requests) == sum(matched) + timeouts_total() + pending_now &&
           sum(responses) == sum(matched) + unmatched + responses_of_evicted &&
           records_emitted == roundtrips_total() &&
           records_emitted == sum(matched) + timeouts_total() + unmatched + sum(no_reply);
  }
};

#define SPANFEED_X(...) SPANFEED_COUNTER_ENTRY(DecodeCounters, __VA_ARGS__)
inline constexpr CounterField<DecodeCounters> kDecodeCounterFields[] = {SPANFEED_DECODE_COUNTERS(SPANFEED_X)};
#undef SPANFEED_X

// Bytes a decoder may keep per flow (both directions) inside the builder's
// preallocated per-flow array. Decoder state types must be trivially
// copyable and fit here (static_assert in each decoder).
inline constexpr size_t kDecoderStateBytes = 256;

// Result of FlowContext::next_line / take.
enum class Take : uint8_t {
  kOk,        // `out` holds the line / bytes; `data` advanced past them
  kNeedMore,  // everything left in `data` was kept (carry); call again with the next chunk
  kNoMemory,  // take(): no carry buffer free (counted): treat like a message over the cap
};

class RecordBuilder;
struct FlowSession;

// Bit of a protocol in a candidate / rule protocol mask.
inline constexpr uint32_t protocol_bit(Protocol p) { return 1u << static_cast<unsigned>(p); }
inline constexpr uint32_t kAllProtocols = (1u << kProtocolCount) - 1;
static_assert(kProtocolCount <= 32, "protocol masks are 32 bits");

// Payload signatures for flows on unmapped ports (the registry's
// ProtocolDescriptor::signatures, compiled by an adapter such as the
// Hyperscan one in src/decode/detect/). Without one every decoder's
// structural check is asked.
class SignatureMatcher {
 public:
  virtual ~SignatureMatcher() = default;
  // protocol_bit()s of the protocols whose signature matches the start of `chunk`.
  virtual uint32_t candidates(std::span<const std::byte> chunk, Transport t) = 0;
};

// What the builder tells an observer of the byte streams and records (the
// rules implement it; decode does not know them). Called on the
// worker; `slot` is the flow's slot, directions are logical (requests are
// kClientToServer).
class StreamObserver {
 public:
  virtual ~StreamObserver() = default;
  // Bytes of `dir` starting at stream offset `offset`; `decoded`: the flow has a decoder.
  virtual void scan(uint32_t slot, Protocol p, bool decoded, bool udp, Direction dir, uint64_t offset,
                    std::span<const std::byte> data) = 0;
  virtual void gap(uint32_t slot, Direction dir) = 0;
  virtual void close(uint32_t slot) = 0;
  // Body bytes the wire carries compressed (HTTP gzip/deflate) / already decoded bytes
  // (MySQL compressed protocol) of the message in progress in `dir`.
  virtual void body(uint32_t slot, Protocol p, Direction dir, std::span<const std::byte> encoded) = 0;
  virtual void decoded(uint32_t slot, Protocol p, Direction dir, std::span<const std::byte> bytes) = 0;
  // `m` of `dir` is complete (messages of one direction complete in stream order).
  virtual void mark(uint32_t slot, Direction dir, Message& m) = 0;
  // A record is about to leave: redact its fields, write its tags; returns the tag count.
  virtual size_t annotate(Protocol p, Message* request, Message* response, RecordTags& tags) = 0;
};

// What a decoder may do with one flow during one call. Direction is the
// logical one: kClientToServer carries requests (the builder swaps when the
// flow's "client" turned out to own the server port).
class FlowContext {
 public:
  FlowContext(RecordBuilder& b, FlowSession& s, uint32_t slot, Direction chunk_dir = Direction::kClientToServer,
              size_t chunk_len = 0)
      : b_(b), s_(s), slot_(slot), chunk_dir_(chunk_dir), chunk_len_(chunk_len) {}

  template <typename T>
  T& state();
  bool udp() const;
  // UDP: bytes the capture cut from the end of the datagram being decoded (snaplen), else 0.
  uint32_t datagram_cut() const;
  const DecodeConfig& config() const;
  DecodeCounters& counters();
  Protocol protocol() const;

  // Stream position of `dir` where `rest` (the unconsumed tail of the current
  // chunk) begins: bytes delivered + lost before it.
  uint64_t offset(Direction dir, std::span<const std::byte> rest) const;

  // Next '\n'-terminated line (without "\r\n") from the carry + data. Lines
  // longer than carry_bytes are cut (`*cut` set, rest skipped, counted).
  // The line stays valid until the next next_line/take on this direction.
  Take next_line(Direction dir, std::span<const std::byte>& data, std::string_view& line, bool* cut);
  // next_line, and where the line's first ':' is (npos: none): one pass over the bytes finds both (HTTP
  // header lines), instead of a search for the '\n' and another for the ':'.
  Take next_line_colon(Direction dir, std::span<const std::byte>& data, std::string_view& line, bool* cut, size_t* colon);
  // Next `n` contiguous bytes (n <= carry_bytes).
  Take take(Direction dir, std::span<const std::byte>& data, size_t n, std::span<const std::byte>& out);
  // Forget whatever is kept for `dir` (gap, resync).
  void drop_carry(Direction dir);
  bool has_carry(Direction dir) const;
  // The bytes kept for `dir` (an incomplete line / take()), empty when none:
  // what close() can still make a record of. Valid until the next call on `dir`.
  std::span<const std::byte> kept(Direction dir) const;

  // Messages come from the worker's pool; nullptr when it is empty (counted).
  Message* new_message(uint64_t ts_ns);
  void discard(Message* m);
  // Queue a finished request to wait for its response. Overflow: the oldest
  // pending request becomes a timeout record.
  void commit_request(Message* req);
  // A request that expects no reply: ok record now, response null. `dir`: the side that sent it (a
  // server push, as an AMQP delivery or an MQTT PUBLISH to a subscriber, is kServerToClient).
  void emit_no_reply(Message* req, Direction dir = Direction::kClientToServer);
  // Oldest pending request (FIFO protocols), or nullptr (also while the next
  // response answers a request the pending cap evicted: its fields are gone).
  Message* front_request();
  // The request `resp` (a response in progress) will pair with when FIFO: front_request(), unless the ACK of
  // the packet that began `resp` shows the server had not received that request yet (then nullptr: it
  // answers a request the capture lost, and complete_response will leave it unmatched).
  Message* answered_request(const Message* resp);
  // The pending request queued after `req` (a pending request of this flow), or nullptr.
  Message* next_request(const Message* req);
  // Requests waiting for a response, those the pending cap evicted included.
  size_t pending_count() const;
  // A pending request with Message::key == `key` exists (id-matched protocols).
  bool has_pending_key(uint32_t key) const;
  // `req` (a pending request) was pending, or made, while the server side had lost bytes it could not read
  // again: its response may have been among them.
  bool answer_may_be_lost(const Message* req) const;
  // Finished response: pairs with the oldest pending request (FIFO), or with
  // the oldest pending request whose key == `key` (by_key), else unmatched.
  // FIFO: while responses are owed to requests the pending cap evicted, the
  // response is one of them: counted (responses_of_evicted), no record.
  void complete_response(Message* resp, RecordStatus status);
  void complete_response_by_key(Message* resp, RecordStatus status, uint32_t key);
  // A finished response that answers none of the pending requests (a request the capture lost): an
  // unmatched record; the pending ones wait for their own.
  void complete_unmatched(Message* resp);
  // Every pending request becomes a timeout record (`extra_flags` added).
  void flush_pending(TimeoutCause cause, uint32_t extra_flags);
  // One pending request of this flow becomes a timeout record now (cause kGap, flagged gap): a response
  // that names its request showed that this one's response was lost.
  void give_up(Message* req);
  // This flow's responses name their request (complete_response_by_key) when `on`: for a decoder whose
  // flows differ (memcached: text FIFO, binary by opaque, UDP by request id). Before the first request.
  void set_match_by_key(bool on);

  // Content the wire carries encoded, for the rules (a no-op without
  // rules): body bytes of the message in progress in `dir` that are
  // compressed (HTTP gzip/deflate: inflated there), or already decoded bytes
  // (MySQL compressed-protocol payloads). Matches go to that message.
  void content(Direction dir, std::span<const std::byte> bytes, bool compressed);

  // The flow speaks protocol `p` from here on (HTTP/1.1 `Upgrade: h2c` answered by 101): the calling decoder's
  // close() ends what it still has in progress (a message of the other side: a record flagged as its close
  // flags it, never a message left in the pool), then p's decoder opens with fresh state, hears `origin` (the
  // request that asked, copied by the caller; Decoder::upgraded, not called when null) and decodes `rest` of
  // `dir`. True: the caller's state is gone, it returns at once; false: no decoder for p (nothing changed).
  bool hand_over(Protocol p, Direction dir, std::span<const std::byte> rest, uint64_t ts_ns, const Message* origin);

  void count_decode_error();
  void count_resync(uint64_t skipped_bytes);
  void count_gap_absorbed();
  // close(): the flow ended inside the first bytes of a message of `dir`, too
  // few to tell what it was (no record can be made of it).
  void count_partial_at_close();

 private:
  // next_line / take with a carry involved (or a line over the cap): out of line.
  Take next_line_slow(Direction dir, std::span<const std::byte>& data, std::string_view& line, bool* cut);
  Take take_slow(Direction dir, std::span<const std::byte>& data, size_t n, std::span<const std::byte>& out);

  RecordBuilder& b_;
  FlowSession& s_;
  uint32_t slot_;
  Direction chunk_dir_;  // direction of the chunk being decoded
  size_t chunk_len_;     // its size (0 outside data())
};

// One direction's lost framing, in a decoder's per-flow state: bytes that cannot start a message are skipped
// until one that can shows again. Counted the same way by every decoder: the decode error once when the
// framing is first found missing, the skipped bytes (saturating), and one resync when it is found again.
struct Resync {
  uint32_t skipped = 0;  // bytes skipped since framing was lost
  bool lost = false;

  void add(uint64_t n) { skipped = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{skipped} + n, UINT32_MAX)); }
  // Framing is lost here (a gap, or bytes the parser gave up on: their error is the caller's to count);
  // `n` bytes skipped with it.
  void lose(uint64_t n = 0) {
    lost = true;
    add(n);
  }
  // `n` bytes at a point where a message must start do not start one: one decode error when framing was not
  // already lost, and they are skipped.
  void skip(FlowContext& ctx, uint64_t n) {
    if (!lost) ctx.count_decode_error();
    lose(n);
  }
  // A message starts here: if framing was lost, one resync with the bytes skipped; in sync again.
  void found(FlowContext& ctx) {
    if (lost) ctx.count_resync(skipped);
    *this = Resync{};
  }
};

// A direction restarts after a gap it could not absorb: its parse state is reset (a `Side` with a
// `bool checked` and a `Resync resync`), it stays confirmed as this protocol, and it looks for the
// next message start with framing lost.
template <class Side>
void restart_after_gap(Side& sd) {
  sd = Side{};
  sd.checked = true;
  sd.resync.lose();
}

// One protocol's decoder. One instance per worker serves all flows of its
// protocol; per-flow state lives in FlowContext::state<T>(). Push parser:
// bytes in, records out through the context. Never throws, never allocates.
class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual Protocol protocol() const = 0;
  // Responses name their request (DNS id, MongoDB responseTo) instead of
  // answering the oldest one (FIFO): pending-queue overflow owes them nothing.
  virtual bool matches_by_key() const { return false; }
  // A flow was given to this decoder: initialise state<T>().
  virtual void open(FlowContext& ctx, uint64_t ts_ns) = 0;
  // Right after open() on a flow another decoder handed over (FlowContext::hand_over): `origin` is the
  // request that asked for the switch (null when unknown); it is not the decoder's to keep.
  virtual void upgraded(FlowContext& /*ctx*/, const Message* /*origin*/, uint64_t /*ts_ns*/) {}
  virtual void data(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts_ns) = 0;
  // `missing` bytes of `dir` are lost; offset(dir, {}) is where they start.
  virtual void gap(FlowContext& ctx, Direction dir, uint64_t missing, uint64_t ts_ns) = 0;
  // `dir` ended (FIN): a body delimited by the connection end is complete.
  virtual void fin(FlowContext& ctx, Direction dir, uint64_t ts_ns) = 0;
  // Last call: finish or drop messages in progress (pending requests are
  // flushed by the builder afterwards). Also called when this decoder hands
  // the flow to another (FlowContext::hand_over), from inside its own data().
  virtual void close(FlowContext& ctx, uint64_t ts_ns) = 0;
};

// Per-flow session kept by the builder at index flow.slot.
struct FlowSession {
  alignas(16) std::array<std::byte, kDecoderStateBytes> state{};
  std::array<uint64_t, 2> base{};      // stream offset at the start of the current chunk, per logical dir
  std::array<uint32_t, 2> carry{};     // carry buffer index or kNone
  std::array<uint32_t, 2> carry_len{};
  std::array<uint8_t, 2> carry_mode{};  // see record_builder_internal.h
  uint32_t pending_head = UINT32_MAX;  // message pool indices, FIFO of pending requests
  uint32_t pending_tail = UINT32_MAX;
  uint32_t pending_count = 0;
  uint32_t owed_evicted = 0;  // FIFO: responses still to come for requests the pending cap evicted
  // Datagram flows: a response no pending request was waiting for, held for the request the mirror may
  // have delivered after it (message pool index, or UINT32_MAX), and the status it completes with.
  uint32_t early = UINT32_MAX;
  uint32_t early_key = 0;
  uint32_t datagram_cut = 0;  // UDP: bytes cut from the end of the next datagram (on_gap before its on_data)
  RecordStatus early_status = RecordStatus::kOk;
  Endpoint client;
  Endpoint server;
  TunnelSummary tunnel{};    // the flow's encapsulation (Flow::tunnel)
  uint8_t ip_version = 4;
  Protocol protocol = Protocol::kUnknown;
  uint8_t detect_state = 0;  // see record_builder_internal.h
  uint8_t sniff_chunks = 0;
  bool swapped = false;      // logical client = the flow's server endpoint
  std::array<bool, 2> conflict{};    // per physical dir: an overlap conflict not yet put on a message
  std::array<bool, 2> gap_before{};  // per physical dir: bytes lost before a decoder took the flow
  bool udp = false;
  bool open = false;
  bool by_key = false;       // the decoder matches_by_key()
  // The server side lost bytes the decoder could not skip and no response was decoded since: a request
  // made now may have its response among bytes that cannot be read (its timeout is flagged gap).
  bool resp_unsynced = false;
};

// The per-worker session layer: a StreamConsumer for the Reassembler that
// chooses a decoder per flow, keeps per-flow state in preallocated arrays,
// matches requests with responses and hands Records to a RecordSink.
class RecordBuilder final : public StreamConsumer {
 public:
  // Allocates all pools here. cfg must pass validate().
  RecordBuilder(const DecodeConfig& cfg, RecordSink& sink);
  ~RecordBuilder() override;
  RecordBuilder(const RecordBuilder&) = delete;
  RecordBuilder& operator=(const RecordBuilder&) = delete;

  // Adds (or replaces) the decoder of d->protocol(); start-up only. The
  // constructor registers every protocol of the registry.
  void register_decoder(std::unique_ptr<Decoder> d);
  // Rules: every byte of every flow goes through `o` (tags, redaction).
  // Start-up only; `o` must outlive the builder. nullptr: none.
  void set_observer(StreamObserver* o) { observer_ = o; }
  StreamObserver* observer() const { return observer_; }
  // Signature pre-filter for unmapped ports; start-up only, must outlive the
  // builder. nullptr (default): every decoder's structural check is asked.
  void set_signatures(SignatureMatcher* m) { signatures_ = m; }
  void set_sink(RecordSink& sink) { sink_ = &sink; }

  void on_open(const Flow& flow, uint64_t ts_ns) override;
  void on_data(const Flow& flow, Direction dir, std::span<const std::byte> data, uint64_t ts_ns,
               uint64_t peer_acked = kAckUnknown) override;
  void on_gap(const Flow& flow, Direction dir, uint64_t missing_bytes, GapReason reason, uint64_t ts_ns) override;
  void on_overlap_conflict(const Flow& flow, Direction dir, uint64_t ts_ns) override;
  void on_fin(const Flow& flow, Direction dir, uint64_t ts_ns) override;
  void on_rst(const Flow& flow, Direction dir, uint64_t ts_ns) override;
  void on_close(const Flow& flow, CloseReason reason, uint64_t ts_ns) override;

  // Pending requests older than response_timeout_ns at now_ns become timeout
  // records (call from the worker's on_idle, next to Reassembler::advance_time).
  void advance_time(uint64_t now_ns);
  // End of run: call after Reassembler::finish(); flushes whatever is left.
  void finish(uint64_t now_ns);

  const DecodeCounters& counters() const { return counters_; }
  const DecodeConfig& config() const { return cfg_; }
  bool has_decoder(Protocol p) const { return p < Protocol::kCount && decoders_[static_cast<size_t>(p)] != nullptr; }
  uint32_t messages_in_use() const { return msg_in_use_; }
  uint32_t carry_buffers_in_use() const { return carry_in_use_; }

 private:
  friend class FlowContext;
  static constexpr uint32_t kNone = UINT32_MAX;

  struct Slot {  // one pool entry: a message plus its links
    Message msg;
    uint32_t flow_slot = kNone;
    uint32_t flow_prev = kNone, flow_next = kNone;  // flow's pending FIFO
    uint32_t age_prev = kNone, age_next = kNone;    // worker-wide list of pending requests, oldest first
    bool pending = false;
    bool answer_in_gap = false;  // pending when the server side lost bytes: a timeout may be that loss (flagged gap)
    // A response begun in a server chunk: how much of the client's stream the server had received then
    // (on_data's peer_acked); kAckUnknown otherwise.
    uint64_t acked = kAckUnknown;
    // A request begun in a client chunk: that chunk's stream offset (its first byte is at or after it);
    // kAckUnknown otherwise. Not `stream_end - bytes`: an HTTP/2 request's frames interleave with others.
    uint64_t start_floor = kAckUnknown;
  };

  // Sessions are made as flows reach their slots (a flow table hands out the
  // lowest free slot first): a capture of 20 connections touches 20, not the
  // flow capacity. sessions_ never reallocates (reserved to the capacity).
  FlowSession& session(const Flow& f) { return f.slot < sessions_made_ ? sessions_[f.slot] : grow_sessions(f.slot); }
  FlowSession& grow_sessions(uint32_t slot);
  Direction logical(const FlowSession& s, Direction d) const { return s.swapped ? opposite(d) : d; }
  enum class Detected : uint8_t { kDecode, kKept, kNo };
  // kDecode: decode `data` (after `*replay`, this direction's kept first
  // bytes); kKept: too short to tell, kept for the next chunk; kNo: not decoded.
  Detected detect(const Flow& f, FlowSession& s, Direction dir, std::span<const std::byte> data,
                  std::span<const std::byte>* replay, uint64_t ts_ns);
  void drop_prefix(uint32_t slot, FlowSession& s, size_t physical_dir);
  void decode_chunk(const Flow& flow, FlowSession& s, Direction dir, std::span<const std::byte> data, uint64_t ts_ns);
  // on_data for a flow whose decoder is not running yet (detection), closed, or an empty chunk.
  [[gnu::noinline]] void on_data_detect(const Flow& flow, FlowSession& s, Direction dir,
                                        std::span<const std::byte> data, uint64_t ts_ns);
  void start_decoder(const Flow& f, FlowSession& s, Protocol p, DetectOutcome how, bool swap, uint64_t ts_ns);
  void close_session(uint32_t slot, uint64_t ts_ns);
  void expire(uint64_t now_ns, uint32_t budget);
  // The oldest pending request's response deadline has passed at now_ns.
  bool oldest_due(uint64_t now_ns) const {
    return age_head_ != kNone && slots_[age_head_].msg.first_ts_ns + cfg_.response_timeout_ns <= now_ns;
  }

  uint32_t slot_index(const Message* m) const;
  uint32_t alloc_message(uint64_t ts_ns);
  void free_message(uint32_t i);
  void unlink_pending(uint32_t i);
  void emit(const FlowSession& s, Message* req, Message* resp, RecordStatus status);
  void mark(FlowSession& s, Direction dir, Message* m);
  // `resp` answers the pending request in slot `qi` (kNone: none: an unmatched record).
  void complete(FlowSession& s, uint32_t qi, Message* resp, RecordStatus status);
  // complete() once the response is marked: counts it, pairs it with request slot `qi` (or makes it
  // unmatched), emits the record and frees both slots.
  void settle(FlowSession& s, uint32_t qi, uint32_t ri, RecordStatus status);
  // Response slot `ri` began before the server had request slot `qi`'s first byte (the ACKs prove it).
  bool sent_before(uint32_t ri, uint32_t qi) const {
    const uint64_t floor = slots_[qi].start_floor;
    return floor != kAckUnknown && slots_[ri].acked != kAckUnknown && slots_[ri].acked <= floor;
  }
  // `resp` answers a request the pending cap evicted (its timeout record is out): counted, freed.
  void consume_evicted(FlowSession& s, Message* resp);
  // The datagram response `s` holds (FlowSession::early), if any, becomes an unmatched record.
  void release_early(FlowSession& s);
  // Datagram flows: a response no request waited for is held this long (capture time) for its request.
  static constexpr uint64_t kReorderWindowNs = 10'000'000;
  // Held responses in the order they were held, so that each is released once its window has passed
  // (a flow that sees no request after it, e.g. a one-way capture, must not keep a pool message).
  struct HeldResponse {
    uint32_t msg;
    uint32_t flow_slot;
    uint64_t ts_ns;
  };
  void hold_early(FlowSession& s, uint32_t slot, Message* resp, uint32_t key, RecordStatus status);
  // Releases the held responses whose window has passed at now_ns; the oldest entry of the ring.
  void release_held(uint64_t now_ns);
  void release_oldest_held();
  bool held_due(uint64_t now_ns) const {
    return held_count_ != 0 && held_[held_head_].ts_ns + kReorderWindowNs < now_ns;
  }
  void emit_timeout(uint32_t i, TimeoutCause cause, uint32_t extra_flags);

  std::byte* carry_data(uint32_t buf) { return carry_arena_.get() + static_cast<size_t>(buf) * cfg_.carry_bytes; }
  uint32_t alloc_carry();
  void free_carry(uint32_t buf);
  void release_carry(FlowSession& s, size_t d);

  DecodeConfig cfg_;
  RecordSink* sink_;
  std::array<std::unique_ptr<Decoder>, kProtocolCount> decoders_;
  std::vector<uint8_t> tcp_port_map_;  // port -> Protocol (kUnknown: none)
  std::vector<uint8_t> udp_port_map_;
  std::vector<FlowSession> sessions_;
  // sessions_.size(), kept by grow_sessions: session() compares with it
  // instead of dividing the vector's byte length by sizeof(FlowSession).
  uint32_t sessions_made_ = 0;
  // Ring of held datagram responses, oldest first (entries of responses paired or released since are
  // skipped when they come up). Full: the oldest is released at once.
  static constexpr uint32_t kHeldRing = 1024;
  std::unique_ptr<HeldResponse[]> held_;
  uint32_t held_head_ = 0;
  uint32_t held_count_ = 0;
  std::vector<Slot> slots_;
  uint32_t msg_free_ = kNone;
  uint32_t msg_in_use_ = 0;
  uint32_t age_head_ = kNone, age_tail_ = kNone;
  std::unique_ptr<std::byte[]> carry_arena_;
  std::vector<uint32_t> carry_free_;
  uint32_t carry_in_use_ = 0;
  uint64_t next_id_ = 0;
  StreamObserver* observer_ = nullptr;
  uint64_t chunk_acked_ = kAckUnknown;  // peer_acked of the chunk being decoded
  SignatureMatcher* signatures_ = nullptr;
  RecordTags tags_{};
  std::array<std::byte, 4096> sniff_view_{};  // kept first bytes + the new chunk, for detection
  std::array<std::byte, 128> replay_{};       // kept first bytes handed to a decoder
  DecodeCounters counters_;
};

// The common cases inline (nothing kept for the direction, the line or the bytes all in `data`): a call
// and the carry bookkeeping per line cost more than the line (RESP lines are 4-10 bytes).
inline uint64_t FlowContext::offset(Direction dir, std::span<const std::byte> rest) const {
  if (dir != chunk_dir_) return s_.base[index_of(dir)];
  const size_t consumed = chunk_len_ >= rest.size() ? chunk_len_ - rest.size() : 0;
  return s_.base[index_of(dir)] + consumed;
}

inline const DecodeConfig& FlowContext::config() const { return b_.cfg_; }

inline bool FlowContext::has_carry(Direction dir) const {
  const size_t d = index_of(dir);
  return s_.carry_len[d] != 0 && (s_.carry_mode[d] & 1) == 0;  // 1: kCarryClearPending (record_builder_internal.h)
}

inline Take FlowContext::next_line(Direction dir, std::span<const std::byte>& data, std::string_view& line, bool* cut) {
  const size_t d = index_of(dir);
  if (s_.carry_len[d] == 0 && s_.carry_mode[d] == 0 && !data.empty()) {
    const auto* begin = reinterpret_cast<const char*>(data.data());
    const auto* nl = static_cast<const char*>(__builtin_memchr(begin, '\n', data.size()));
    if (nl != nullptr && static_cast<size_t>(nl - begin) <= b_.cfg_.carry_bytes) {
      const size_t len = static_cast<size_t>(nl - begin);
      line = std::string_view(begin, len > 0 && nl[-1] == '\r' ? len - 1 : len);
      *cut = false;
      data = data.subspan(len + 1);
      return Take::kOk;
    }
  }
  return next_line_slow(dir, data, line, cut);
}

inline Take FlowContext::next_line_colon(Direction dir, std::span<const std::byte>& data, std::string_view& line,
                                         bool* cut, size_t* colon) {
#ifdef __SSE2__
  const size_t d = index_of(dir);
  if (s_.carry_len[d] == 0 && s_.carry_mode[d] == 0) {  // next_line's own fast path, over the same bytes
    const auto* begin = reinterpret_cast<const char*>(data.data());
    const size_t lim = std::min<size_t>(data.size(), size_t{b_.cfg_.carry_bytes} + 1);  // a '\n' past this: slow
    size_t col = std::string_view::npos;  // the first ':' seen (maybe past the '\n': then none)
    size_t i = 0;
    bool found = false;
    const __m128i nl = _mm_set1_epi8('\n');
    const __m128i cl = _mm_set1_epi8(':');
    for (; i + 16 <= lim; i += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(begin + i));
      const auto nm = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, nl)));
      const auto cm = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, cl)));
      if (cm != 0 && col == std::string_view::npos) col = i + static_cast<size_t>(__builtin_ctz(cm));
      if (nm != 0) {
        i += static_cast<size_t>(__builtin_ctz(nm));
        found = true;
        break;
      }
    }
    for (; !found && i < lim; ++i) {
      if (begin[i] == '\n') {
        found = true;
        break;
      }
      if (begin[i] == ':' && col == std::string_view::npos) col = i;
    }
    if (found) {
      line = std::string_view(begin, i > 0 && begin[i - 1] == '\r' ? i - 1 : i);
      *cut = false;
      *colon = col < line.size() ? col : std::string_view::npos;
      data = data.subspan(i + 1);
      return Take::kOk;
    }
  }
#endif
  const Take t = next_line(dir, data, line, cut);
  if (t == Take::kOk) *colon = line.find(':');
  return t;
}

inline Take FlowContext::take(Direction dir, std::span<const std::byte>& data, size_t n, std::span<const std::byte>& out) {
  const size_t d = index_of(dir);
  if (s_.carry_len[d] == 0 && s_.carry_mode[d] == 0 && data.size() >= n && n <= b_.cfg_.carry_bytes) {
    out = data.first(n);
    data = data.subspan(n);
    return Take::kOk;
  }
  return take_slow(dir, data, n, out);
}

template <typename T>
T& FlowContext::state() {
  static_assert(sizeof(T) <= kDecoderStateBytes, "decoder state must fit FlowSession::state");
  static_assert(alignof(T) <= 16, "decoder state alignment");
  return *reinterpret_cast<T*>(s_.state.data());
}

}  // namespace spanfeed
