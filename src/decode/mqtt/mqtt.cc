// MQTT 3.1 / 3.1.1 / 5.0 decoder: fixed header (type, flags, remaining length of 1-4 bytes), CONNECT/CONNACK,
// PUBLISH and its QoS 1 / 2 acknowledgements, SUBSCRIBE/SUBACK, UNSUBSCRIBE/UNSUBACK, PINGREQ/PINGRESP,
// DISCONNECT, AUTH; MQTT 5 properties walked for the reason string. Payloads counted, never kept.
// Runs on a worker lcore; per-flow state in the builder's preallocated array; never allocates.
//
// Matching (by key, Message::key = packet type << 16 | packet id): CONNECT -> CONNACK, PINGREQ -> PINGRESP,
// PUBLISH QoS 1 -> PUBACK, PUBLISH QoS 2 -> PUBREC then PUBREL -> PUBCOMP (two records), SUBSCRIBE -> SUBACK,
// UNSUBSCRIBE -> UNSUBACK. A QoS 0 PUBLISH and DISCONNECT are records without reply. Both sides publish: a
// PUBLISH from the server (to a subscriber) is a record of its own without reply, `from_server: true`, its
// QoS and packet id in it; the client's PUBACK / PUBREC / PUBCOMP to it and the server's PUBREL are no
// records. The CONNECT password is never read.
#include "mqtt.h"

#include <algorithm>

#include "db_util.h"
#include "wire_reader.h"

#include "spanfeed/decoder.h"

