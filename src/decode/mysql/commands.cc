// MySQL decoder, command phase: the packet layer (4-byte headers, 16 MiB continuations) and client commands
// (text, statement ids, normalized SQL). Runs on a worker lcore; allocates nothing.
#include <algorithm>
#include <cstring>
#include <iterator>

#include "mysql_decoder.h"

namespace spanfeed::mysql {

namespace {

constexpr const char* kCommandNames[] = {
    "COM_SLEEP",        "COM_QUIT",           "COM_INIT_DB",       "COM_QUERY",          "COM_FIELD_LIST",
    "COM_CREATE_DB",    "COM_DROP_DB",        "COM_REFRESH",       "COM_SHUTDOWN",       "COM_STATISTICS",
    "COM_PROCESS_INFO", "COM_CONNECT",        "COM_PROCESS_KILL",  "COM_DEBUG",          "COM_PING",
    "COM_TIME",         "COM_DELAYED_INSERT", "COM_CHANGE_USER",   "COM_BINLOG_DUMP",    "COM_TABLE_DUMP",
    "COM_CONNECT_OUT",  "COM_REGISTER_SLAVE", "COM_STMT_PREPARE",  "COM_STMT_EXECUTE",   "COM_STMT_SEND_LONG_DATA",
    "COM_STMT_CLOSE",   "COM_STMT_RESET",     "COM_SET_OPTION",    "COM_STMT_FETCH",     "COM_DAEMON",
    "COM_BINLOG_DUMP_GTID", "COM_RESET_CONNECTION",
};

}  // namespace

// ---------------------------------------------------------------- packet layer (command phase)

// Packet bytes of `dir`. exact: stream offsets are off0 + index; else (compressed) a message spans
// [off0, off_end) of the compressed packets it came in.
void MysqlDecoder::feed(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte> bytes, uint64_t ts,
                        uint64_t off0, bool exact, uint64_t off_end) {
  Side& sd = st.side[index_of(dir)];
  const uint8_t* p = db::u8p(bytes);
  size_t i = 0;
  const size_t n = bytes.size();
  while (i < n && !sd.resync.lost) {
    if (!sd.in_payload) {
      if (sd.hdr_n == 0 && !sd.cont) sd.pkt_start = exact ? off0 + i : off0;
      if (sd.hdr_n == 0 && n - i >= 4) {  // the whole header in this chunk (the usual case): one load
        std::memcpy(sd.hdr, p + i, 4);
        i += 4;
      } else {
        while (sd.hdr_n < 4 && i < n) sd.hdr[sd.hdr_n++] = p[i++];
        if (sd.hdr_n < 4) return;
      }
      sd.hdr_n = 0;
      sd.len = le24(sd.hdr);
      sd.left = sd.len;
      sd.in_payload = true;
      if (!sd.cont) {
        sd.seq = sd.hdr[3];
        sd.lpos = 0;
        sd.head_n = 0;
        sd.text_on = false;
        sd.text_total = 0;
      }
      if (sd.len == 0) {
        end_physical(ctx, st, dir, exact ? off0 + i : off_end, ts);
        continue;
      }
    }
    if (i == n) return;  // the chunk ended right after a header: the payload comes next time
    const size_t k = std::min<size_t>(sd.left, n - i);
    const uint8_t* q = p + i;
    if (sd.lpos < kHead) {
      const size_t h = std::min<size_t>(kHead - sd.lpos, k);
      if (h == kHead) {
        std::memcpy(sd.head, q, kHead);  // a constant size: no call
      } else {
        std::memcpy(sd.head + sd.lpos, q, h);
      }
      sd.head_n = static_cast<uint8_t>(sd.lpos + h);
    }
    if (sd.lpos == 0) first_byte(ctx, st, dir, q[0], ts);
    if (sd.text_on) stream_text(sd, q, k);
    sd.lpos = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{sd.lpos} + k, UINT32_MAX));
    sd.left -= static_cast<uint32_t>(k);
    i += k;
    if (sd.msg != nullptr) sd.msg->last_ts_ns = ts;
    if (sd.left == 0) end_physical(ctx, st, dir, exact ? off0 + i : off_end, ts);
  }
}

void MysqlDecoder::stream_text(Side& sd, const uint8_t* q, size_t k) {
  // bytes q[0..k) sit at logical positions [lpos, lpos + k); text starts at text_from
  size_t skip = sd.lpos >= sd.text_from ? 0 : sd.text_from - sd.lpos;
  if (skip >= k || sd.msg == nullptr) return;
  const size_t avail = k - skip;
  sd.text_total += static_cast<uint32_t>(avail);
  const size_t cap = sd.text_from == 1 ? kQueryMax : kErrorMax;
  size_t room = cap > sd.text_len ? cap - sd.text_len : 0;
  room = std::min(room, sd.msg->fields.arena_left());
  const size_t take = std::min(room, avail);
  if (take > 0) {
    sd.msg->fields.raw_append(std::string_view(reinterpret_cast<const char*>(q + skip), take));
    sd.text_len = static_cast<uint16_t>(sd.text_len + take);
  }
}

void MysqlDecoder::end_physical(FlowContext& ctx, State& st, Direction dir, uint64_t end, uint64_t ts) {
  Side& sd = st.side[index_of(dir)];
  sd.in_payload = false;
  if (sd.len == kMaxPayload) {
    sd.cont = true;  // the logical packet goes on in the next physical one
    return;
  }
  sd.cont = false;
  if (dir == kReq) {
    end_request_packet(ctx, st, end, ts);
  } else {
    end_response_packet(ctx, st, end, ts);
  }
}

