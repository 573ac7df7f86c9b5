// DNS decoder (UDP datagrams and TCP length-prefixed messages): question, rcode, answers; matching by message id.
// Runs on a worker lcore; per-flow state in the builder's array; one reused scratch string per worker (reserved once).
#include <arpa/inet.h>

#include <cstdio>
#include <cstring>

#include "dns.h"

#include "spanfeed/decoder.h"
#include "text_util.h"

namespace spanfeed {
namespace {

constexpr size_t kHeaderBytes = 12;
constexpr size_t kMaxName = 255;
constexpr int kMaxPointerJumps = 32;  // compression pointers followed per name: loops end here
constexpr size_t kAnswersJsonMax = 900;  // answers array kept below the field arena

enum class Phase : uint8_t {
  kLength,   // TCP: the 2-byte length prefix
  kMessage,  // TCP: the message itself (`len` bytes)
  kSkip,     // TCP: `skip` bytes of a message over the carry cap (its head was parsed)
};

struct Side {
  uint64_t start = 0;
  uint64_t first_ts = 0;
  uint64_t skip = 0;     // Phase::kSkip: bytes of an over-long message still to skip
  uint32_t len = 0;
  Phase phase = Phase::kLength;
  Resync resync;         // framing lost (a gap): wait for a segment that starts a message
  bool in_message = false;
};

struct State {
  Side side[2];
};
static_assert(sizeof(State) <= kDecoderStateBytes);

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

std::string_view type_name(uint16_t t, char (&buf)[16]) {
  switch (t) {
    case 1: return "A";
    case 2: return "NS";
    case 5: return "CNAME";
    case 6: return "SOA";
    case 12: return "PTR";
    case 13: return "HINFO";
    case 15: return "MX";
    case 16: return "TXT";
    case 28: return "AAAA";
    case 33: return "SRV";
    case 35: return "NAPTR";
    case 39: return "DNAME";
    case 41: return "OPT";
    case 43: return "DS";
    case 46: return "RRSIG";
    case 47: return "NSEC";
    case 48: return "DNSKEY";
    case 50: return "NSEC3";
    case 52: return "TLSA";
    case 64: return "SVCB";
    case 65: return "HTTPS";
    case 99: return "SPF";
    case 251: return "IXFR";
    case 252: return "AXFR";
    case 255: return "ANY";
    case 257: return "CAA";
    default: break;
  }
  int n = std::snprintf(buf, sizeof(buf), "TYPE%u", static_cast<unsigned>(t));  // RFC 3597 text form
  return std::string_view(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

std::string_view rcode_name(unsigned r, char (&buf)[16]) {
  static constexpr std::string_view kNames[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
                                                "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"};
  if (r < std::size(kNames)) return kNames[r];
  int n = std::snprintf(buf, sizeof(buf), "RCODE%u", r);
  return std::string_view(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

// Reads a (possibly compressed) name at `off`. Writes dotted text into out
// (no trailing dot; "." for the root) and the offset after the name in the
// record into *next. False when malformed (bounds, loops, length).
bool read_name(const uint8_t* msg, size_t len, size_t off, char* out, size_t* out_len, size_t* next) {
  size_t n = 0;
  int jumps = 0;
  bool jumped = false;
  size_t pos = off;
  while (true) {
    if (pos >= len) return false;
    const uint8_t c = msg[pos];
    if (c == 0) {
      if (!jumped) *next = pos + 1;
      break;
    }
    if ((c & 0xC0) == 0xC0) {
      if (pos + 1 >= len || ++jumps > kMaxPointerJumps) return false;
      if (!jumped) *next = pos + 2;
      jumped = true;
      pos = static_cast<size_t>((c & 0x3F) << 8 | msg[pos + 1]);
      continue;
    }
    if ((c & 0xC0) != 0) return false;  // 0x40 / 0x80 label types: obsolete
    if (pos + 1 + c > len || n + c + 1 > kMaxName) return false;
    if (n > 0) out[n++] = '.';
    std::memcpy(out + n, msg + pos + 1, c);
    n += c;
    pos += 1 + static_cast<size_t>(c);
  }
  if (n == 0) out[n++] = '.';
  *out_len = n;
  return true;
}

// Plausible DNS header + first question: the sniff, and TCP resync.
bool looks_like_dns(const uint8_t* p, size_t len) {
  if (len < kHeaderBytes + 5) return false;
  const unsigned opcode = (p[2] >> 3) & 0x0F;
  const uint16_t qd = be16(p + 4), an = be16(p + 6), ns = be16(p + 8), ar = be16(p + 10);
  if (opcode > 5 || qd != 1 || an > 256 || ns > 256 || ar > 256) return false;
  if ((p[2] & 0x80) == 0 && (an != 0 || ns != 0)) return false;  // a query carries no answers
  char name[kMaxName + 1];
  size_t nlen = 0, next = 0;
  if (!read_name(p, len, kHeaderBytes, name, &nlen, &next)) return false;
  if (next + 4 > len) return false;
  const uint16_t qclass = be16(p + next + 2);
  return qclass == 1 || qclass == 3 || qclass == 4 || qclass == 255 || (qclass & 0x7FFF) == 1;
}

class DnsDecoder final : public Decoder {
 public:
  explicit DnsDecoder(const DecodeConfig& cfg) : max_answers_(static_cast<uint32_t>(cfg.option(Protocol::kDns, "max_answers"))) {
    scratch_.reserve(4096);  // once per worker; answers are kept under kAnswersJsonMax
  }

  Protocol protocol() const override { return Protocol::kDns; }
  bool matches_by_key() const override { return true; }  // by the 16-bit id

  static SniffResult sniff(std::span<const std::byte> chunk, Transport t) {
    const auto* p = reinterpret_cast<const uint8_t*>(chunk.data());
    size_t len = chunk.size();
    if (t == Transport::kTcp) {
      // Whole length-prefixed messages of one kind (a resolver sends its A and AAAA queries in one
      // segment); a last one the segment cuts is not judged.
      if (len < 2 || be16(p) > len - 2) return SniffResult::kNo;
      const size_t first = be16(p);
      if (!looks_like_dns(p + 2, first)) return SniffResult::kNo;
      const uint8_t qr = p[4] & 0x80;
      for (size_t off = 2 + first; off + 2 <= len;) {
        const size_t m = be16(p + off);
        if (m > len - off - 2) break;
        if (!looks_like_dns(p + off + 2, m) || (p[off + 4] & 0x80) != qr) return SniffResult::kNo;
        off += 2 + m;
      }
      return qr ? SniffResult::kResponse : SniffResult::kRequest;
    }
    if (!looks_like_dns(p, len)) return SniffResult::kNo;
    return (p[2] & 0x80) ? SniffResult::kResponse : SniffResult::kRequest;
  }

  void open(FlowContext& ctx, uint64_t /*ts*/) override { ctx.state<State>() = State{}; }

  void data(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts) override {
    if (ctx.udp()) {
      // A datagram the capture cut: its wire size, parsed as far as it goes, flagged truncated (sections it
      // cannot hold are no decode error).
      const uint32_t cut = ctx.datagram_cut();
      message(ctx, bytes, bytes.size() + cut, ctx.offset(dir, {}), ts, ts, cut != 0 ? record_flag::kTruncated : 0,
              cut != 0);
      return;
    }
    Side& sd = ctx.state<State>().side[index_of(dir)];
    if (sd.resync.lost) {
      // After a gap the framing is lost; a segment that starts with a whole
      // length-prefixed message is taken as the new boundary.
      const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
      if (bytes.size() >= 2 + kHeaderBytes && looks_like_dns(p + 2, std::min<size_t>(bytes.size() - 2, be16(p)))) {
        sd.resync.found(ctx);
        sd = Side{};
      } else {
        sd.resync.add(bytes.size());
        return;
      }
    }
    const uint32_t cap = ctx.config().carry_bytes;
    while (!bytes.empty()) {
      switch (sd.phase) {
        case Phase::kLength: {
          if (!ctx.has_carry(dir)) {
            sd.start = ctx.offset(dir, bytes);
            sd.first_ts = ts;
          }
          std::span<const std::byte> out;
          const Take t = ctx.take(dir, bytes, 2, out);
          if (t == Take::kNeedMore) return;
          if (t == Take::kNoMemory) {
            lose_sync(sd, bytes);
            return;
          }
          sd.len = be16(reinterpret_cast<const uint8_t*>(out.data()));
          if (sd.len < kHeaderBytes) {
            ctx.count_decode_error();
            lose_sync(sd, bytes);
            return;
          }
          sd.phase = Phase::kMessage;
          sd.in_message = true;
          break;
        }
        case Phase::kMessage: {
          const size_t want = sd.len <= cap ? sd.len : cap;
          std::span<const std::byte> out;
          const Take t = ctx.take(dir, bytes, want, out);
          if (t == Take::kNeedMore) return;
          if (t == Take::kNoMemory) {
            sd.phase = Phase::kSkip;
            sd.skip = sd.len;
            break;
          }
          const uint64_t end = sd.start + 2 + sd.len;
          if (want < sd.len) {
            ++ctx.counters().carry_overflow;
            message(ctx, out, end - sd.start, end, sd.first_ts, ts, record_flag::kTruncated);
            sd.phase = Phase::kSkip;
            sd.skip = sd.len - want;
          } else {
            message(ctx, out, end - sd.start, end, sd.first_ts, ts, 0);
            sd.phase = Phase::kLength;
            sd.in_message = false;
          }
          break;
        }
        case Phase::kSkip: {
          const size_t n = bytes.size() < sd.skip ? bytes.size() : static_cast<size_t>(sd.skip);
          bytes = bytes.subspan(n);
          sd.skip -= n;
          if (sd.skip == 0) {
            sd.phase = Phase::kLength;
            sd.in_message = false;
          }
          break;
        }
      }
    }
  }

  void gap(FlowContext& ctx, Direction dir, uint64_t missing, uint64_t /*ts*/) override {
    if (ctx.udp()) return;  // a truncated datagram: already parsed as far as it went
    Side& sd = ctx.state<State>().side[index_of(dir)];
    if (sd.phase == Phase::kSkip && missing <= sd.skip) {
      sd.skip -= missing;
      ctx.count_gap_absorbed();
      if (sd.skip == 0) sd = Side{};
      return;
    }
    // A partial message is lost; requests stay pending (matched by id later).
    sd = Side{};
    sd.resync.lose();
  }

  void fin(FlowContext& /*ctx*/, Direction /*dir*/, uint64_t /*ts*/) override {}
  // TCP: the flow ended inside a message. With its 12-byte header it is parsed from what arrived, flagged
  // `truncated` (a cut query becomes a timeout record, as HTTP's do; a cut answer matches its query);
  // with less it is too little to tell (counted).
  void close(FlowContext& ctx, uint64_t ts) override {
    if (ctx.udp()) return;
    for (Direction dir : {Direction::kServerToClient, Direction::kClientToServer}) {
      Side& sd = ctx.state<State>().side[index_of(dir)];
      if (sd.resync.lost) continue;
      const std::span<const std::byte> kept = ctx.kept(dir);
      if (sd.phase == Phase::kMessage && kept.size() >= kHeaderBytes) {
        const uint64_t end = ctx.offset(dir, {});
        message(ctx, kept, end - sd.start, end, sd.first_ts, ts, record_flag::kTruncated, true);
      } else if (sd.phase == Phase::kMessage || !kept.empty()) {
        ctx.count_partial_at_close();
      }
      sd = Side{};
    }
  }

 private:
  static void lose_sync(Side& sd, std::span<const std::byte>& bytes) {
    sd = Side{};
    sd.resync.lose(bytes.size());
    bytes = {};
  }

  // One whole DNS message (or its first `cap` bytes, flags truncated).
  // at_close: `b` is what arrived of a message the flow ended in (not a decode error when names are cut).
  void message(FlowContext& ctx, std::span<const std::byte> b, uint64_t wire_bytes, uint64_t end, uint64_t first_ts,
               uint64_t last_ts, uint32_t flags, bool at_close = false) {
    const auto* p = reinterpret_cast<const uint8_t*>(b.data());
    const size_t len = b.size();
    if (len < kHeaderBytes) {
      ctx.count_decode_error();
      return;
    }
    const uint16_t id = be16(p);
    const bool qr = (p[2] & 0x80) != 0;
    const unsigned opcode = (p[2] >> 3) & 0x0F;
    const bool tc = (p[2] & 0x02) != 0;
    const unsigned rcode = p[3] & 0x0F;
    const uint16_t qd = be16(p + 4), an = be16(p + 6);
    Message* m = ctx.new_message(first_ts);
    if (m == nullptr) return;
    m->last_ts_ns = last_ts;
    m->bytes = wire_bytes;
    m->stream_end = end;
    m->flags = flags;
    m->key = id;
    FieldList& f = m->fields;
    size_t off = kHeaderBytes;
    char name[kMaxName + 1];
    char buf[16];
    bool ok = true;
    uint16_t qtype = 0;
    size_t nlen = 0;
    if (qd > 0) {
      size_t next = 0;
      if (read_name(p, len, off, name, &nlen, &next) && next + 4 <= len) {
        qtype = be16(p + next);
        off = next + 4;
      } else {
        ok = false;
      }
    }
    if (!qr) {
      f.add_uint("id", id);
      if (qd > 0 && ok) {
        f.add_string("qname", std::string_view(name, nlen), kMaxName);
        f.add_string("qtype", type_name(qtype, buf));
      }
      if (opcode != 0) f.add_uint("opcode", opcode);
      f.add_string("transport", ctx.udp() ? "udp" : "tcp");
      // A query without a question is valid (a cookie-only query, RFC 7873 5.4; probes): no qname, and
      // cut only when the sections its counts promise do not fit (the first question's are checked above).
      for (uint16_t i = 1; ok && i < qd; ++i) {
        size_t next = 0;
        ok = read_name(p, len, off, name, &nlen, &next) && next + 4 <= len;
        off = next + 4;
      }
      if (ok) ok = sections_fit(p, len, off, be16(p + 6), be16(p + 8), be16(p + 10));
      if (!ok) {
        if (!at_close) ctx.count_decode_error();
        m->flags |= record_flag::kTruncated;
      }
      ctx.commit_request(m);
      return;
    }
    f.add_string("rcode", rcode_name(rcode, buf));
    f.add_uint("answer_count", an);
    if (tc) f.add_bool("tc", true);
    // skip the remaining questions
    for (uint16_t i = 1; ok && i < qd; ++i) {
      size_t next = 0;
      if (!read_name(p, len, off, name, &nlen, &next) || next + 4 > len) {
        ok = false;
        break;
      }
      off = next + 4;
    }
    scratch_.clear();
    scratch_.push_back('[');
    uint32_t listed = 0;
    for (uint16_t i = 0; ok && i < an; ++i) {
      size_t next = 0;
      if (!read_name(p, len, off, name, &nlen, &next) || next + 10 > len) {
        ok = false;
        break;
      }
      const uint16_t type = be16(p + next);
      const uint16_t rdlen = be16(p + next + 8);
      const size_t rd = next + 10;
      if (rd + rdlen > len) {
        ok = false;
        break;
      }
      off = rd + rdlen;
      if (listed >= max_answers_ || scratch_.size() > kAnswersJsonMax) continue;
      if (listed > 0) scratch_.push_back(',');
      scratch_.append("{\"type\":");
      append_json_string(type_name(type, buf), scratch_);
      char text[kMaxName + 64];
      size_t tlen = 0;
      if (rdata_text(p, len, type, rd, rdlen, text, &tlen)) {
        scratch_.append(",\"data\":");
        append_json_string(std::string_view(text, tlen), scratch_);
      }
      scratch_.push_back('}');
      ++listed;
    }
    scratch_.push_back(']');
    if (!f.add_raw_json("answers", scratch_)) ++ctx.counters().field_truncated;
    if (!ok) m->flags |= record_flag::kTruncated;  // counts promised more than the message holds
    ctx.complete_response_by_key(m, rcode == 0 ? RecordStatus::kOk : RecordStatus::kError, id);
  }

  // The `an` + `ns` + `ar` resource records from `off` lie within the message's `len` bytes.
  static bool sections_fit(const uint8_t* p, size_t len, size_t off, uint16_t an, uint16_t ns, uint16_t ar) {
    char name[kMaxName + 1];
    for (uint32_t i = 0, n = uint32_t{an} + ns + ar; i < n; ++i) {
      size_t nlen = 0, next = 0;
      if (!read_name(p, len, off, name, &nlen, &next) || next + 10 > len) return false;
      off = next + 10 + be16(p + next + 8);
      if (off > len) return false;
    }
    return true;
  }

  // Text of the rdata of common types; false for types shown without data.
  static bool rdata_text(const uint8_t* p, size_t len, uint16_t type, size_t rd, uint16_t rdlen, char* out,
                         size_t* out_len) {
    switch (type) {
      case 1:
        if (rdlen != 4 || inet_ntop(AF_INET, p + rd, out, 64) == nullptr) return false;
        *out_len = std::strlen(out);
        return true;
      case 28:
        if (rdlen != 16 || inet_ntop(AF_INET6, p + rd, out, 64) == nullptr) return false;
        *out_len = std::strlen(out);
        return true;
      case 2: case 5: case 12: case 39: {  // NS CNAME PTR DNAME
        size_t next = 0;
        return read_name(p, len, rd, out, out_len, &next);
      }
      case 6: {  // SOA: primary name server
        size_t next = 0;
        return read_name(p, len, rd, out, out_len, &next);
      }
      case 15: {  // MX: preference exchange
        if (rdlen < 3) return false;
        int n = std::snprintf(out, 8, "%u ", static_cast<unsigned>(be16(p + rd)));
        size_t nl = 0, next = 0;
        if (n <= 0 || !read_name(p, len, rd + 2, out + n, &nl, &next)) return false;
        *out_len = static_cast<size_t>(n) + nl;
        return true;
      }
      case 33: {  // SRV: priority weight port target
        if (rdlen < 7) return false;
        int n = std::snprintf(out, 24, "%u %u %u ", static_cast<unsigned>(be16(p + rd)),
                              static_cast<unsigned>(be16(p + rd + 2)), static_cast<unsigned>(be16(p + rd + 4)));
        size_t nl = 0, next = 0;
        if (n <= 0 || !read_name(p, len, rd + 6, out + n, &nl, &next)) return false;
        *out_len = static_cast<size_t>(n) + nl;
        return true;
      }
      case 16: {  // TXT: the character-strings, concatenated, cut at 255 bytes
        size_t n = 0, pos = rd;
        while (pos < rd + rdlen) {
          const size_t l = p[pos];
          if (pos + 1 + l > rd + rdlen) return false;
          const size_t k = l < kMaxName - n ? l : kMaxName - n;
          std::memcpy(out + n, p + pos + 1, k);
          n += k;
          pos += 1 + l;
        }
        *out_len = n;
        return true;
      }
      default: return false;
    }
  }

  uint32_t max_answers_;
  std::string scratch_;  // answers JSON of the message being decoded (reused)
};

}  // namespace

namespace dns {

std::unique_ptr<Decoder> make_decoder(const DecodeConfig& cfg) { return std::make_unique<DnsDecoder>(cfg); }
SniffResult confirm(std::span<const std::byte> chunk, Transport t) { return DnsDecoder::sniff(chunk, t); }

}  // namespace dns

}  // namespace spanfeed
