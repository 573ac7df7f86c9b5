// HTTP/1.x decoder: request/response framing (Content-Length, chunked, until-close), pipelining, 1xx, gaps.
// Runs on a worker lcore; per-flow state lives in the builder's preallocated array; never allocates.
#include <algorithm>
#include <cstring>
#include <utility>

#include "http.h"

#include "spanfeed/decoder.h"
#include "spanfeed/protocol.h"
#include "text_util.h"

namespace spanfeed {
namespace {


constexpr Direction kReq = Direction::kClientToServer;
constexpr Direction kResp = Direction::kServerToClient;

enum class Phase : uint8_t {
  kIdle,        // between messages: next line is a start line (or garbage while resyncing)
  kHeaders,     // header lines until the empty line
  kBody,        // Content-Length body: `remaining` bytes left
  kChunkSize,   // chunked: next line is a chunk size
  kChunkData,   // chunked: `remaining` bytes of chunk data
  kChunkCrlf,   // chunked: the CRLF after a chunk's data
  kTrailers,    // chunked: trailer lines until the empty line
  kUntilClose,  // response body delimited by the end of the connection
};

namespace hflag {
constexpr uint8_t kChunked = 1;
constexpr uint8_t kHasLength = 2;
constexpr uint8_t kExpect100 = 4;
constexpr uint8_t kCompressed = 16;  // Content-Encoding gzip / deflate: the rules see the body inflated
constexpr uint8_t kUpgradeH2c = 32;  // Upgrade: h2c (a 101 with it hands the flow to the HTTP/2 decoder)
}  // namespace hflag

// Message::aux bits of a request: what the response framing depends on.
constexpr uint32_t kAuxHead = 1;
constexpr uint32_t kAuxConnect = 2;

struct Side {
  Message* msg = nullptr;  // in progress (may be null when the pool was empty)
  uint64_t start = 0;      // stream offset of the message's first byte
  uint64_t remaining = 0;
  uint64_t body_bytes = 0;
  uint64_t content_length = 0;
  Resync resync;           // lost sync (gap / garbage): skipping lines until a start line
  uint16_t status = 0;     // response status code
  Phase phase = Phase::kIdle;
  uint8_t flags = 0;
  bool in_message = false;
  // A response whose request is not known (lost, or sent before the capture began) announced a body: it
  // may answer a HEAD. If the bytes after its header start a status line, it had none.
  bool maybe_bodiless = false;
  uint8_t kept = 0;        // kKept* bits: header fields already in the message (the first of each is kept)
};

// Side::kept bits, one per header field keep() adds (a bit instead of a FieldList::has() scan per header).
namespace kept {
constexpr uint8_t kHost = 1, kCookie = 2, kUserAgent = 4, kSetCookie = 8, kContentType = 16, kAuthorization = 32,
                  kForwardedFor = 64;
}  // namespace kept

struct State {
  Side side[2];
  // The server answered while the request's body was still coming (nginx `return`, a 401 or 413 before an
  // upload ends): the request is read to its end all the same, and a response that ends first waits here
  // for it, so that the record has the whole request.
  Message* held = nullptr;
  uint16_t held_status = 0;
  bool answered_early = false;
  bool tunnel = false;  // after 101 Switching Protocols / CONNECT 2xx: not HTTP any more
  bool spoke_http1 = false;  // a start line was read (until then, HTTP/2 met mid-connection may take over)
};
static_assert(sizeof(State) <= kDecoderStateBytes);

constexpr std::string_view kMethods[] = {"GET ",     "POST ",  "PUT ",   "DELETE ", "HEAD ",
                                         "OPTIONS ", "PATCH ", "CONNECT ", "TRACE "};

// A header name equal to `lit` (lower case: letters and '-'), ASCII case ignored: letters compare with
// their 0x20 bit set (only an upper or lower case letter gives a lower case letter that way), the rest exactly.
// Compared a word at a time (the literal's words and masks fold at compile time): 4-byte words for names
// under 8 bytes, else 8-byte words, the last one overlapping the one before it.
template <typename W, size_t N>
[[gnu::always_inline]] inline bool name_words_are(const char* name, const char (&lit)[N]) {
  constexpr size_t kLen = N - 1;
  auto word_at = [&](size_t at) {
    W w;
    std::memcpy(&w, name + at, sizeof(W));
    W lw = 0, mask = 0;
    for (size_t i = 0; i < sizeof(W); ++i) {
      const char l = lit[at + i];
      lw |= static_cast<W>(static_cast<uint8_t>(l)) << (8 * i);
      if (l >= 'a' && l <= 'z') mask |= static_cast<W>(0x20) << (8 * i);
    }
    return (w | mask) == lw;
  };
  for (size_t at = 0; at + sizeof(W) < kLen; at += sizeof(W)) {
    if (!word_at(at)) return false;
  }
  return word_at(kLen - sizeof(W));
}

template <size_t N>
[[gnu::always_inline]] inline bool name_is(std::string_view name, const char (&lit)[N]) {
  static_assert(N - 1 >= 4, "header names compared here have at least 4 bytes");
  if (name.size() != N - 1) return false;
  if constexpr (N - 1 < 8) {
    return name_words_are<uint32_t>(name.data(), lit);
  } else {
    return name_words_are<uint64_t>(name.data(), lit);
  }
}

bool is_token_char(char c) { return (c >= 'A' && c <= 'Z') || c == '-' || c == '_'; }

// "METHOD SP target SP HTTP/1.x"
bool parse_request_line(std::string_view line, std::string_view* method, std::string_view* target,
                        std::string_view* version) {
  size_t sp1 = line.find(' ');
  if (sp1 == 0 || sp1 == std::string_view::npos || sp1 > 24) return false;
  for (size_t i = 0; i < sp1; ++i) {
    if (!is_token_char(line[i])) return false;
  }
  size_t sp2 = line.rfind(' ');
  if (sp2 == sp1) return false;
  std::string_view v = line.substr(sp2 + 1);
  if (v.size() != 8 || v.substr(0, 7) != "HTTP/1.") return false;
  *method = line.substr(0, sp1);
  *target = text::trim(line.substr(sp1 + 1, sp2 - sp1 - 1));
  *version = v.substr(5);
  return !target->empty();
}

// "HTTP/1.x SP ddd [SP reason]"
bool parse_status_line(std::string_view line, std::string_view* version, uint16_t* code, std::string_view* reason) {
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ') return false;
  if (!text::is_digit(line[9]) || !text::is_digit(line[10]) || !text::is_digit(line[11])) return false;
  if (line.size() > 12 && line[12] != ' ') return false;
  *version = line.substr(5, 3);
  *code = static_cast<uint16_t>((line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0'));
  *reason = line.size() > 13 ? text::trim(line.substr(13)) : std::string_view{};
  return true;
}

// Could an unterminated line begin a start line? A status line starts "HTTP/1."; a request line with a
// method token and a space. (A flow picked up mid-stream starts inside a body: those bytes are not a line.)
bool start_line_prefix(std::string_view s, bool request) {
  if (!request) {
    const std::string_view v = "HTTP/1.";
    return s.substr(0, v.size()) == v.substr(0, std::min(s.size(), v.size()));
  }
  const size_t sp = s.find(' ');
  const size_t token = std::min(sp, s.size());
  if (token == 0 || token > 24) return false;
  for (size_t i = 0; i < token; ++i) {
    if (!is_token_char(s[i])) return false;
  }
  return true;
}

// HTTP/2's own check of a chunk (through the registry: no decoder includes another's folder).
SniffResult h2_side(std::span<const std::byte> bytes) {
  static const ProtocolDescriptor* const h2 = protocol_descriptor(Protocol::kHttp2);
  return h2 != nullptr ? h2->confirm(bytes, Transport::kTcp) : SniffResult::kNo;
}

class HttpDecoder final : public Decoder {
 public:
  explicit HttpDecoder(const DecodeConfig& cfg) : redact_(cfg.redact_secrets) {}

  Protocol protocol() const override { return Protocol::kHttp; }

  static SniffResult sniff(std::span<const std::byte> chunk, Transport t) {
    if (t != Transport::kTcp) return SniffResult::kNo;
    std::string_view s = text::as_sv(chunk);
    if (s.size() >= 12 && s.substr(0, 7) == "HTTP/1." && s[8] == ' ' && text::is_digit(s[9]))
      return SniffResult::kResponse;
    for (std::string_view m : kMethods) {
      if (s.size() > m.size() && s.substr(0, m.size()) == m) {
        // the target of an origin-form request starts with '/', else absolute/authority/'*'
        char c = s[m.size()];
        if (c == '/' || c == '*' || (c >= 'a' && c <= 'z') || text::is_digit(c)) return SniffResult::kRequest;
      }
    }
    return SniffResult::kNo;
  }

  void open(FlowContext& ctx, uint64_t /*ts_ns*/) override { ctx.state<State>() = State{}; }

  void data(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts) override {
    State& st = ctx.state<State>();
    if (st.tunnel) return;
    Side& req = st.side[index_of(kReq)];
    if (dir == kResp && req.in_message && !st.answered_early && ctx.pending_count() == 0 &&
        !(req.flags & hflag::kExpect100)) {
      if (req.phase != Phase::kHeaders) {
        // The server answers before the request's body has ended (its length is known: Content-Length or
        // chunked): the rest of the body is still read, and the record waits for it.
        st.answered_early = true;
      } else {
        // The server answers a request whose head we have not seen end: as far as it is concerned the
        // request is complete; what we did not see of it was not captured.
        end_message(ctx, st, kReq, ctx.offset(kReq, {}), ts, record_flag::kTruncated);
      }
    } else if (st.held != nullptr &&
               (dir == kResp || (req.phase != Phase::kHeaders && !ctx.has_carry(kReq) &&
                                 sniff(bytes, Transport::kTcp) == SniffResult::kRequest))) {
      // A response waits for its request's body, and the next response begins, or a segment of the
      // client's starts with a request line (a client that gave up on the body it announced, as after a
      // 413): that body is not coming. It ended where this segment begins.
      end_message(ctx, st, kReq, dir == kReq ? ctx.offset(kReq, bytes) : ctx.offset(kReq, {}), ts,
                  record_flag::kTruncated);
    }
    Side& sd = st.side[index_of(dir)];
    // HTTP/2 with prior knowledge on an HTTP port (h2c on 8080): the client preface hands the flow over.
    if (dir == kReq && bytes.size() >= 3 && sd.phase == Phase::kIdle && !ctx.has_carry(dir) && ctx.offset(dir, bytes) == 0 &&
        text::as_sv(bytes).substr(0, 16) == std::string_view("PRI * HTTP/2.0\r\n").substr(0, std::min<size_t>(bytes.size(), 16)) &&
        ctx.hand_over(Protocol::kHttp2, dir, bytes, ts, nullptr))
      return;
    // HTTP/2 met mid-connection on an HTTP port (no preface in the capture): until a start line has been
    // read, a chunk HTTP/2's check takes for a HEADERS frame of this side hands the flow over.
    if (!st.spoke_http1 && sd.phase == Phase::kIdle && !ctx.has_carry(dir) && !bytes.empty() &&
        static_cast<uint8_t>(bytes[0]) < 'A' && h2_side(bytes) == (dir == kReq ? SniffResult::kRequest : SniffResult::kResponse) &&
        ctx.hand_over(Protocol::kHttp2, dir, bytes, ts, nullptr))
      return;
    if (sd.resync.lost && sd.phase == Phase::kIdle && ctx.has_carry(dir) &&
        sniff(bytes, Transport::kTcp) == (dir == kReq ? SniffResult::kRequest : SniffResult::kResponse)) {
      // Resyncing with an unterminated line kept (the tail of a message lost in a gap, e.g. a body): a
      // segment that starts with a start line is a message boundary, not the rest of that line.
      ctx.drop_carry(dir);
    }
    while (!bytes.empty() && !st.tunnel) {
      if (sd.in_message && sd.msg != nullptr) sd.msg->last_ts_ns = ts;
      switch (sd.phase) {
        case Phase::kIdle: idle(ctx, st, dir, bytes, ts); break;
        case Phase::kHeaders: headers(ctx, st, dir, bytes, ts); break;
        case Phase::kBody: {
          if (sd.maybe_bodiless) [[unlikely]] {
            sd.maybe_bodiless = false;
            if (start_line_prefix(text::as_sv(bytes), false)) {
              end_message(ctx, st, dir, ctx.offset(dir, bytes), ts, 0);  // a HEAD's answer: no body
              break;
            }
          }
          const size_t n = bytes.size() < sd.remaining ? bytes.size() : static_cast<size_t>(sd.remaining);
          if (sd.flags & hflag::kCompressed) ctx.content(dir, bytes.first(n), true);
          bytes = bytes.subspan(n);
          sd.remaining -= n;
          sd.body_bytes += n;
          if (sd.remaining == 0) end_message(ctx, st, dir, ctx.offset(dir, bytes), ts, 0);
          break;
        }
        case Phase::kChunkData: {
          const size_t n = bytes.size() < sd.remaining ? bytes.size() : static_cast<size_t>(sd.remaining);
          if (sd.flags & hflag::kCompressed) ctx.content(dir, bytes.first(n), true);
          bytes = bytes.subspan(n);
          sd.remaining -= n;
          sd.body_bytes += n;
          if (sd.remaining == 0) sd.phase = Phase::kChunkCrlf;
          break;
        }
        case Phase::kChunkSize:
        case Phase::kChunkCrlf:
        case Phase::kTrailers: chunk_lines(ctx, st, dir, bytes, ts); break;
        case Phase::kUntilClose:
          if (sd.flags & hflag::kCompressed) ctx.content(dir, bytes, true);
          sd.body_bytes += bytes.size();
          bytes = {};
          break;
      }
    }
  }

  void gap(FlowContext& ctx, Direction dir, uint64_t missing, uint64_t ts) override {
    State& st = ctx.state<State>();
    if (st.tunnel) return;
    Side& sd = st.side[index_of(dir)];
    const uint64_t at = ctx.offset(dir, {});
    if (sd.in_message) {
      if (sd.msg != nullptr) sd.msg->flags |= record_flag::kGap;
      if ((sd.phase == Phase::kBody || sd.phase == Phase::kChunkData) && missing <= sd.remaining) {
        sd.remaining -= missing;  // inside the body: skip the hole, keep the framing
        sd.body_bytes += missing;
        ctx.count_gap_absorbed();
        if (sd.remaining == 0) {
          if (sd.phase == Phase::kBody) {
            end_message(ctx, st, dir, at + missing, ts, 0);
          } else {
            sd.phase = Phase::kChunkCrlf;
          }
        }
        return;
      }
      if (sd.phase == Phase::kUntilClose) {
        sd.body_bytes += missing;
        ctx.count_gap_absorbed();
        return;
      }
      uint64_t end = at;
      if (sd.phase == Phase::kBody || sd.phase == Phase::kChunkData) {
        sd.body_bytes += sd.remaining;  // the body ended inside the hole
        end += sd.remaining;
      }
      end_message(ctx, st, dir, end, ts, record_flag::kGap);
    }
    // Framing lost: skip lines until a start line. Responses lost in the hole
    // take their requests' answers with them.
    sd.phase = Phase::kIdle;
    sd.flags = 0;
    sd.resync = Resync{};
    sd.resync.lose();
    if (dir == kResp) ctx.flush_pending(TimeoutCause::kGap, record_flag::kGap);
  }

  void fin(FlowContext& ctx, Direction dir, uint64_t ts) override {
    State& st = ctx.state<State>();
    Side& sd = st.side[index_of(dir)];
    if (!sd.in_message || st.tunnel) return;
    end_message(ctx, st, dir, ctx.offset(dir, {}), ts, sd.phase == Phase::kUntilClose ? 0 : record_flag::kTruncated);
  }

  void close(FlowContext& ctx, uint64_t ts) override {
    State& st = ctx.state<State>();
    for (Direction dir : {kReq, kResp}) {
      Side& sd = st.side[index_of(dir)];
      if (!sd.in_message) {
        // a start line cut by the end of the flow: too little to make a record of
        if (ctx.has_carry(dir) && !sd.resync.lost && !st.tunnel) ctx.count_partial_at_close();
        continue;
      }
      if (st.tunnel) {
        ctx.discard(sd.msg);
        sd = Side{};
        continue;
      }
      end_message(ctx, st, dir, ctx.offset(dir, {}), ts,
                  sd.phase == Phase::kUntilClose ? 0 : record_flag::kTruncated);
    }
    release_held(ctx, st);  // its request was dropped (a tunnel): the response stands alone
  }

 private:
  void idle(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes, uint64_t ts) {
    Side& sd = st.side[index_of(dir)];
    if (!ctx.has_carry(dir)) sd.start = ctx.offset(dir, bytes);
    const size_t before = bytes.size();
    std::string_view line;
    bool cut = false;
    if (ctx.next_line(dir, bytes, line, &cut) != Take::kOk) {
      if (sd.resync.lost) {
        sd.resync.add(before - bytes.size());
      } else if (ctx.has_carry(dir) && !start_line_prefix(text::as_sv(ctx.kept(dir)), dir == kReq)) {
        // Not the start of a message: framing is lost, so a segment that begins with a start line ends it.
        sd.resync.skip(ctx, before - bytes.size());
      }
      return;
    }
    if (line.empty() && !cut) return;  // stray CRLF between messages (allowed before a request)
    std::string_view a, b, c;
    uint16_t code = 0;
    const bool ok = dir == kReq ? parse_request_line(line, &a, &b, &c) : parse_status_line(line, &a, &code, &b);
    if (!ok) {
      sd.resync.skip(ctx, before - bytes.size());
      return;
    }
    sd.resync.found(ctx);
    st.spoke_http1 = true;
    const uint64_t start = sd.start;
    sd = Side{};
    sd.start = start;
    sd.in_message = true;
    sd.phase = Phase::kHeaders;
    Message* m = ctx.new_message(ts);
    sd.msg = m;
    if (m == nullptr) return;
    if (cut) m->flags |= record_flag::kTruncated;
    FieldList& f = m->fields;
    if (dir == kReq) {
      f.add_string("method", a, 24);
      std::string_view target = b;
      size_t q = target.find('?');
      f.add_string("path", target.substr(0, q), 512);
      if (q != std::string_view::npos) f.add_string("query", target.substr(q + 1), 256);
      f.add_string("version", c, 8);
      if (a == "HEAD") m->aux |= kAuxHead;
      if (a == "CONNECT") m->aux |= kAuxConnect;
    } else {
      f.add_uint("status_code", code);
      f.add_string("reason", b, 64);
      f.add_string("version", a, 8);
      sd.status = code;
    }
  }

  void headers(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes, uint64_t ts) {
    Side& sd = st.side[index_of(dir)];
    Message* const m = sd.msg;
    std::string_view line;
    bool cut = false;
    // Header lines one after the other here (not one per pass of data()'s loop: a header line costs
    // less than that round trip), up to the empty line or the end of the chunk.
    for (;;) {
      size_t colon = 0;
      if (ctx.next_line_colon(dir, bytes, line, &cut, &colon) != Take::kOk) return;
      if (cut && m != nullptr) m->flags |= record_flag::kTruncated;
      if (line.empty()) break;
      header(ctx, sd, dir, line, colon);
      if (bytes.empty()) return;
    }
    // End of headers: how is the body delimited?
    const uint64_t here = ctx.offset(dir, bytes);
    if (m != nullptr && here > sd.start) m->head_bytes = static_cast<uint32_t>(std::min<uint64_t>(here - sd.start, UINT32_MAX));
    if (dir == kReq) {
      if (sd.flags & hflag::kChunked) {
        sd.phase = Phase::kChunkSize;
      } else if ((sd.flags & hflag::kHasLength) && sd.content_length > 0) {
        sd.phase = Phase::kBody;
        sd.remaining = sd.content_length;
      } else {
        end_message(ctx, st, dir, here, ts, 0);
      }
      return;
    }
    if (sd.status == 101 && st.answered_early && st.side[index_of(kReq)].in_message) {
      // Switching protocols while the request's body is still open: the rest will not be HTTP/1.
      end_message(ctx, st, kReq, ctx.offset(kReq, {}), ts, record_flag::kTruncated);
    }
    const Message* req = m != nullptr ? ctx.answered_request(m) : ctx.front_request();
    const uint32_t req_aux = req != nullptr ? req->aux : 0;
    if (sd.status >= 100 && sd.status < 200 && sd.status != 101) {
      // Interim (100 Continue, 103 Early Hints): not the final response.
      ++ctx.counters().interim[static_cast<size_t>(Protocol::kHttp)];
      ctx.discard(m);
      sd = Side{};
      return;
    }
    if (sd.status == 101 && (sd.flags & hflag::kUpgradeH2c)) {
      // Upgrade: h2c accepted: the request is stream 1 of the HTTP/2 connection that follows (a copy: the
      // record of this exchange frees it); the rest of the flow goes to the HTTP/2 decoder.
      Message origin;
      if (req != nullptr) origin = *req;
      end_message(ctx, st, dir, here, ts, 0);
      if (ctx.hand_over(Protocol::kHttp2, dir, bytes, ts, req != nullptr ? &origin : nullptr)) {
        bytes = {};  // our state is the HTTP/2 decoder's now
        return;
      }
      st.tunnel = true;
      return;
    }
    if (sd.status == 101 || ((req_aux & kAuxConnect) && sd.status >= 200 && sd.status < 300)) {
      end_message(ctx, st, dir, here, ts, 0);
      st.tunnel = true;  // the connection carries another protocol from here on
      return;
    }
    if ((req_aux & kAuxHead) || sd.status == 204 || sd.status == 304) {
      end_message(ctx, st, dir, here, ts, 0);
    } else if (sd.flags & hflag::kChunked) {
      sd.phase = Phase::kChunkSize;
    } else if (sd.flags & hflag::kHasLength) {
      if (sd.content_length == 0) {
        end_message(ctx, st, dir, here, ts, 0);
      } else {
        sd.phase = Phase::kBody;
        sd.remaining = sd.content_length;
        sd.maybe_bodiless = req == nullptr;
      }
    } else {
      sd.phase = Phase::kUntilClose;
    }
  }

  // `colon`: where the line's first ':' is (npos: none).
  void header(FlowContext& ctx, Side& sd, Direction dir, std::string_view line, size_t colon) {
    if (colon == std::string_view::npos || colon == 0) {
      ctx.count_decode_error();  // not a header; keep going (obs-fold or junk)
      return;
    }
    const std::string_view name = line.substr(0, colon);
    // The value is trimmed only for the headers that are read (most are not).
    struct LazyValue {
      std::string_view raw;
      operator std::string_view() const { return text::trim(raw); }
    } const value{line.substr(colon + 1)};
    Message* m = sd.msg;
    FieldList* f = m != nullptr ? &m->fields : nullptr;
    auto keep = [&](uint8_t bit, const char* key, std::string_view v, size_t max) {
      if (f != nullptr && !(sd.kept & bit)) f->add_string(key, v, max);
      sd.kept |= bit;
    };
    // The headers read, by name length first (most names of a message are none of them).
    switch (name.size()) {
      case 4:
        if (name_is(name, "host") && dir == kReq) keep(kept::kHost, "host", value, 128);
        break;
      case 6:
        if (name_is(name, "expect")) {
          if (text::icontains(value, "100-continue")) sd.flags |= hflag::kExpect100;
        } else if (name_is(name, "cookie") && dir == kReq) {
          keep(kept::kCookie, "cookie", redact_ ? "<redacted>" : std::string_view(value), 256);
        }
        break;
      case 7:
        if (name_is(name, "upgrade") && dir == kResp && text::icontains(value, "h2c")) sd.flags |= hflag::kUpgradeH2c;
        break;
      case 10:
        if (dir == kReq) {
          if (name_is(name, "user-agent")) keep(kept::kUserAgent, "user_agent", value, 256);
        } else if (name_is(name, "set-cookie")) {
          keep(kept::kSetCookie, "set_cookie", redact_ ? "<redacted>" : std::string_view(value), 256);
        }
        break;
      case 12:
        if (name_is(name, "content-type")) keep(kept::kContentType, "content_type", value, 128);
        break;
      case 13:
        if (name_is(name, "authorization") && dir == kReq)
          keep(kept::kAuthorization, "authorization", redact_ ? "<redacted>" : std::string_view(value), 256);
        break;
      case 14:
        if (name_is(name, "content-length") && !(sd.flags & hflag::kHasLength)) {
          uint64_t n = 0;
          if (text::parse_u64(value, &n)) {
            sd.flags |= hflag::kHasLength;
            sd.content_length = n;
            if (f != nullptr) f->add_uint("content_length", n);
          } else {
            ctx.count_decode_error();
          }
        }
        break;
      case 15:
        if (name_is(name, "x-forwarded-for") && dir == kReq) keep(kept::kForwardedFor, "x_forwarded_for", value, 128);
        break;
      case 16:
        if (name_is(name, "content-encoding") &&
            (text::icontains(value, "gzip") || text::icontains(value, "deflate")))
          sd.flags |= hflag::kCompressed;
        break;
      case 17:
        // chunked must be the last coding; anything else with it is unusual, still framed as chunked
        if (name_is(name, "transfer-encoding") && text::icontains(value, "chunked")) sd.flags |= hflag::kChunked;
        break;
      default: break;
    }
  }

  void chunk_lines(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes, uint64_t ts) {
    Side& sd = st.side[index_of(dir)];
    std::string_view line;
    bool cut = false;
    if (ctx.next_line(dir, bytes, line, &cut) != Take::kOk) return;
    if (sd.phase == Phase::kChunkCrlf) {
      sd.phase = Phase::kChunkSize;  // the (empty) line after chunk data
      if (!line.empty()) ctx.count_decode_error();
      return;
    }
    if (sd.phase == Phase::kTrailers) {
      if (line.empty()) end_message(ctx, st, dir, ctx.offset(dir, bytes), ts, 0);
      return;
    }
    std::string_view hex = text::trim(line.substr(0, line.find(';')));
    uint64_t size = 0;
    if (!text::parse_hex(hex, &size)) {
      ctx.count_decode_error();  // lost the chunk framing: end here, resync on the next start line
      end_message(ctx, st, dir, ctx.offset(dir, bytes), ts, record_flag::kTruncated);
      sd.flags = 0;
      sd.resync.lose();
      return;
    }
    if (size == 0) {
      sd.phase = Phase::kTrailers;
    } else {
      sd.phase = Phase::kChunkData;
      sd.remaining = size;
    }
  }

  // The message of `dir` ends at stream offset `end`.
  void end_message(FlowContext& ctx, State& st, Direction dir, uint64_t end, uint64_t ts, uint32_t flags) {
    Side& sd = st.side[index_of(dir)];
    Message* m = sd.msg;
    const uint16_t status = sd.status;
    const uint64_t body = sd.body_bytes;
    const uint64_t start = sd.start;
    sd = Side{};
    if (m != nullptr) {
      m->flags |= flags;
      m->end_span(start, end, ts);
      m->fields.set_uint("body_bytes", body);
    }
    if (dir == kReq) {
      ctx.commit_request(m);
      st.answered_early = false;
      release_held(ctx, st);  // its response ended first
    } else if (m != nullptr && st.held == nullptr && st.answered_early && st.side[index_of(kReq)].in_message &&
               status != 101) {
      st.held = m;  // completed when the request's body ends (or the flow does)
      st.held_status = status;
    } else {
      ctx.complete_response(m, status_of(status));
    }
  }

  static RecordStatus status_of(uint16_t code) { return code >= 400 ? RecordStatus::kError : RecordStatus::kOk; }

  // The response waiting for its request's body (State::held), if any, completed now.
  static void release_held(FlowContext& ctx, State& st) {
    if (st.held != nullptr) ctx.complete_response(std::exchange(st.held, nullptr), status_of(st.held_status));
  }

  bool redact_;
};

}  // namespace

namespace http {

std::unique_ptr<Decoder> make_decoder(const DecodeConfig& cfg) { return std::make_unique<HttpDecoder>(cfg); }
SniffResult confirm(std::span<const std::byte> chunk, Transport t) { return HttpDecoder::sniff(chunk, t); }

}  // namespace http

}  // namespace spanfeed
