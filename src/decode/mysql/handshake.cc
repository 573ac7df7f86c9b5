// MySQL decoder, connection phase: greeting, login (HandshakeResponse), SSLRequest, auth switch, OK / ERR;
// whole packets through the flow's carry buffer. Runs on a worker lcore; allocates nothing.
#include <algorithm>

#include "mysql_decoder.h"

namespace spanfeed::mysql {

bool MysqlDecoder::handshake(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes,
                             uint64_t ts) {
  Side& sd = st.side[index_of(dir)];
  if (!sd.in_payload) {
    if (!ctx.has_carry(dir)) sd.msg_start = ctx.offset(dir, bytes);
    std::span<const std::byte> out;
    const Take t = ctx.take(dir, bytes, 4, out);
    if (t == Take::kNeedMore) return false;
    if (t == Take::kNoMemory) {
      lost_handshake(ctx, st, bytes);
      return false;
    }
    sd.len = le24(db::u8p(out));
    sd.seq = db::u8p(out)[3];
    sd.in_payload = true;
  }
  const uint32_t cap = ctx.config().carry_bytes;
  const size_t want = std::min<size_t>(sd.len, cap);
  if (sd.lpos == 0) {
    std::span<const std::byte> out;
    const Take t = ctx.take(dir, bytes, want, out);
    if (t == Take::kNeedMore) return false;
    if (t == Take::kNoMemory) {
      lost_handshake(ctx, st, bytes);
      return false;
    }
    sd.lpos = 1;
    sd.left = static_cast<uint32_t>(sd.len - want);
    const uint64_t end = ctx.offset(dir, bytes) + sd.left;
    if (dir == kReq) {
      login_packet(ctx, st, db::u8p(out), out.size(), end, ts);
    } else {
      server_handshake_packet(ctx, st, db::u8p(out), out.size(), end, ts);
    }
    if (st.mode != Mode::kHandshake) {  // switched: skip what is left of this packet, then go on
      const size_t n = std::min<size_t>(sd.left, bytes.size());
      bytes = bytes.subspan(n);
      return true;
    }
  }
  const size_t n = std::min<size_t>(sd.left, bytes.size());
  bytes = bytes.subspan(n);
  sd.left -= static_cast<uint32_t>(n);
  if (sd.left == 0) {
    sd.in_payload = false;
    sd.lpos = 0;
  }
  return !bytes.empty();
}

// The flow ended inside a request: what arrived of it becomes a request flagged `truncated` (the builder
// then makes it a timeout record), as HTTP does. Only a header with no command byte yet is too little.
void MysqlDecoder::close_request(FlowContext& ctx, State& st, uint64_t ts) {
  Side& c = st.side[0];
  if (st.mode == Mode::kCommand && !c.resync.lost) {
    if (c.msg != nullptr && c.seq == 0) {
      c.msg->flags |= record_flag::kTruncated;
      end_request_packet(ctx, st, ctx.offset(kReq, {}), ts);
    } else if (c.msg == nullptr && (c.hdr_n > 0 || (c.in_payload && c.lpos == 0))) {
      ctx.count_partial_at_close();
    }
    return;
  }
  if (st.mode == Mode::kHandshake && c.msg != nullptr && c.msg->aux == kAuxLogin &&
      (c.in_payload || ctx.has_carry(kReq))) {
    Message* m = c.msg;  // the login packet was cut
    c.msg = nullptr;
    const uint64_t end = ctx.offset(kReq, {});
    m->first_ts_ns = std::min(m->first_ts_ns, ts);
    m->end_span(c.msg_start, end, ts);
    m->flags |= record_flag::kTruncated;
    ctx.commit_request(m);
  }
}

void MysqlDecoder::lost_handshake(FlowContext& ctx, State& st, std::span<const std::byte>& bytes) {
  ctx.count_decode_error();
  Side& c = st.side[0];
  if (c.msg != nullptr) ctx.discard(c.msg);
  c.msg = nullptr;
  st.mode = Mode::kUnknown;
  for (Side& s : st.side) {
    reset_side(s);
    s.resync.lose();
  }
  bytes = {};
}

void MysqlDecoder::server_handshake_packet(FlowContext& ctx, State& st, const uint8_t* p, size_t n, uint64_t end,
                                           uint64_t ts) {
  Side& c = st.side[0];
  Side& sd = st.side[1];
  if (n > 0 && p[0] == 10 && sd.seq == 0) {  // greeting
    size_t i = 1;
    while (i < n && p[i] != 0) ++i;
    const std::string_view version(reinterpret_cast<const char*>(p + 1), i - 1);
    uint32_t caps = 0;
    if (i + 1 + 4 + 8 + 1 + 2 <= n) caps = le16(p + i + 14);
    if (i + 1 + 19 + 2 <= n) caps |= static_cast<uint32_t>(le16(p + i + 19)) << 16;
    st.server_caps = caps;
    if (c.msg == nullptr) c.msg = ctx.new_message(ts);
    if (c.msg != nullptr) {
      c.msg->fields.clear();
      c.msg->fields.add_string("command", "LOGIN");
      c.msg->fields.add_string("server_version", version, kNameMax);
      c.msg->aux = kAuxLogin;
    }
    return;
  }
  if (n > 0 && p[0] == 0xFF && sd.seq == 0 && ctx.pending_count() == 0) {
    // ERR instead of a greeting (too many connections, host blocked): a response without a request
    Message* m = ctx.new_message(ts);
    if (m == nullptr) return;
    m->end_span(sd.msg_start, end, ts);
    err_fields(m->fields, p, n);
    ctx.complete_response(m, RecordStatus::kError);
    return;
  }
  if (ctx.pending_count() == 0) return;  // auth exchange without a login request seen
  if (n > 0 && (p[0] == 0x00 || p[0] == 0xFF)) {
    Message* m = sd.msg != nullptr ? sd.msg : ctx.new_message(ts);
    sd.msg = nullptr;
    if (m == nullptr) return;
    m->end_span(sd.msg_start, end, ts);
    if (p[0] == 0xFF) {
      err_fields(m->fields, p, n);
      ctx.complete_response(m, RecordStatus::kError);
      return;
    }
    ctx.complete_response(m, RecordStatus::kOk);
    // command phase; the compressed protocol starts with the next packet when both sides asked for it
    st.mode = Mode::kCommand;
    st.compressed = (st.server_caps & st.client_caps & kCapCompress) != 0;
    for (Side& s : st.side) {
      reset_side(s);
      s.resync.lost = false;
    }
    return;
  }
  // auth switch / more data: the login goes on; the response started here
  if (sd.msg == nullptr) {
    sd.msg = ctx.new_message(ts);
    if (sd.msg != nullptr) sd.msg->fields.add_bool("auth_switch", true);
  }
}

void MysqlDecoder::login_packet(FlowContext& ctx, State& st, const uint8_t* p, size_t n, uint64_t end, uint64_t ts) {
  Side& c = st.side[0];
  if (c.seq != 1 || c.msg == nullptr || c.msg->aux != kAuxLogin || n < 4) return;  // auth continuation
  const uint32_t caps = le32(p);
  if ((caps & kCapSsl) != 0 && n <= 32) {  // SSLRequest: TLS follows
    ++ctx.counters().encrypted_flows;
    ctx.discard(c.msg);
    c.msg = nullptr;
    st.mode = Mode::kEncrypted;
    return;
  }
  Message* m = c.msg;
  c.msg = nullptr;
  m->first_ts_ns = ts;
  m->end_span(c.msg_start, end, ts);
  FieldList& f = m->fields;
  if ((caps & kCapProtocol41) != 0 && n >= 32) {
    size_t i = 32;
    size_t u = i;
    while (u < n && p[u] != 0) ++u;
    f.add_string("user", std::string_view(reinterpret_cast<const char*>(p + i), u - i), kNameMax);
    i = u + 1;
    uint64_t alen = 0;
    size_t used = 0;
    if ((caps & kCapPluginAuthLenenc) != 0) {
      if (!lenenc(p + std::min(i, n), n - std::min(i, n), &alen, &used)) alen = n;
    } else if ((caps & kCapSecureConnection) != 0) {
      if (i < n) alen = p[i];
      used = 1;
    } else {
      while (i + alen < n && p[i + alen] != 0) ++alen;
      used = 0;
      alen += 1;
    }
    i += used + alen;  // the auth response: never exported
    if ((caps & kCapConnectWithDb) != 0 && i < n) {
      size_t e = i;
      while (e < n && p[e] != 0) ++e;
      f.add_string("database", std::string_view(reinterpret_cast<const char*>(p + i), e - i), kNameMax);
    }
  } else if (n >= 5) {  // HandshakeResponse320: caps(2) max_packet(3) user\0 auth
    size_t u = 5;
    while (u < n && p[u] != 0) ++u;
    f.add_string("user", std::string_view(reinterpret_cast<const char*>(p + 5), u - 5), kNameMax);
  }
  if ((caps & st.server_caps & kCapCompress) != 0) f.add_bool("compressed", true);
  st.deprecate_eof = (caps & st.server_caps & kCapDeprecateEof) != 0;
  st.client_caps = caps;  // kept for the switch to the compressed protocol
  (void)redact_;  // the auth response is never exported, whatever redact_secrets says
  ctx.commit_request(m);
}

}  // namespace spanfeed::mysql