namespace spanfeed {
namespace {

constexpr Direction kReq = Direction::kClientToServer;
constexpr Direction kResp = Direction::kServerToClient;

constexpr size_t kKeepMax = 4096;   // packet bytes parsed (topic, properties, filters); the payload is counted
constexpr size_t kTopicMax = 256;
constexpr size_t kTextMax = 256;
constexpr size_t kListMax = 512;    // topic filters / granted QoS lists, joined

enum Type : uint8_t {
  kConnect = 1, kConnack, kPublish, kPuback, kPubrec, kPubrel, kPubcomp,
  kSubscribe, kSuback, kUnsubscribe, kUnsuback, kPingreq, kPingresp, kDisconnect, kAuth,
};

constexpr const char* kNames[] = {"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL",
                                  "PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ",
                                  "PINGRESP", "DISCONNECT", "AUTH"};

constexpr uint32_t key_of(uint8_t type, uint16_t id) { return uint32_t{type} << 16 | id; }

// Fixed-header check (3.1.1 2.2.2, 5.0 2.1.3): reserved flag bits, and who may send the type.
bool valid_header(uint8_t b, Direction dir) {
  const uint8_t type = b >> 4, flags = b & 15;
  if (type == 0) return false;
  if (type == kPublish) return (flags & 6) != 6;  // QoS 3 is malformed
  if (type == kPubrel || type == kSubscribe || type == kUnsubscribe) {
    if (flags != 2) return false;
  } else if (flags != 0) {
    return false;
  }
  switch (type) {
    case kConnect: case kSubscribe: case kUnsubscribe: case kPingreq: return dir == kReq;
    case kConnack: case kSuback: case kUnsuback: case kPingresp: return dir == kResp;
    default: return true;
  }
}

// A chunk that starts a packet: valid first byte, a remaining length that ends within 4 bytes.
bool plausible(const uint8_t* p, size_t n, Direction dir) {
  if (n < 1 || !valid_header(p[0], dir)) return false;
  for (size_t i = 1; i < 5; ++i) {
    if (i >= n) return true;
    if ((p[i] & 0x80) == 0) return true;
  }
  return false;
}

// A connection met mid-stream (no CONNECT seen): a chunk of whole packets (the last may be cut), each with
// valid flags and a plausible body: a PUBLISH's topic printable, without wildcards; packet ids non-zero;
// PINGREQ / PINGRESP empty. Packets only a client sends (SUBSCRIBE, UNSUBSCRIBE, PINGREQ) or only a server
// (CONNACK, SUBACK, UNSUBACK, PINGRESP) orient the flow; PUBLISH and its acknowledgements alone do not
// (kEither: the higher port is taken for the client).
SniffResult midstream(const uint8_t* p, size_t n) {
  bool client = false, server = false, publish = false, pubrel = false;
  int acks = 0;
  size_t off = 0;
  for (int k = 0; off < n && k < 16; ++k) {
    const uint8_t type = p[off] >> 4;
    if (!valid_header(p[off], kReq) && !valid_header(p[off], kResp)) return SniffResult::kNo;
    if (type == kConnect || type == kAuth) return SniffResult::kNo;  // a CONNECT is the other check's
    uint32_t rl = 0;
    size_t i = off + 1;
    bool cut = false;
    for (int s = 0;; s += 7, ++i) {
      if (i >= n) {
        cut = true;
        break;
      }
      if (s > 21) return SniffResult::kNo;
      rl |= uint32_t{static_cast<uint8_t>(p[i] & 0x7f)} << s;
      if ((p[i] & 0x80) == 0) break;
    }
    if (cut) {
      if (k == 0) return SniffResult::kNo;
      break;  // a later packet's header cut by the chunk's end
    }
    ++i;  // the body starts here
    const size_t have = n - i;
    if (rl > have && k == 0 && type != kPublish) return SniffResult::kNo;  // a first packet is whole (PUBLISH: its head)
    const uint8_t* b = p + i;
    switch (type) {
      case kPublish: {
        const bool qos = (p[off] & 6) != 0;
        if (have < 2 || rl < 2) return SniffResult::kNo;
        const size_t tl = db::be16(b);
        if (tl == 0 || 2 + tl + (qos ? 2 : 0) > rl || 2 + tl + (qos ? 2 : 0) > have) return SniffResult::kNo;
        for (size_t j = 0; j < tl; ++j) {
          if (b[2 + j] < 0x20 || b[2 + j] > 0x7e || b[2 + j] == '+' || b[2 + j] == '#') return SniffResult::kNo;
        }
        if (qos && db::be16(b + 2 + tl) == 0) return SniffResult::kNo;
        publish = true;
        break;
      }
      case kPingreq: case kPingresp:
        if (rl != 0) return SniffResult::kNo;
        (type == kPingreq ? client : server) = true;
        break;
      case kDisconnect:
        if (rl > 64) return SniffResult::kNo;
        break;
      case kConnack:
        if (rl < 2 || rl > 64) return SniffResult::kNo;
        server = true;
        break;
      default:  // acknowledgements, SUBSCRIBE family: a packet id first
        if (rl < 2 || (have >= 2 && db::be16(b) == 0)) return SniffResult::kNo;
        if (type >= kPuback && type <= kPubcomp) {
          ++acks;
          pubrel |= type == kPubrel;
        }
        if (type == kSubscribe || type == kUnsubscribe) client = true;
        if (type == kSuback || type == kUnsuback) server = true;
        break;
    }
    if (rl > have) break;  // the last packet, cut by the chunk's end
    off = i + rl;
  }
  if (client && server) return SniffResult::kNo;
  if (client) return SniffResult::kRequest;
  if (server) return SniffResult::kResponse;
  // Acknowledgements alone (a QoS 2 flow between publishes): a PUBREL (its flags are 2) or two of them.
  return publish || pubrel || acks >= 2 ? SniffResult::kEither : SniffResult::kNo;
}

// Variable byte integer (3.1.1 1.5.5, 5.0 1.5.5): 1 to 4 bytes, 7 bits each; a fifth fails `r`.
uint32_t varint(WireReader& r) {
  uint32_t v = 0;
  for (int s = 0; s < 28; s += 7) {
    const uint8_t b = r.u8();
    v |= uint32_t{static_cast<uint8_t>(b & 0x7f)} << s;
    if ((b & 0x80) == 0) return v;
  }
  r.fail();
  return 0;
}

// MQTT 5 properties (5.0 2.2.2): walks them, returns the reason string (0x1F) if any. `r` ends past them.
std::string_view properties(WireReader& r) {
  const uint32_t len = varint(r);
  if (!r.ok()) return {};
  WireReader pr = r.take(len);  // a length past the kept bytes (kKeepMax) fails `r`: not walked
  if (!r.ok()) return {};
  std::string_view reason;
  while (pr.ok() && pr.remaining() > 0) {
    const uint32_t id = varint(pr);
    switch (id) {
      case 0x01: case 0x17: case 0x19: case 0x24: case 0x25: case 0x28: case 0x29: case 0x2A: pr.skip(1); break;
      case 0x13: case 0x21: case 0x22: case 0x23: pr.skip(2); break;
      case 0x02: case 0x11: case 0x18: case 0x27: pr.skip(4); break;
      case 0x0B: varint(pr); break;
      case 0x1F: reason = pr.str16(); break;
      case 0x03: case 0x08: case 0x12: case 0x15: case 0x1A: case 0x1C: case 0x09: case 0x16: pr.str16(); break;
      case 0x26: pr.str16(); pr.str16(); break;
      default: pr.fail(); break;
    }
  }
  return reason;
}

// A list joined with ',' in a stack buffer (topic filters, granted QoS).
struct Joined {
  char buf[kListMax];
  size_t n = 0;
  void add(std::string_view s) {
    if (n > 0 && n < sizeof(buf)) buf[n++] = ',';
    const size_t k = std::min(s.size(), sizeof(buf) - n);
    std::copy_n(s.data(), k, buf + n);
    n += k;
  }
  void add_num(unsigned v) {
    char d[4];
    size_t k = 0;
    do {
      d[k++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0 && k < sizeof(d));
    char out[4];
    for (size_t j = 0; j < k; ++j) out[j] = d[k - 1 - j];
    add(std::string_view(out, k));
  }
  std::string_view view() const { return {buf, n}; }
};

enum class Phase : uint8_t { kHeader, kBody, kSkip };

// Where a parsed packet goes (kept in Message::aux while its skipped tail passes).
enum class Route : uint8_t { kRequest, kResponse, kNoReply, kServerPush, kDrop };
constexpr uint32_t kAuxError = 0x100;  // Message::aux bit: a response with a failure code

struct Side {
  uint64_t start = 0;     // stream offset of the packet being read
  uint64_t first_ts = 0;
  uint32_t len = 0;       // remaining length
  uint32_t skip = 0;      // bytes of it past kKeepMax: counted
  uint8_t hdr[5] = {};    // first byte and remaining length as they come
  uint8_t hdr_len = 0;
  Phase phase = Phase::kHeader;
  bool checked = false;
  Resync resync;
};

struct State {
  Side side[2];
  Message* held[2] = {};  // a packet parsed from its first bytes, finished when its skipped tail has passed
  uint8_t level = 4;      // protocol level from CONNECT (3: 3.1, 4: 3.1.1, 5: 5.0)
  bool level_known = false;  // a CONNECT or CONNACK told it (else 4 until a packet only 5.0 can send)
};
static_assert(sizeof(State) <= kDecoderStateBytes, "mqtt state must fit the per-flow slot");

class MqttDecoder final : public Decoder {
 public:
  explicit MqttDecoder(const DecodeConfig& /*cfg*/) {}

