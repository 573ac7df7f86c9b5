// HTTP/2 streams: header blocks through nghttp2's HPACK inflater, request/response fields, DATA bytes,
// gRPC length-prefixed messages and trailers, and the one record per stream.
// Runs on a worker lcore; nghttp2 allocates inside the connection's budget (conn_pool.cc), nothing else does.
#include <algorithm>

#include "http2_decoder.h"
#include "text_util.h"

namespace spanfeed::http2 {
namespace {

constexpr size_t kPathMax = 512;
constexpr size_t kMetadataMax = 256;

std::string_view sv(const uint8_t* p, size_t n) { return {reinterpret_cast<const char*>(p), n}; }

bool parse_uint(std::string_view s, uint64_t* v) { return !s.empty() && s.size() <= 12 && text::parse_u64(s, v); }

// RFC 9113 7 error codes, as RST_STREAM carries them.
std::string_view error_name(uint32_t code) {
  static constexpr std::string_view kNames[] = {
      "NO_ERROR",       "PROTOCOL_ERROR", "INTERNAL_ERROR",   "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
      "STREAM_CLOSED",  "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL",             "COMPRESSION_ERROR",
      "CONNECT_ERROR",  "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"};
  return code < std::size(kNames) ? kNames[code] : "UNKNOWN";
}

// gRPC status codes (grpc/doc/statuscodes.md).
std::string_view grpc_code_name(int32_t code) {
  static constexpr std::string_view kNames[] = {
      "OK",      "CANCELLED",  "UNKNOWN",           "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
      "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  return code >= 0 && static_cast<size_t>(code) < std::size(kNames) ? kNames[code] : "UNKNOWN_CODE";
}

// Headers whose values are never kept: credentials by name (the value is not looked at).
void append_name(FieldList& f, std::string_view name) {
  size_t at = f.size();
  for (size_t i = 0; i < f.size(); ++i) {
    if (std::string_view(f[i].key) == "metadata") at = i;
  }
  if (at == f.size()) {
    f.add_string("metadata", name, kMetadataMax);
    return;
  }
  const std::string_view prev = f.string_of(f[at]);
  // The list grows at the arena's end: stop while the other fields still fit.
  if (prev.size() + 1 + name.size() > kMetadataMax || f.arena_left() < kMetadataMax + 256) return;
  char buf[kMetadataMax];
  std::copy(prev.begin(), prev.end(), buf);
  buf[prev.size()] = ',';
  std::copy(name.begin(), name.end(), buf + prev.size() + 1);
  f.replace_string(at, std::string_view(buf, prev.size() + 1 + name.size()));
}

}  // namespace

Stream* Http2Decoder::find(State& st, uint32_t sid) {
  if (st.conn == ConnPool::kNone || sid == 0) return nullptr;
  for (Stream& s : pool_.streams(st.conn)) {
    if (s.id == sid) return &s;
  }
  return nullptr;
}

Stream* Http2Decoder::open_stream(FlowContext& ctx, State& st, uint32_t sid, uint64_t ts) {
  std::span<Stream> table = pool_.streams(st.conn);
  Stream* slot = nullptr;
  for (Stream& s : table) {
    if (s.id == 0) {
      slot = &s;
      break;
    }
  }
  if (slot == nullptr) slot = pool_.take_slot(st.conn);
  if (slot == nullptr) {  // full: the oldest open stream leaves the table (flagged truncated if incomplete)
    slot = &*std::min_element(table.begin(), table.end(), [](const Stream& a, const Stream& b) { return a.order < b.order; });
    ++ctx.counters().h2_streams_evicted;
    // Its request is pending under its id: the response, when it comes, opens the stream again (so it
    // stays out of the closed list) and pairs with it.
    finish(ctx, st, *slot, ts, record_flag::kTruncated, false);
  }
  *slot = Stream{};
  slot->id = sid;
  slot->order = pool_.conn(st.conn).next_order++;
  return slot;
}

void Http2Decoder::mark_undecodable(FlowContext& ctx, Stream& s) {
  s.undecodable = true;
  if (!s.counted) ++ctx.counters().h2_streams_undecodable;
  s.counted = true;
}

void Http2Decoder::block_start(FlowContext& ctx, State& st, Direction dir, uint32_t sid, uint64_t ts) {
  DirState& d = st.d[index_of(dir)];
  d.block_sid = sid;
  d.block_push = d.type == kPushPromise;
  d.block_end_stream = d.type == kHeaders && (d.flags & fflag::kEndStream);
  d.block_skip = d.hpack_lost;
  // A PUSH_PROMISE's block is the request of the promised stream (its side 0, complete at once).
  const uint32_t target = d.block_push ? d.promised : sid;
  const size_t side = d.block_push ? 0 : index_of(dir);
  Stream* s = find(st, target);
  if (s == nullptr && std::find(std::begin(st.closed), std::end(st.closed), target) != std::end(st.closed)) return;
  if (s == nullptr) s = open_stream(ctx, st, target, ts);
  StreamSide& sd = s->side[side];
  if (sd.msg == nullptr) sd.msg = ctx.new_message(ts);
  ++sd.blocks;
  if (d.block_push) sd.ended = true;
  if (d.hpack_lost) mark_undecodable(ctx, *s);
  // Undecodable because a gap took this direction's HPACK state: the record's fields are missing for it.
  if (d.gap_lost && sd.msg != nullptr) sd.msg->flags |= record_flag::kGap;
}

void Http2Decoder::block_bytes(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte> in, bool final) {
  DirState& d = st.d[index_of(dir)];
  if (d.block_skip || d.hpack_lost) return;
  Connection& c = pool_.conn(st.conn);
  nghttp2_hd_inflater* inf = c.hd[index_of(dir)];
  // The stream may have been evicted meanwhile: the block is still inflated (the table must stay in step).
  Stream* s = find(st, d.block_push ? d.promised : d.block_sid);
  const Direction side = d.block_push ? kReq : dir;
  auto* p = reinterpret_cast<const uint8_t*>(in.data());
  size_t n = in.size();
  for (;;) {
    nghttp2_nv nv{};
    int fl = 0;
    const ssize_t rv = nghttp2_hd_inflate_hd2(inf, &nv, &fl, p, n, final ? 1 : 0);
    if (rv < 0) {
      // Unknown index (a capture that began mid-connection, a lost block), bad Huffman, over the budget:
      // this direction's table is unknown from here on. Nothing of the block is kept as if decoded.
      if (c.budget.hit) ++ctx.counters().h2_hpack_capped;
      c.budget.hit = false;
      d.hpack_lost = true;
      d.block_skip = true;
      if (s != nullptr) mark_undecodable(ctx, *s);
      return;
    }
    p += rv;
    n -= static_cast<size_t>(rv);
    if ((fl & NGHTTP2_HD_INFLATE_EMIT) && s != nullptr) {
      const StreamSide& sd = s->side[index_of(side)];
      header(*s, side, sd.blocks > 1, sv(nv.name, nv.namelen), sv(nv.value, nv.valuelen));
    }
    if (fl & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(inf);
      break;
    }
    if (!(fl & NGHTTP2_HD_INFLATE_EMIT) && n == 0) break;
  }
}

void Http2Decoder::block_end(FlowContext& ctx, State& st, Direction dir, uint64_t ts) {
  DirState& d = st.d[index_of(dir)];
  const uint32_t sid = d.block_sid;
  const bool end = d.block_end_stream && !d.block_push;
  d.block_sid = 0;
  d.block_skip = false;
  d.block_end_stream = false;
  d.block_push = false;
  if (end) end_stream(ctx, st, dir, sid, ts);
}

void Http2Decoder::header(Stream& s, Direction dir, bool trailer, std::string_view name, std::string_view value) {
  Message* m = s.side[index_of(dir)].msg;
  if (m == nullptr) return;
  FieldList& f = m->fields;
  auto keep = [&](const char* key, std::string_view v, size_t max) {
    if (!f.has(key)) f.add_string(key, v, max);
  };
  auto secret = [&](const char* key) { keep(key, redact_ ? "<redacted>" : value, 256); };
  if (dir == kReq) {
    if (name == ":method") keep("method", value, 24);
    else if (name == ":scheme") keep("scheme", value, 16);
    else if (name == ":authority" || name == "host") keep("authority", value, 128);
    else if (name == ":path") keep("path", value, kPathMax);
    else if (name == "user-agent") keep("user_agent", value, 256);
    else if (name == "content-type") {
      keep("content_type", value, 128);
      if (value.substr(0, 16) == "application/grpc") s.grpc = true;
    } else if (name == "authorization") secret("authorization");
    else if (name == "cookie") secret("cookie");
    else if (name == "grpc-encoding") keep("grpc_encoding", value, 32);
    else if (name == "grpc-timeout") keep("grpc_timeout", value, 16);
    else if (!name.empty() && name[0] != ':' && name != "te" && name != "content-length" &&
             name != "accept-encoding" && name.substr(0, 5) != "grpc-") {
      // Other request headers (gRPC metadata): their names only, never their values (credentials hide in
      // custom metadata: x-api-key, x-auth-token...), as a comma-separated list.
      append_name(f, name);
    }
    return;
  }
  if (name == ":status") {
    uint64_t v = 0;
    if (!parse_uint(value, &v) || v < 200 || trailer) return;  // 1xx: interim, not the answer
    s.status = static_cast<uint16_t>(v);
    if (!f.has("status_code")) f.add_uint("status_code", v);
  } else if (name == "content-type") {
    keep("content_type", value, 128);
  } else if (name == "grpc-status") {
    uint64_t v = 0;
    if (parse_uint(value, &v) && v <= INT32_MAX) s.grpc_status = static_cast<int32_t>(v);
  } else if (name == "grpc-message") {
    keep("grpc_message", value, 256);
  } else if (name == "grpc-encoding") {
    keep("grpc_encoding", value, 32);
  } else if (name == "set-cookie") {
    secret("set_cookie");
  }
}

void Http2Decoder::data_bytes(FlowContext& /*ctx*/, State& st, Direction dir, std::span<const std::byte> in) {
  Stream* s = find(st, st.d[index_of(dir)].sid);
  if (s == nullptr) return;  // DATA of a stream whose HEADERS were not seen (mid-connection)
  StreamSide& sd = s->side[index_of(dir)];
  sd.body_bytes += in.size();
  if (!s->grpc) return;
  // gRPC: 1 compressed-flag byte, 4 length bytes (big-endian), the message: counted, never kept.
  GrpcFraming& g = sd.grpc;
  const auto* p = reinterpret_cast<const uint8_t*>(in.data());
  size_t i = 0;
  while (i < in.size()) {
    if (g.left == UINT32_MAX) return;  // boundaries lost in a gap
    if (g.left > 0) {
      const size_t k = std::min<size_t>(g.left, in.size() - i);
      g.left -= static_cast<uint32_t>(k);
      i += k;
      continue;
    }
    const uint8_t b = p[i++];
    if (g.got == 0) {
      if (b & 1) ++g.compressed;
      g.len = 0;
    } else {
      g.len = (g.len << 8) | b;
    }
    if (++g.got == 5) {
      ++g.messages;
      g.bytes += g.len;
      g.max_len = std::max(g.max_len, g.len);
      g.left = g.len;
      g.got = 0;
    }
  }
}

void Http2Decoder::end_stream(FlowContext& ctx, State& st, Direction dir, uint32_t sid, uint64_t ts) {
  Stream* s = find(st, sid);
  if (s == nullptr) return;
  StreamSide& sd = s->side[index_of(dir)];
  sd.ended = true;
  if (sd.msg != nullptr) sd.msg->last_ts_ns = ts;
  // Both sides ended; or the response ended on a stream whose request was never seen (the capture began
  // after it, or it was lost in a gap): nothing more will come for it.
  if ((s->side[0].ended && s->side[1].ended) || (dir == kResp && s->side[0].blocks == 0))
    finish(ctx, st, *s, ts, 0);
}

void Http2Decoder::finish(FlowContext& ctx, State& st, Stream& s, uint64_t ts, uint32_t flags, bool closed) {
  if (closed) {
    st.closed[st.closed_next] = s.id;
    st.closed_next = static_cast<uint8_t>((st.closed_next + 1) % std::size(st.closed));
  }
  StreamSide& q = s.side[0];
  StreamSide& r = s.side[1];
  Message* req = q.msg;
  Message* resp = r.msg;
  // Its HEADERS were not seen here: the stream was evicted from a full table after them (its request is
  // pending under its id: the response pairs with it), or the capture began after them, or a gap took them
  // (the request direction lost frames before: the record says so).
  if (req == nullptr && !ctx.has_pending_key(s.id)) {
    req = ctx.new_message(resp != nullptr ? resp->first_ts_ns : ts);
    if (req != nullptr && st.d[index_of(kReq)].gap_lost) req->flags |= record_flag::kGap;
  }
  if (resp == nullptr && s.rst) resp = ctx.new_message(ts);
  if (s.gap) {  // a message made here (no HEADERS seen) or begun after the gap on its other side
    if (req != nullptr) req->flags |= record_flag::kGap;
    if (resp != nullptr) resp->flags |= record_flag::kGap;
  }
  const Protocol p = s.grpc ? Protocol::kGrpc : Protocol::kHttp2;
  const uint64_t req_end = ctx.offset(kReq, {});
  const uint64_t resp_end = ctx.offset(kResp, {});
  if (req != nullptr) {
    FieldList& f = req->fields;
    req->protocol = p;
    req->key = s.id;
    req->bytes = q.frame_bytes;
    req->stream_end = req_end;
    if (!q.ended) req->flags |= flags;
    if (s.grpc) {
      // "/package.Service/Method"
      const std::string_view path = f.get_string("path");
      const size_t slash = path.size() > 1 ? path.find('/', 1) : std::string_view::npos;
      if (slash != std::string_view::npos) {
        f.add_string("service", path.substr(1, slash - 1), 256);
        f.add_string("grpc_method", path.substr(slash + 1), 128);
      }
      f.add_uint("messages", q.grpc.messages);
      f.add_uint("message_bytes", q.grpc.bytes);
      if (q.grpc.compressed > 0) f.add_uint("compressed_messages", q.grpc.compressed);
      const bool client_stream = q.grpc.messages > 1, server_stream = r.grpc.messages > 1;
      f.add_string("call_type", client_stream && server_stream ? "bidi_streaming"
                                : client_stream                ? "client_streaming"
                                : server_stream                ? "server_streaming"
                                                               : "unary");
    }
    f.add_uint("body_bytes", q.body_bytes);
    f.add_uint("stream_id", s.id);
    if (s.undecodable) f.add_bool("undecodable", true);
  }
  RecordStatus status = RecordStatus::kOk;
  if (resp != nullptr) {
    FieldList& f = resp->fields;
    resp->protocol = p;
    resp->bytes = r.frame_bytes;
    resp->stream_end = resp_end;
    if (!r.ended && !s.rst) resp->flags |= flags;
    if (s.rst) {
      resp->last_ts_ns = ts;
      f.add_string("rst_error", error_name(s.rst_code));
    }
    if (s.grpc) {
      if (s.grpc_status >= 0) {
        f.add_uint("grpc_status", static_cast<uint64_t>(s.grpc_status));
        f.add_string("grpc_status_name", grpc_code_name(s.grpc_status));
      }
      f.add_uint("messages", r.grpc.messages);
      f.add_uint("message_bytes", r.grpc.bytes);
    }
    f.add_uint("body_bytes", r.body_bytes);
    const bool failed = s.grpc ? s.grpc_status > 0 || (s.grpc_status < 0 && s.status != 0 && s.status != 200)
                               : s.status >= 500;
    // RST_STREAM NO_ERROR ends a stream whose answer is complete (a server discarding the rest of a request
    // body): not a failure. Any other code is.
    if (failed || (s.rst && s.rst_code != 0)) status = RecordStatus::kError;
  }
  ctx.commit_request(req);
  if (resp != nullptr) ctx.complete_response_by_key(resp, status, s.id);
  s = Stream{};
}

}  // namespace spanfeed::http2
