// MySQL decoder, server responses: OK / EOF / ERR, result sets, STMT_PREPARE answers, multi-results, cut
// responses. Runs on a worker lcore; allocates nothing.
#include <algorithm>

#include "mysql_decoder.h"

namespace spanfeed::mysql {

void MysqlDecoder::ok_fields(FieldList& f, const uint8_t* p, size_t n) {
  uint64_t affected = 0, last_id = 0;
  size_t u1 = 0, u2 = 0;
  if (n < 1 || !lenenc(p + 1, n - 1, &affected, &u1) || !lenenc(p + 1 + u1, n - 1 - u1, &last_id, &u2)) return;
  // A multi-statement or a CALL answers with several OKs (and EOFs) in one response: affected rows add up,
  // the last insert id and warning count are the last statement's; each key once in the record.
  const Field* before = f.find("affected_rows");
  f.set_uint("affected_rows", affected + (before != nullptr ? before->num : 0));
  f.set_uint("last_insert_id", last_id);
  const size_t w = 1 + u1 + u2 + 2;
  if (w + 2 <= n) f.set_uint("warnings", le16(p + w));
}

uint16_t MysqlDecoder::ok_status(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  size_t u1 = 0, u2 = 0;
  if (n < 1 || !lenenc(p + 1, n - 1, &v, &u1) || !lenenc(p + 1 + u1, n - 1 - u1, &v, &u2)) return 0;
  const size_t s = 1 + u1 + u2;
  return s + 2 <= n ? le16(p + s) : 0;
}

// ERR from a whole packet (handshake phase).
void MysqlDecoder::err_fields(FieldList& f, const uint8_t* p, size_t n) {
  if (n < 3) return;
  f.add_uint("error_code", le16(p + 1));
  size_t i = 3;
  if (n >= 9 && p[3] == '#') {
    f.add_string("sql_state", std::string_view(reinterpret_cast<const char*>(p + 4), 5));
    i = 9;
  }
  f.add_string("error_message", std::string_view(reinterpret_cast<const char*>(p + i), n - i), kErrorMax);
}

void MysqlDecoder::end_response_packet(FlowContext& ctx, State& st, uint64_t end, uint64_t ts) {
  Side& sd = st.side[1];
  Message* m = sd.msg;
  if (m == nullptr) return;
  m->bytes = end - std::min(end, sd.msg_start);
  m->stream_end = end;
  const uint8_t* h = sd.head;
  const size_t hn = sd.head_n;
  const uint32_t len = sd.lpos;  // logical length (saturated)
  const uint8_t b0 = hn > 0 ? h[0] : 0;
  FieldList& f = m->fields;
  const uint8_t cmd = pending_command(ctx);
  const bool is_eof = b0 == 0xFE && len < 9;
  const bool is_term = b0 == 0xFE && len < kMaxPayload;  // EOF, or OK with the 0xfe header (DEPRECATE_EOF)

  if (b0 == 0xFF) {  // ERR: ends the response whatever state it was in
    if (hn >= 3) f.add_uint("error_code", le16(h + 1));
    if (sd.text_on) {
      sd.text_on = false;
      size_t b = sd.text_begin;
      size_t l = sd.text_len;
      const std::string_view t = f.string_of(Field{nullptr, FieldKind::kString, sd.text_begin, sd.text_len, 0});
      std::string_view state;
      if (l >= 6 && t[0] == '#') {
        state = t.substr(1, 5);
        b += 6;
        l -= 6;
      }
      f.raw_commit("error_message", b, FieldKind::kString);
      if (!state.empty()) f.add_string("sql_state", state);
    }
    finish_response(ctx, st, ts, RecordStatus::kError);
    return;
  }
  switch (st.resp) {
    case Resp::kFirst:
      if (b0 == 0x00 && cmd == kComStmtPrepare && hn >= 9) {
        const uint32_t id = le32(h + 1);
        const uint16_t cols = le16(h + 5), params = le16(h + 7);
        f.add_uint("statement_id", id);
        f.add_uint("columns", cols);
        f.add_uint("params", params);
        if (hn >= 12) f.add_uint("warnings", le16(h + 10));
        remember_stmt(ctx, st.gen, id);
        st.remaining = static_cast<uint32_t>(params) + cols;
        st.params = params;
        st.columns = cols;
        if (st.remaining == 0) {
          finish_response(ctx, st, ts, RecordStatus::kOk);
        } else {
          st.resp = Resp::kPrepDefs;
        }
        return;
      }
      if (b0 == 0x00 && len >= 7) {
        ok_fields(f, h, hn);
        if (ok_status(h, hn) & kStatusMoreResults) return;  // next result of a multi-statement
        finish_response(ctx, st, ts, RecordStatus::kOk);
        return;
      }
      if (is_eof || cmd == kComStatistics || cmd == kComBinlogDump || cmd == kComBinlogDumpGtid) {
        finish_response(ctx, st, ts, RecordStatus::kOk);
        return;
      }
      if (cmd == kComFieldList) {
        st.columns = 1;
        st.resp = Resp::kFieldList;
        return;
      }
      if (b0 == 0xFB) {
        f.add_bool("local_infile", true);
        st.resp = Resp::kUntilOk;
        return;
      }
      if (cmd == kComChangeUser || cmd == kComResetConnection) {
        st.resp = Resp::kUntilOk;  // auth switch / more data, then OK or ERR
        return;
      }
      if (cmd == kComStmtFetch) {
        st.rows = 1;
        st.resp = Resp::kRows;
        return;
      }
      {
        uint64_t ncol = 0;
        size_t used = 0;
        if (!lenenc(h, hn, &ncol, &used) || ncol == 0) {
          ctx.count_decode_error();
          finish_response(ctx, st, ts, RecordStatus::kOk);
          m->flags |= record_flag::kTruncated;
          return;
        }
        st.columns += static_cast<uint32_t>(ncol);
        if (len > used && hn > used && h[used] == 0) {
          // MariaDB with MARIADB_CLIENT_CACHE_METADATA: a "metadata follows"
          // byte after the count; 0 = the client has the column definitions
          // cached and none are sent (prepared statement executes).
          st.resp = Resp::kAfterDefs;
        } else {
          st.remaining = static_cast<uint32_t>(ncol);
          st.resp = Resp::kDefs;
        }
      }
      return;
    case Resp::kDefs:
      if (--st.remaining == 0) st.resp = Resp::kAfterDefs;
      return;
    case Resp::kAfterDefs:
      if (b0 == 0xFE && len == 5) {  // classic EOF after the definitions
        st.resp = Resp::kRows;
        return;
      }
      if (is_term) {  // DEPRECATE_EOF: terminator right away (empty result set)
        st.deprecate_eof = true;
        end_rows(ctx, st, ts);
        return;
      }
      st.deprecate_eof = true;
      ++st.rows;
      st.resp = Resp::kRows;
      return;
    case Resp::kRows:
      if (is_term) {
        end_rows(ctx, st, ts);
        return;
      }
      ++st.rows;
      return;
    case Resp::kPrepDefs:
      if (is_eof) return;  // EOF between the parameter and the column definitions
      if (st.remaining > 0 && --st.remaining == 0) {
        if (st.deprecate_eof) {
          finish_response(ctx, st, ts, RecordStatus::kOk);
        } else {
          st.resp = Resp::kMaybeEof;  // an EOF follows in classic mode; a new command ends it otherwise
        }
      }
      return;
    case Resp::kMaybeEof:
      if (is_eof) {
        finish_response(ctx, st, ts, RecordStatus::kOk);
      } else {
        ctx.count_decode_error();
      }
      return;
    case Resp::kFieldList:
      if (is_term) {
        finish_response(ctx, st, ts, RecordStatus::kOk);
        return;
      }
      ++st.columns;
      return;
    case Resp::kUntilOk:
      if (b0 == 0x00) {
        ok_fields(f, h, hn);
        finish_response(ctx, st, ts, RecordStatus::kOk);
      }
      return;
  }
}

void MysqlDecoder::end_rows(FlowContext& ctx, State& st, uint64_t ts) {
  Side& sd = st.side[1];
  const uint8_t* h = sd.head;
  const size_t hn = sd.head_n;
  uint16_t status = 0;
  if (sd.lpos == 5 && hn >= 5) {
    status = le16(h + 3);
  } else {
    status = ok_status(h, hn);
  }
  if (hn >= 3 && sd.lpos == 5 && sd.msg != nullptr) sd.msg->fields.set_uint("warnings", le16(h + 1));
  if (status & kStatusMoreResults) {
    st.resp = Resp::kFirst;
    return;
  }
  finish_response(ctx, st, ts, RecordStatus::kOk);
}

void MysqlDecoder::finish_response(FlowContext& ctx, State& st, uint64_t ts, RecordStatus status) {
  Side& sd = st.side[1];
  Message* m = sd.msg;
  sd.msg = nullptr;
  st.resp = Resp::kFirst;
  if (m == nullptr) return;
  m->last_ts_ns = ts;
  FieldList& f = m->fields;
  const uint8_t cmd = pending_command(ctx);
  if (st.columns > 0 && cmd != kComStmtPrepare) {
    f.add_uint("columns", st.columns);
    if (cmd != kComFieldList) f.add_uint("rows", st.rows);
  }
  st.columns = 0;
  st.rows = 0;
  ctx.complete_response(m, status);
}

// The prepare response ended without its (classic) EOF: a new command came.
void MysqlDecoder::finish_lazy(FlowContext& ctx, State& st) {
  Side& sd = st.side[1];
  if (st.resp == Resp::kMaybeEof && sd.msg != nullptr && !sd.in_payload) {
    finish_response(ctx, st, sd.msg->last_ts_ns, RecordStatus::kOk);
  }
}

void MysqlDecoder::end_response(FlowContext& ctx, State& st, uint64_t ts) {
  Side& sd = st.side[1];
  if (sd.msg == nullptr) return;
  if (st.resp == Resp::kMaybeEof && !sd.in_payload) {
    finish_response(ctx, st, sd.msg->last_ts_ns, RecordStatus::kOk);
    return;
  }
  sd.msg->flags |= record_flag::kTruncated;
  const bool err = sd.in_payload && sd.head_n > 0 && sd.head[0] == 0xFF;  // an ERR packet was cut
  finish_response(ctx, st, ts, err ? RecordStatus::kError : RecordStatus::kOk);
}

// The response direction lost bytes (gap, undecodable compressed data): a response in progress is
// recorded with what arrived (status from it, rows so far) flagged `gap`, as an HTTP body cut by a gap;
// requests still waiting lost their answers in the hole.
void MysqlDecoder::cut_response(FlowContext& ctx, State& st) {
  Side& sd = st.side[1];
  if (sd.msg != nullptr) {
    Message* m = sd.msg;
    const uint64_t end = ctx.offset(kResp, {});
    m->flags |= record_flag::kGap;
    m->end_span(sd.msg_start, end, m->last_ts_ns);
    const bool err = sd.in_payload && sd.head_n > 0 && sd.head[0] == 0xFF;
    finish_response(ctx, st, m->last_ts_ns, err ? RecordStatus::kError : RecordStatus::kOk);
  }
  drop_response(ctx, st);
  ctx.flush_pending(TimeoutCause::kGap, record_flag::kGap);
}

void MysqlDecoder::drop_response(FlowContext& ctx, State& st) {
  Side& sd = st.side[1];
  if (sd.msg != nullptr) ctx.discard(sd.msg);
  sd.msg = nullptr;
  st.resp = Resp::kFirst;
  st.rows = 0;
  st.columns = 0;
}

// A STMT_PREPARE answer: its statement id now stands for the request's normalized SQL (per flow generation).
void MysqlDecoder::remember_stmt(FlowContext& ctx, uint32_t gen, uint32_t id) {
  Message* q = ctx.front_request();
  if (q == nullptr) return;
  // A statement the capture lost bytes of (snaplen, loss): its executions get no text rather than part of
  // one. (One longer than the text kept is flagged truncated: its beginning is still right.)
  if ((q->flags & record_flag::kGap) != 0) {
    stmts_.forget(gen, id);
  } else {
    stmts_.remember(gen, id, q->fields.get_string("normalized"));
  }
  q->fields.add_uint("statement_id", id);
}

}  // namespace spanfeed::mysql