  Protocol protocol() const override { return Protocol::kMqtt; }
  bool matches_by_key() const override { return true; }  // by packet type and id

  // A CONNECT: 0x10, remaining length, protocol name "MQTT" (3.1.1, 5.0) or "MQIsdp" (3.1), its level.
  static SniffResult sniff(std::span<const std::byte> chunk, Transport t) {
    if (t != Transport::kTcp) return SniffResult::kNo;
    const uint8_t* p = db::u8p(chunk);
    const size_t n = chunk.size();
    if (n < 2) return SniffResult::kNo;
    if (p[0] != 0x10) return midstream(p, n);
    size_t i = 1;
    while (i < n && i < 5 && (p[i] & 0x80) != 0) ++i;
    if (i >= n || i >= 5) return SniffResult::kNo;
    ++i;
    const std::string_view rest(reinterpret_cast<const char*>(p + i), n - i);
    if (rest.size() >= 7 && rest.substr(0, 6) == std::string_view("\0\4MQTT", 6) && (rest[6] == 4 || rest[6] == 5))
      return SniffResult::kRequest;
    if (rest.size() >= 9 && rest.substr(0, 8) == std::string_view("\0\6MQIsdp", 8) && rest[8] == 3)
      return SniffResult::kRequest;
    return SniffResult::kNo;
  }

  void open(FlowContext& ctx, uint64_t /*ts*/) override { ctx.state<State>() = State{}; }