// ---------------------------------------------------------------- commands

// First payload byte of a logical packet: start messages, decide what text to stream.
void MysqlDecoder::first_byte(FlowContext& ctx, State& st, Direction dir, uint8_t b, uint64_t ts) {
  Side& sd = st.side[index_of(dir)];
  if (dir == kReq) {
    if (sd.seq != 0) return;  // LOCAL INFILE data, auth continuation: not a command
    if (sd.msg != nullptr) ctx.discard(sd.msg);
    // A new command: whatever the server side had in progress is over.
    finish_lazy(ctx, st);
    if (st.side[1].resync.lost) {
      Side& s = st.side[1];
      ctx.count_resync(0);
      release_z(s);
      reset_side(s);
      s.resync.lost = false;
    }
    sd.msg = ctx.new_message(ts);
    sd.msg_start = sd.pkt_start;
    if (sd.msg == nullptr) return;
    sd.msg->aux = b;
    sd.msg->fields.add_string("command", b < std::size(kCommandNames) ? kCommandNames[b] : "COM_UNKNOWN");
    if (text_command(b)) {
      sd.text_on = true;
      sd.text_from = 1;
      sd.text_len = 0;
      sd.text_begin = static_cast<uint16_t>(sd.msg->fields.raw_begin());
    }
    return;
  }
  if (sd.msg == nullptr) {
    sd.msg = ctx.new_message(ts);
    sd.msg_start = sd.pkt_start;
    st.rows = 0;
    st.columns = 0;
    st.error = false;
    if (st.resp != Resp::kFirst) st.resp = Resp::kFirst;
  }
  if (b == 0xFF && sd.msg != nullptr && !sd.msg->fields.has("error_code")) {
    sd.text_on = true;
    sd.text_from = 3;
    sd.text_len = 0;
    sd.text_begin = static_cast<uint16_t>(sd.msg->fields.raw_begin());
  }
}

uint8_t MysqlDecoder::pending_command(FlowContext& ctx) {
  Message* q = ctx.front_request();
  return q == nullptr ? 0 : static_cast<uint8_t>(q->aux & 0xFF);
}

void MysqlDecoder::end_request_packet(FlowContext& ctx, State& st, uint64_t end, uint64_t ts) {
  Side& sd = st.side[0];
  Message* m = sd.msg;
  if (sd.seq != 0 || m == nullptr) return;
  sd.msg = nullptr;
  m->end_span(sd.msg_start, end, ts);
  const uint8_t cmd = static_cast<uint8_t>(m->aux);
  FieldList& f = m->fields;
  if (sd.text_on) {
    sd.text_on = false;
    std::string_view text;
    if (sd.text_len > 0) {
      const char* key = cmd == kComInitDb || cmd == kComCreateDb || cmd == kComDropDb ? "database"
                        : cmd == kComFieldList                                       ? "table"
                                                                                     : "query";
      size_t len = sd.text_len;
      if (cmd == kComFieldList) {  // table\0wildcard
        const char* a = f.string_of(Field{nullptr, FieldKind::kString, sd.text_begin, sd.text_len, 0}).data();
        const void* z = std::memchr(a, 0, len);
        if (z != nullptr) len = static_cast<size_t>(static_cast<const char*>(z) - a);
      }
      size_t begin = sd.text_begin;
      if (cmd == kComQuery && len >= 2) {
        // CLIENT_QUERY_ATTRIBUTES (MySQL 8): parameter_count 0, parameter_set_count 1 precede the text
        const std::string_view t = f.string_of(Field{nullptr, FieldKind::kString, sd.text_begin, sd.text_len, 0});
        if (t[0] == '\0' && t[1] == '\1') begin += 2;
      }
      f.raw_abort(sd.text_begin + len);
      f.raw_commit(key, begin, FieldKind::kString);
      text = f.get_string(key);
      if (key == std::string_view("query") || cmd == kComStmtPrepare) {
        if (sd.text_total > sd.text_len) {
          f.add_uint("query_bytes", sd.text_total);
          m->flags |= record_flag::kTruncated;
        }
        add_normalized(f, text);
      }
    }
  }
  if (stmt_command(cmd) && sd.head_n >= 5) {
    const uint32_t id = le32(sd.head + 1);
    f.add_uint("statement_id", id);
    if (const auto text = stmts_.find(st.gen, id)) f.add_string("normalized", *text);
    if (cmd == kComStmtClose) stmts_.forget(st.gen, id);
  }
  if (no_reply_command(cmd)) {
    ctx.emit_no_reply(m);
    return;
  }
  ctx.commit_request(m);
}

void MysqlDecoder::add_normalized(FieldList& f, std::string_view text) {
  // Statements repeat: their normalized text is remembered (normalizing costs ~15 instructions a byte).
  const uint64_t h = TextMemo::hash(text);
  TextMemo::Hit hit;
  if (normalized_.find(text, h, &hit)) {
    f.add_string("normalized", hit.value);
    return;
  }
  char buf[kQueryMax];
  const size_t n = db::normalize_sql(text, buf, sizeof(buf), db::SqlDialect::kMysql);
  f.add_string("normalized", std::string_view(buf, n));
  normalized_.remember(text, h, std::string_view(buf, n), 0);
}

}  // namespace spanfeed::mysql
