// SMTP decoder (RFC 5321): the template line protocol: commands, multi-line replies, DATA/BDAT bodies, AUTH, STARTTLS.
// Runs on a worker lcore; per-flow state lives in the builder's preallocated array; never allocates.
//
// Copy this file to add a line protocol (docs/adding-a-protocol.md). The shape:
//   client bytes -> command lines (FlowContext::next_line) -> one request Message per command, queued in order;
//   server bytes -> reply lines -> one response Message per reply, paired with the oldest queued request (FIFO);
//   gap -> absorb it inside a counted payload, else finish what was in progress and resynchronise;
//   fin / close -> finish what was in progress, flagged `truncated` (the builder turns what is still queued
//   into `timeout` records).
#include "smtp.h"

#include "spanfeed/decoder.h"
#include "text_util.h"

namespace spanfeed {
namespace {

constexpr Direction kReq = Direction::kClientToServer;
constexpr Direction kResp = Direction::kServerToClient;
constexpr size_t kArgMax = 256;      // RFC 5321 4.5.3.1.3: a path is at most 256 octets
constexpr size_t kTextMax = 256;     // first reply line kept
constexpr size_t kVerbMax = 16;      // longest verb taken as a command (STARTTLS, XFORWARD, ...)
constexpr uint32_t kAuxStartTls = 1;  // Message::aux of a STARTTLS request: a 220 to it starts TLS

enum class Verb : uint8_t { kOther, kHelo, kData, kBdat, kAuth, kStartTls, kMail, kRcpt, kKnown };

struct VerbInfo {
  std::string_view name;
  Verb verb;
};
constexpr VerbInfo kVerbs[] = {
    {"HELO", Verb::kHelo}, {"EHLO", Verb::kHelo}, {"MAIL", Verb::kMail},         {"RCPT", Verb::kRcpt},
    {"DATA", Verb::kData}, {"BDAT", Verb::kBdat}, {"AUTH", Verb::kAuth},         {"STARTTLS", Verb::kStartTls},
    {"RSET", Verb::kKnown}, {"NOOP", Verb::kKnown}, {"QUIT", Verb::kKnown},     {"VRFY", Verb::kKnown},
    {"EXPN", Verb::kKnown}, {"HELP", Verb::kKnown}, {"XCLIENT", Verb::kKnown},  {"XFORWARD", Verb::kKnown},
};

Verb verb_of(std::string_view upper) {
  for (const VerbInfo& v : kVerbs) {
    if (v.name == upper) return v.verb;
  }
  return Verb::kOther;
}

// What the client side is reading.
enum class Phase : uint8_t {
  kCommand,  // command lines
  kBody,     // DATA: the message up to CRLF.CRLF (counted, not kept)
  kChunk,    // BDAT: `payload` bytes of chunk left (counted, not kept)
  kAuth,     // AUTH: the client's answers to 334 challenges (secrets: counted, never parsed)
};

struct Client {
  Message* held = nullptr;  // DATA / AUTH / BDAT: queued only when its payload ends or its final reply comes
  uint64_t start = 0;       // stream offset of the command line being read / of the held command
  uint64_t end = 0;         // stream offset just past the held command's bytes so far
  uint64_t payload = 0;     // DATA: body bytes so far; BDAT: chunk bytes left
  Phase phase = Phase::kCommand;
  uint8_t match = 0;        // DATA: bytes of "\r\n.\r\n" matched so far
  Resync resync;            // after a gap / garbage: wait for a known command
};

struct Server {
  Message* msg = nullptr;  // reply being read (nullptr also when the pool was empty)
  uint64_t start = 0;      // stream offset of its first line
  uint32_t lines = 0;      // > 0: a reply is in progress
  uint16_t code = 0;
  Resync resync;           // after a gap / garbage: wait for a reply line
};

struct State {
  Client c;
  Server s;
  bool client_spoke = false;  // a command was seen: a later 220 is no greeting
  bool greeted = false;       // a reply was seen
  bool encrypted = false;     // STARTTLS accepted: the rest of the flow is TLS
};
static_assert(sizeof(State) <= kDecoderStateBytes);

// "250-text" / "250 text" / "250": code and whether more lines follow.
bool parse_reply(std::string_view line, uint16_t* code, bool* more) {
  if (line.size() < 3 || line[0] < '2' || line[0] > '5' || !text::is_digit(line[1]) || !text::is_digit(line[2]))
    return false;
  if (line.size() > 3 && line[3] != ' ' && line[3] != '-') return false;
  *code = static_cast<uint16_t>((line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0'));
  *more = line.size() > 3 && line[3] == '-';
  return true;
}

// MAIL FROM:<a@b> SIZE=9 / RCPT TO:<c@d>: the address between < >; "<>" (null sender) gives "".
std::string_view path_of(std::string_view rest) {
  const size_t lt = rest.find('<');
  if (lt != std::string_view::npos) {
    rest.remove_prefix(lt + 1);
    return rest.substr(0, rest.find('>'));
  }
  const size_t colon = rest.find(':');  // FROM:a@b (no brackets, tolerated by servers)
  if (colon != std::string_view::npos) rest.remove_prefix(colon + 1);
  rest = text::trim(rest);
  return text::next_token(rest);
}

class SmtpDecoder final : public Decoder {
 public:
  explicit SmtpDecoder(const DecodeConfig& cfg) : redact_(cfg.redact_secrets) {}

  Protocol protocol() const override { return Protocol::kSmtp; }

  // Structural check of a flow's first chunk (detection on unmapped ports).
  static SniffResult sniff(std::span<const std::byte> chunk, Transport t) {
    if (t != Transport::kTcp) return SniffResult::kNo;
    const std::string_view s = text::as_sv(chunk);
    const size_t nl = s.find('\n');
    const std::string_view line = s.substr(0, nl);
    // The server greeting: "220 " or "220-", and "SMTP" on that line (an FTP server greets with 220 too).
    if (line.size() >= 4 && line.substr(0, 3) == "220" && (line[3] == ' ' || line[3] == '-') &&
        text::icontains(line, "smtp"))
      return SniffResult::kResponse;
    // A client seen from its first command: "EHLO name" / "HELO name", whole line.
    if (nl != std::string_view::npos && line.size() > 5 && line[4] == ' ' &&
        (text::iequals(line.substr(0, 4), "EHLO") || text::iequals(line.substr(0, 4), "HELO")))
      return SniffResult::kRequest;
    return SniffResult::kNo;
  }

  // A new flow: per-flow state is ours to set (the builder zeroed it).
  void open(FlowContext& ctx, uint64_t /*ts*/) override { ctx.state<State>() = State{}; }

  void data(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts) override {
    State& st = ctx.state<State>();
    while (!bytes.empty()) {
      // STARTTLS accepted: what follows is TLS: counted, not decoded (as MySQL / PostgreSQL after SSLRequest).
      if (st.encrypted) {
        ctx.counters().undecoded_bytes += bytes.size();
        return;
      }
      if (dir == kResp) {
        reply_line(ctx, st, bytes, ts);
      } else if (st.c.phase == Phase::kCommand) {
        command_line(ctx, st, bytes, ts);
      } else {
        payload(ctx, st, bytes, ts);
      }
    }
  }

  void gap(FlowContext& ctx, Direction dir, uint64_t missing, uint64_t ts) override {
    State& st = ctx.state<State>();
    if (st.encrypted) return;
    const uint64_t at = ctx.offset(dir, {});  // where the hole starts
    if (dir == kReq) {
      Client& c = st.c;
      if (c.held != nullptr) c.held->flags |= record_flag::kGap;
      // Inside a counted payload (DATA body, BDAT chunk, AUTH answers): skip the hole, the command goes on.
      const bool absorbed = c.phase == Phase::kBody || c.phase == Phase::kAuth ||
                            (c.phase == Phase::kChunk && missing <= c.payload);
      if (absorbed) {
        ctx.count_gap_absorbed();
        c.end = at + missing;
        if (c.phase == Phase::kBody) {
          c.payload += missing;
          c.match = 0;  // a terminator cut by the hole is not one
        } else if (c.phase == Phase::kChunk && (c.payload -= missing) == 0) {
          release_held(ctx, c, 0);  // the chunk ended with the hole
        }
        return;
      }
      // Elsewhere: a command line was cut (its start is gone): queue what was held, wait for a known command.
      if (c.held != nullptr) release_held(ctx, c, record_flag::kGap);
      c = Client{};
      c.resync.lose();
      return;
    }
    // Reply side: a reply in progress ends here (flag `gap`) and takes the oldest request...
    if (st.s.lines > 0) finish_reply(ctx, st, at, ts, record_flag::kGap);
    st.s = Server{};
    st.s.resync.lose();
    // ...and the replies of the other queued requests were in the hole: they become `timeout` records now
    // (keeping them would shift every later pairing).
    ctx.flush_pending(TimeoutCause::kGap, record_flag::kGap);
  }

  void fin(FlowContext& ctx, Direction dir, uint64_t ts) override {
    State& st = ctx.state<State>();
    // The flow end cuts what was in progress: flag `truncated`. A held command is queued (the server may
    // still answer; else the builder makes it a `timeout` at close), also after a switch to TLS (a message
    // never goes back to the pool by itself); a reply takes the oldest request.
    if (dir == kReq && st.c.held != nullptr) release_held(ctx, st.c, record_flag::kTruncated);
    if (dir == kResp && st.s.lines > 0) finish_reply(ctx, st, ctx.offset(kResp, {}), ts, record_flag::kTruncated);
  }

  // Last call: the client side first, so a reply cut by the close can still answer a held command.
  void close(FlowContext& ctx, uint64_t ts) override {
    const State& st = ctx.state<State>();
    // A first line cut by the end of the flow (a command, a reply's first line): too little for a record.
    const bool cmd_cut = st.c.phase == Phase::kCommand && !st.c.resync.lost && ctx.has_carry(kReq);
    const bool reply_cut = st.s.lines == 0 && !st.s.resync.lost && ctx.has_carry(kResp);
    if (!st.encrypted && cmd_cut) ctx.count_partial_at_close();
    if (!st.encrypted && reply_cut) ctx.count_partial_at_close();
    for (Direction dir : {kReq, kResp}) fin(ctx, dir, ts);
  }

 private:
  // ---------------------------------------------------------------- client: commands

  void command_line(FlowContext& ctx, State& st, std::span<const std::byte>& bytes, uint64_t ts) {
    Client& c = st.c;
    // 1. A line may span chunks: it starts where its first piece did (nothing carried yet).
    if (!ctx.has_carry(kReq)) c.start = ctx.offset(kReq, bytes);
    const size_t before = bytes.size();
    std::string_view line;
    bool cut = false;
    // 2. One whole line (zero-copy, or joined in the flow's carry buffer), or kNeedMore: kept for the next chunk.
    if (ctx.next_line(kReq, bytes, line, &cut) != Take::kOk) {
      if (c.resync.lost) c.resync.add(before - bytes.size());
      return;
    }
    // 3. The verb: letters only, upper-cased into a stack buffer.
    std::string_view rest = line;
    const std::string_view word = text::next_token(rest);
    char up[kVerbMax];
    bool letters = !word.empty() && word.size() <= kVerbMax;
    for (size_t i = 0; letters && i < word.size(); ++i) {
      up[i] = text::upper(word[i]);
      letters = up[i] >= 'A' && up[i] <= 'Z';
    }
    const std::string_view verb = letters ? std::string_view(up, word.size()) : std::string_view();
    const Verb v = verb_of(verb);
    // 4. Not a command (or, after a gap, not a known one): count it once, skip lines until one comes.
    if (verb.empty() || (c.resync.lost && v == Verb::kOther)) {
      c.resync.skip(ctx, before - bytes.size());
      return;
    }
    c.resync.found(ctx);
    st.client_spoke = true;
    // 5. One request message per command, its fields bounded (the message's arena is fixed).
    Message* m = ctx.new_message(ts);
    if (m != nullptr) {
      if (cut) m->flags |= record_flag::kTruncated;  // longer than carry_bytes: the rest was skipped
      m->fields.add_string("command", verb);
      add_argument(m->fields, v, text::trim(rest));
    }
    const uint64_t end = ctx.offset(kReq, bytes);
    switch (v) {
      // 6a. DATA: the body follows the 354; held until its CRLF.CRLF (or until a final reply refuses it).
      case Verb::kData:
        hold(c, m, end, Phase::kBody);
        c.match = 2;  // the DATA line's CRLF counts: an empty body is just ".\r\n"
        return;
      // 6b. AUTH: 334 challenges and the client's answers go on until a final reply: held until then.
      case Verb::kAuth: hold(c, m, end, Phase::kAuth); return;
      // 6c. BDAT <size> [LAST] (RFC 3030): the chunk follows at once; held until it has passed.
      case Verb::kBdat: {
        std::string_view args = rest;
        uint64_t size = 0;
        if (!text::parse_u64(text::next_token(args), &size)) {
          ctx.count_decode_error();  // no size: the chunk cannot be skipped; the reply still pairs
          break;
        }
        if (m != nullptr) m->fields.add_uint("data_bytes", size);
        if (size == 0) break;
        hold(c, m, end, Phase::kChunk);
        c.payload = size;
        return;
      }
      case Verb::kStartTls:
        if (m != nullptr) m->aux = kAuxStartTls;
        break;
      default: break;
    }
    // 7. Queue it: replies pair in order (pipelining, RFC 2920, is just several queued at once).
    queue(ctx, m, c.start, end, ts, 0);
  }

  void add_argument(FieldList& f, Verb v, std::string_view rest) {
    if (rest.empty()) return;
    switch (v) {
      case Verb::kMail:
      case Verb::kRcpt: f.add_string("argument", path_of(rest), kArgMax); return;
      case Verb::kHelo: f.add_string("argument", text::next_token(rest), kArgMax); return;
      case Verb::kAuth: {
        // "AUTH PLAIN <initial response>": the mechanism is kept, the credentials are not.
        const std::string_view all = rest;
        const std::string_view mech = text::next_token(rest);
        if (rest.empty() || !redact_) {
          f.add_string("argument", all, kArgMax);
          return;
        }
        char buf[48];
        const std::string_view tail = " <redacted>";
        const size_t n = mech.size() < sizeof(buf) - tail.size() ? mech.size() : sizeof(buf) - tail.size();
        for (size_t i = 0; i < n; ++i) buf[i] = mech[i];
        for (size_t i = 0; i < tail.size(); ++i) buf[n + i] = tail[i];
        f.add_string("argument", std::string_view(buf, n + tail.size()));
        return;
      }
      default: f.add_string("argument", rest, kArgMax); return;
    }
  }

  void hold(Client& c, Message* m, uint64_t end, Phase phase) {
    c.held = m;
    c.end = end;
    c.payload = 0;
    c.phase = phase;
  }

  // ---------------------------------------------------------------- client: payloads (counted, never kept)

  void payload(FlowContext& ctx, State& st, std::span<const std::byte>& bytes, uint64_t ts) {
    Client& c = st.c;
    if (c.held != nullptr) c.held->last_ts_ns = ts;
    size_t n = bytes.size();
    bool done = false;
    if (c.phase == Phase::kChunk) {  // BDAT: skip by count
      if (n > c.payload) n = static_cast<size_t>(c.payload);
      c.payload -= n;
      done = c.payload == 0;
    } else if (c.phase == Phase::kBody) {  // DATA: find CRLF.CRLF, one byte at a time, across chunks
      const auto* p = reinterpret_cast<const char*>(bytes.data());
      for (size_t i = 0; i < n; ++i) {
        c.match = next_match(c.match, p[i]);
        if (c.match == 5) {
          n = i + 1;
          done = true;
          break;
        }
      }
      c.payload += n;
    }  // kAuth: every byte is part of the exchange until the final reply (finish_reply)
    bytes = bytes.subspan(n);
    c.end = ctx.offset(kReq, bytes);
    if (!done) return;
    // The payload ended: queue the command; its final reply pairs with it.
    if (c.held != nullptr && c.phase == Phase::kBody) {
      c.held->fields.add_uint("data_bytes", c.payload - 3);  // the terminating ".\r\n" is no message byte
    }
    release_held(ctx, c, 0);
  }

  // State machine for "\r\n.\r\n" (the terminator of a DATA body; a "." line never ends it with bare LFs).
  static uint8_t next_match(uint8_t m, char ch) {
    if (ch == '\r') return m == 3 ? 4 : 1;
    if (ch == '\n') return (m == 1 || m == 4) ? static_cast<uint8_t>(m + 1) : 0;
    if (ch == '.') return m == 2 ? 3 : 0;
    return 0;
  }

  void release_held(FlowContext& ctx, Client& c, uint32_t flags) {
    Message* m = c.held;
    const uint64_t start = c.start, end = c.end, payload = c.payload;
    const bool mid_payload = c.phase == Phase::kChunk || (c.phase == Phase::kBody && c.match != 5 && c.payload > 0);
    c.held = nullptr;
    c.phase = Phase::kCommand;
    c.payload = 0;
    c.match = 0;
    if (m == nullptr) return;
    if (mid_payload) {
      flags |= record_flag::kTruncated;
      if (!m->fields.has("data_bytes")) m->fields.add_uint("data_bytes", payload);
    }
    queue(ctx, m, start, end, m->last_ts_ns, flags);
  }

  void queue(FlowContext& ctx, Message* m, uint64_t start, uint64_t end, uint64_t ts, uint32_t flags) {
    if (m == nullptr) return;  // the pool was empty (counted): nothing to pair with
    m->flags |= flags;
    m->end_span(start, end, ts);
    ctx.commit_request(m);
  }

  // ---------------------------------------------------------------- server: replies

  void reply_line(FlowContext& ctx, State& st, std::span<const std::byte>& bytes, uint64_t ts) {
    Server& s = st.s;
    // 1. A reply starts where its first line's first piece did.
    if (s.lines == 0 && !ctx.has_carry(kResp)) s.start = ctx.offset(kResp, bytes);
    const size_t before = bytes.size();
    std::string_view line;
    bool cut = false;
    // 2. One whole line, or kNeedMore (kept).
    if (ctx.next_line(kResp, bytes, line, &cut) != Take::kOk) {
      if (s.resync.lost) s.resync.add(before - bytes.size());
      return;
    }
    uint16_t code = 0;
    bool more = false;
    // 3. Not a reply line: a reply in progress ends here (truncated); count once, skip to the next reply line.
    if (!parse_reply(line, &code, &more)) {
      if (s.lines > 0) finish_reply(ctx, st, ctx.offset(kResp, bytes), ts, record_flag::kTruncated);
      st.s.resync.skip(ctx, before - bytes.size());
      return;
    }
    s.resync.found(ctx);
    // 4. The first line opens the response: code and text; the next ones ("250-...") are counted.
    if (s.lines == 0) {
      s.code = code;
      s.msg = ctx.new_message(ts);
      if (s.msg != nullptr) {
        s.msg->fields.add_uint("code", code);
        s.msg->fields.add_string("text", line.size() > 4 ? line.substr(4) : std::string_view(), kTextMax);
      }
    }
    ++s.lines;
    if (s.msg != nullptr) {
      s.msg->last_ts_ns = ts;
      if (cut) s.msg->flags |= record_flag::kTruncated;
    }
    // 5. "250-": more lines follow; "250 ": the reply is complete.
    if (!more) finish_reply(ctx, st, ctx.offset(kResp, bytes), ts, 0);
  }

  void finish_reply(FlowContext& ctx, State& st, uint64_t end, uint64_t ts, uint32_t flags) {
    Message* m = st.s.msg;
    const uint16_t code = st.s.code;
    const uint32_t lines = st.s.lines;
    const uint64_t start = st.s.start;
    st.s = Server{};
    // 1. 3xx is intermediate (354 "send the body", 334 AUTH challenge): the command goes on; not a record.
    if (code >= 300 && code < 400) {
      ++ctx.counters().interim[static_cast<size_t>(Protocol::kSmtp)];
      ctx.discard(m);
      return;
    }
    if (m != nullptr) {
      m->flags |= flags;
      m->end_span(start, end, ts);
      m->fields.add_uint("lines", lines);
    }
    if (ctx.pending_count() == 0) {
      if (st.c.held != nullptr) {
        // 2. The final reply to a held command: DATA refused before 354, an AUTH exchange's end, or a body
        //    whose terminator we did not see. Queue it now so this reply pairs with it.
        release_held(ctx, st.c, 0);
      } else if (!st.greeted && !st.client_spoke && (code == 220 || code == 421 || code == 554)) {
        // 3. The greeting answers the connection itself: a CONNECT request of 0 bytes, so the ledger pairs it
        //    (a refusal at connect, 421 / 554, is an `error` record, not an `unmatched` one).
        Message* q = ctx.new_message(m != nullptr ? m->first_ts_ns : ts);
        if (q != nullptr) {
          q->fields.add_string("command", "CONNECT");
          queue(ctx, q, 0, 0, q->first_ts_ns, 0);
        }
      }
    }
    st.greeted = true;
    // 4. A 220 to STARTTLS: the record is emitted, then the rest of the flow is TLS.
    const Message* q = ctx.front_request();
    const bool tls = code == 220 && q != nullptr && q->aux == kAuxStartTls;
    // 5. Pair with the oldest queued request (none: `unmatched`); 4xx / 5xx are `error`.
    ctx.complete_response(m, code >= 400 ? RecordStatus::kError : RecordStatus::kOk);
    if (tls) {
      ++ctx.counters().encrypted_flows;
      st.encrypted = true;
    }
  }

  bool redact_;
};

}  // namespace

namespace smtp {

std::unique_ptr<Decoder> make_decoder(const DecodeConfig& cfg) { return std::make_unique<SmtpDecoder>(cfg); }
SniffResult confirm(std::span<const std::byte> chunk, Transport t) { return SmtpDecoder::sniff(chunk, t); }

}  // namespace smtp

}  // namespace spanfeed