  void data(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts) override {
    State& st = ctx.state<State>();
    Side& sd = st.side[index_of(dir)];
    // The first chunk of a direction (and the first after lost sync) must start a packet.
    if ((!sd.checked || sd.resync.lost) && sd.phase == Phase::kHeader && sd.hdr_len == 0) {
      sd.checked = true;
      if (!plausible(db::u8p(bytes), bytes.size(), dir)) {
        sd.resync.skip(ctx, bytes.size());
        return;
      }
      sd.resync.found(ctx);
    }
    const size_t cap = std::min<size_t>(kKeepMax, ctx.config().carry_bytes);
    while (!bytes.empty()) {
      switch (sd.phase) {
        case Phase::kHeader: {
          // The fixed header byte by byte: a remaining length may be split anywhere (no carry needed).
          if (sd.hdr_len == 0) {
            sd.start = ctx.offset(dir, bytes);
            sd.first_ts = ts;
          }
          const auto b = static_cast<uint8_t>(bytes[0]);
          bytes = bytes.subspan(1);
          sd.hdr[sd.hdr_len++] = b;
          if (sd.hdr_len == 1) {
            if (!valid_header(b, dir)) {
              ctx.count_decode_error();
              lose_sync(sd, bytes);
              return;
            }
            continue;
          }
          if ((b & 0x80) != 0) {
            if (sd.hdr_len == 5) {  // a fifth length byte: malformed (the length is at most 4 bytes)
              ctx.count_decode_error();
              lose_sync(sd, bytes);
              return;
            }
            continue;
          }
          uint32_t len = 0;
          for (size_t i = sd.hdr_len - 1; i >= 1; --i) len = len << 7 | (sd.hdr[i] & 0x7f);
          sd.len = len;
          sd.phase = Phase::kBody;
          if (len == 0) packet(ctx, st, dir, {}, ctx.offset(dir, bytes), ts);
          break;
        }
        case Phase::kBody: {
          const size_t want = std::min<size_t>(sd.len, cap);
          std::span<const std::byte> out;
          const Take t = ctx.take(dir, bytes, want, out);
          if (t == Take::kNeedMore) return;
          if (t == Take::kNoMemory) {
            lose_sync(sd, bytes);
            return;
          }
          sd.skip = static_cast<uint32_t>(sd.len - want);
          packet(ctx, st, dir, out, ctx.offset(dir, bytes) + sd.skip, ts);
          break;
        }
        case Phase::kSkip: {
          const size_t n = std::min<size_t>(sd.skip, bytes.size());
          bytes = bytes.subspan(n);
          sd.skip -= static_cast<uint32_t>(n);
          if (sd.skip == 0) {
            sd.phase = Phase::kHeader;
            release(ctx, st, dir, ts, 0);
          }
          break;
        }
      }
    }
  }

  void gap(FlowContext& ctx, Direction dir, uint64_t missing, uint64_t ts) override {
    State& st = ctx.state<State>();
    Side& sd = st.side[index_of(dir)];
    // Inside a payload being skipped: the packet goes on.
    if (sd.phase == Phase::kSkip && missing <= sd.skip) {
      ctx.count_gap_absorbed();
      Message* m = st.held[index_of(dir)];
      if (m != nullptr) m->flags |= record_flag::kGap;
      sd.skip -= static_cast<uint32_t>(missing);
      if (sd.skip == 0) {
        sd.phase = Phase::kHeader;
        release(ctx, st, dir, ts, 0);
      }
      return;
    }
    // Elsewhere: the packet in progress is lost; requests stay pending (replies name their packet id).
    release(ctx, st, dir, ts, record_flag::kGap | record_flag::kTruncated);
    restart_after_gap(sd);
  }

  void fin(FlowContext& /*ctx*/, Direction /*dir*/, uint64_t /*ts*/) override {}

  void close(FlowContext& ctx, uint64_t ts) override {
    State& st = ctx.state<State>();
    for (Direction dir : {kReq, kResp}) {
      Side& sd = st.side[index_of(dir)];
      if (!sd.resync.lost && (sd.hdr_len > 0 && sd.phase == Phase::kHeader)) ctx.count_partial_at_close();
      if (!sd.resync.lost && sd.phase == Phase::kBody) ctx.count_partial_at_close();
      release(ctx, st, dir, ts, record_flag::kTruncated);
    }
  }

 private:
  static void lose_sync(Side& sd, std::span<const std::byte>& bytes) {
    sd.phase = Phase::kHeader;
    sd.hdr_len = 0;
    sd.resync.lose(bytes.size());
    bytes = {};
  }

  // One packet: type and flags in sd.hdr[0], `body` = its first bytes, `end` = stream offset past it.
  void packet(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte> body, uint64_t end,
              uint64_t ts) {
    Side& sd = st.side[index_of(dir)];
    const uint8_t type = sd.hdr[0] >> 4, flags = sd.hdr[0] & 15;
    const uint32_t len = sd.len;
    sd.hdr_len = 0;
    sd.phase = sd.skip > 0 ? Phase::kSkip : Phase::kHeader;
    Message* m = ctx.new_message(sd.first_ts);
    if (m != nullptr) {
      m->end_span(sd.start, end, ts);
    }
    FieldList& f = m != nullptr ? m->fields : scratch_;
    if (m == nullptr) scratch_.clear();
    f.add_string("packet", kNames[type]);
    WireReader r(body);
    // The CONNECT lost (a gap, a capture begun after it): 5.0 shows in a CONNACK or an acknowledgement of a
    // PUBLISH longer than 2 bytes (3.1.1 has none; 5.0 adds a reason code and properties).
    if (!st.level_known && (type == kConnack || (type >= kPuback && type <= kPubcomp && len > 2))) {
      st.level_known = true;
      if (len > 2) st.level = 5;
    }
    const bool v5 = st.level >= 5;
    Route then = Route::kDrop;
    uint32_t key = 0;
    bool error = false;
    bool malformed = false;
    switch (type) {
      case kConnect: {
        key = key_of(kConnect, 0);
        const std::string_view proto = r.str16();
        const uint8_t level = r.u8(), cflags = r.u8();
        const uint16_t keep_alive = r.u16();
        if (!r.ok()) break;
        st.level = level;
        st.level_known = true;
        f.add_string("protocol_name", proto, 16);
        f.add_uint("protocol_level", level);
        f.add_bool("clean_session", (cflags & 2) != 0);
        f.add_uint("keep_alive", keep_alive);
        if (level >= 5) properties(r);
        const std::string_view client_id = r.str16();
        if (r.ok()) f.add_string("client_id", client_id, kTopicMax);
        if (cflags & 4) {  // will: [properties], topic, message
          if (level >= 5) properties(r);
          const std::string_view will = r.str16();
          r.str16();
          if (r.ok()) f.add_string("will_topic", will, kTopicMax);
        }
        if (cflags & 0x80) {
          const std::string_view user = r.str16();
          if (r.ok()) f.add_string("username", user, kTopicMax);
        }
        // cflags & 0x40: a password follows. Never read.
        break;
      }
      case kConnack: {
        key = key_of(kConnect, 0);
        const uint8_t ack = r.u8(), code = r.u8();
        if (!r.ok()) break;
        f.add_bool("session_present", (ack & 1) != 0);
        if (v5) {
          f.add_uint("reason_code", code);
          const std::string_view reason = properties(r);
          if (!reason.empty()) f.add_string("reason_string", reason, kTextMax);
        } else {
          f.add_uint("return_code", code);
        }
        error = code != 0;
        break;
      }
      case kPublish: {
        const uint8_t qos = (flags >> 1) & 3;
        const std::string_view topic = r.str16();
        const uint16_t id = qos > 0 ? r.u16() : 0;
        if (!r.ok()) {
          // The whole packet is here and its topic (and id) do not fit in it: not a PUBLISH (bytes met after
          // a resync that only looked like one). A packet cut by the carry cap may still hold a long topic.
          malformed = body.size() >= len;
          break;
        }
        f.add_string("topic", topic, kTopicMax);
        f.add_uint("qos", qos);
        if (flags & 1) f.add_bool("retain", true);
        if (flags & 8) f.add_bool("dup", true);
        if (qos > 0) f.add_uint("packet_id", id);
        size_t head = r.pos();
        if (v5) {
          properties(r);
          head = r.pos();
        }
        f.add_uint("payload_bytes", len >= head ? len - head : 0);
        if (dir == kResp) f.add_bool("from_server", true);
        key = key_of(kPublish, id);
        break;
      }
      case kPuback: case kPubrec: case kPubrel: case kPubcomp: {
        const uint16_t id = r.u16();
        if (!r.ok()) break;
        f.add_uint("packet_id", id);
        if (v5 && len >= 3) {
          const uint8_t code = r.u8();
          f.add_uint("reason_code", code);
          error = code >= 0x80;
          if (len >= 4) {
            const std::string_view reason = properties(r);
            if (!reason.empty()) f.add_string("reason_string", reason, kTextMax);
          }
        }
        key = key_of(type == kPubcomp || type == kPubrel ? kPubrel : kPublish, id);
        break;
      }
      case kSubscribe: case kUnsubscribe: {
        const uint16_t id = r.u16();
        if (!r.ok()) break;
        f.add_uint("packet_id", id);
        if (v5) properties(r);
        Joined topics, qos;
        uint32_t count = 0;
        while (r.ok() && r.remaining() > 0) {
          const std::string_view filter = r.str16();
          if (!r.ok()) break;
          topics.add(filter);
          if (type == kSubscribe) qos.add_num(r.u8() & 3);
          ++count;
        }
        f.add_string("topic_filters", topics.view(), kListMax);
        if (type == kSubscribe) f.add_string("requested_qos", qos.view(), kListMax);
        f.add_uint("filters", count);
        key = key_of(type, id);
        break;
      }
      case kSuback: case kUnsuback: {
        const uint16_t id = r.u16();
        if (!r.ok()) break;
        f.add_uint("packet_id", id);
        if (v5) {
          const std::string_view reason = properties(r);
          if (!reason.empty()) f.add_string("reason_string", reason, kTextMax);
        }
        Joined codes;
        while (r.ok() && r.remaining() > 0) {
          const uint8_t c = r.u8();
          codes.add_num(c);
          error = error || c >= 0x80;
        }
        if (codes.n > 0) f.add_string(type == kSuback ? "granted_qos" : "reason_codes", codes.view(), kListMax);
        key = key_of(type == kSuback ? kSubscribe : kUnsubscribe, id);
        break;
      }
      case kPingreq: case kPingresp: key = key_of(kPingreq, 0); break;
      case kDisconnect: case kAuth: {
        if (v5 && len >= 1) {
          const uint8_t code = r.u8();
          f.add_uint("reason_code", code);
          if (len >= 2) {
            const std::string_view reason = properties(r);
            if (!reason.empty()) f.add_string("reason_string", reason, kTextMax);
          }
        }
        if (dir == kResp) f.add_bool("from_server", true);
        break;
      }
      default: break;
    }
    if (!r.ok() && type != kPublish && type != kConnect) ctx.count_decode_error();
    if (malformed) {
      ctx.count_decode_error();
      if (m != nullptr) ctx.discard(m);
      return;
    }
    // Route it.
    if (dir == kReq) {
      switch (type) {
        case kConnect: case kSubscribe: case kUnsubscribe: case kPingreq: case kPubrel: then = Route::kRequest; break;
        case kPublish: then = ((flags >> 1) & 3) == 0 ? Route::kNoReply : Route::kRequest; break;
        case kDisconnect: case kAuth: then = Route::kNoReply; break;
        default: then = Route::kDrop; break;  // PUBACK / PUBREC / PUBCOMP to a server PUBLISH
      }
    } else {
      switch (type) {
        case kPublish: case kDisconnect: case kAuth: then = Route::kServerPush; break;
        case kPubrel: then = Route::kDrop; break;  // the server's half of a QoS 2 delivery to the client
        default: then = Route::kResponse; break;
      }
    }
    if (m == nullptr) return;
    if (then == Route::kDrop) {
      ctx.discard(m);
      return;
    }
    m->key = key;
    m->aux = static_cast<uint32_t>(then) | (error ? kAuxError : 0u);
    if (sd.phase == Phase::kSkip) {  // its size is known; it leaves when the rest has passed (gaps flag it)
      st.held[index_of(dir)] = m;
      return;
    }
    route(ctx, m);
  }

  static void route(FlowContext& ctx, Message* m) {
    const auto then = static_cast<Route>(m->aux & 0xff);
    const bool error = (m->aux & kAuxError) != 0;
    m->aux = 0;
    switch (then) {
      case Route::kRequest: ctx.commit_request(m); return;
      case Route::kResponse:
        ctx.complete_response_by_key(m, error ? RecordStatus::kError : RecordStatus::kOk, m->key);
        return;
      case Route::kNoReply: ctx.emit_no_reply(m); return;
      case Route::kServerPush: ctx.emit_no_reply(m, kResp); return;
      case Route::kDrop: ctx.discard(m); return;
    }
  }

  // The held packet of `dir` (its tail skipped) leaves now.
  void release(FlowContext& ctx, State& st, Direction dir, uint64_t ts, uint32_t flags) {
    Message*& m = st.held[index_of(dir)];
    if (m == nullptr) return;
    Message* out = m;
    m = nullptr;
    out->flags |= flags;
    out->last_ts_ns = std::max(out->last_ts_ns, ts);
    route(ctx, out);
  }

  FieldList scratch_;  // fields of a packet whose message the pool could not give
};

}  // namespace

namespace mqtt {

std::unique_ptr<Decoder> make_decoder(const DecodeConfig& cfg) { return std::make_unique<MqttDecoder>(cfg); }
SniffResult confirm(std::span<const std::byte> chunk, Transport t) { return MqttDecoder::sniff(chunk, t); }

}  // namespace mqtt

}  // namespace spanfeed
