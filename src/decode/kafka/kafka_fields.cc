// Kafka record fields: header fields, roles of the layouts' fields (topics, group and member ids, error codes by
// name), the counts a walk kept. Worker lcore; writes only into the message's bounded field list; no allocation.
#include <algorithm>

#include "kafka_state.h"

#include "decode/fnv.h"

namespace spanfeed::kafka {
namespace {

// A JSON string of a name from the wire: ASCII kept (quote and backslash escaped), anything else '?'.
size_t json_name(std::string_view s, char* out) {
  size_t n = 0;
  out[n++] = '"';
  for (char ch : s.substr(0, kKeep)) {
    const auto c = static_cast<uint8_t>(ch);
    if (c == '"' || c == '\\') out[n++] = '\\';
    out[n++] = c >= 0x20 && c < 0x7f ? ch : '?';
  }
  out[n++] = '"';
  return n;
}

void add_name(FieldList& f, const char* key, std::string_view name, int16_t code) {
  if (!name.empty()) {
    f.add_string(key, name);
    return;
  }
  char buf[16];
  size_t n = 0;
  for (const char ch : std::string_view("UNKNOWN_")) buf[n++] = ch;
  int v = code < 0 ? -code : code;
  char digits[8];
  size_t k = 0;
  do {
    digits[k++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0 && k < sizeof(digits));
  if (code < 0) buf[n++] = '-';
  while (k > 0 && n < sizeof(buf)) buf[n++] = digits[--k];
  f.add_string(key, std::string_view(buf, n));
}

void add_once(Side& sd, const char* key, std::string_view s) {
  FieldList& f = sd.m->fields;
  if (f.has(key)) return;
  close_topics(sd);  // strings share the arena with the list being written
  f.add_string(key, s, kKeep);
}

void add_topic(Side& sd, std::string_view name) {
  if (sd.flags & flag::kListDone) return;
  const uint32_t h = fnv1a32(name);
  if (sd.topics > 0 && h == sd.topic_hash) return;
  FieldList& f = sd.m->fields;
  char buf[2 * kKeep + 2];
  const size_t n = json_name(name, buf);
  if (sd.topics >= kMaxTopics || f.arena_left() < n + 2) return;  // 2: the separator, the closing bracket
  if (!(sd.flags & flag::kListOpen)) {
    sd.list_begin = static_cast<uint16_t>(f.raw_begin());
    f.raw_append("[");
    sd.flags |= flag::kListOpen;
  } else {
    f.raw_append(",");
  }
  f.raw_append(std::string_view(buf, n));
  sd.topic_hash = h;
  ++sd.topics;
}

void error_list(FieldList& f, const Side& sd) {
  const size_t begin = f.raw_begin();
  bool ok = f.raw_append("[");
  bool first = true;
  for (int16_t e : sd.errs) {
    if (e == 0 || !ok) continue;
    const std::string_view name = kafka::error_name(e);
    char buf[2 * kKeep + 2];
    const size_t n = json_name(name.empty() ? std::string_view("UNKNOWN") : name, buf);
    ok = (first || f.raw_append(",")) && f.raw_append(std::string_view(buf, n));
    first = false;
  }
  if (ok && f.raw_append("]")) {
    f.raw_commit("partition_errors", begin, FieldKind::kRawJson);
  } else {
    f.raw_abort(begin);
  }
}
}  // namespace

bool lookup(FlowContext& ctx, const State& st, uint32_t corr, Inflight* out) {
  const Message* q = ctx.front_request();
  if (q != nullptr && q->key == corr && q->aux != 0) {
    *out = Inflight{corr, static_cast<int16_t>((q->aux >> 16) - 1), static_cast<uint8_t>(q->aux & 0xFF), 0};
    return true;
  }
  for (size_t i = 0; i < kInflight; ++i) {
    const Inflight& e = st.ring[(st.ring_next + kInflight - 1 - i) % kInflight];
    if (e.api >= 0 && e.corr == corr) {
      *out = e;
      return true;
    }
  }
  return false;
}

bool flexible(int16_t api, uint16_t version) {
  const kafka::ApiLayout* l = kafka::api_layout(api);
  return l != nullptr && l->flexible_from != kafka::kNoFlexible && version >= l->flexible_from;
}

void apply_fixed(FlowContext& ctx, State& st, Direction dir, Role role, const uint8_t* p, uint32_t w) {
  Side& sd = st.side[index_of(dir)];
  Message* m = sd.m;
  const auto v16 = static_cast<int16_t>(w >= 2 ? be16(p) : p[0]);
  const auto v32 = static_cast<int32_t>(w >= 4 ? be32(p) : 0);
  switch (role) {
    case Role::kApiKey: sd.api = v16; break;
    case Role::kApiVersion:
      sd.version = static_cast<uint16_t>(v16);
      if (flexible(sd.api, sd.version)) sd.flags |= flag::kFlexible;
      break;
    case Role::kCorrelation: {
      sd.corr = static_cast<uint32_t>(v32);
      if (dir == kReq) {
        if (m == nullptr) break;
        m->key = sd.corr;
        const kafka::ApiLayout* l = kafka::api_layout(sd.api);
        m->fields.add_string("api", l != nullptr ? l->name : "Unknown");
        m->fields.add_int("api_key", sd.api);
        m->fields.add_uint("api_version", sd.version);
        m->fields.add_uint("correlation_id", sd.corr);
        break;
      }
      Inflight e;
      if (lookup(ctx, st, sd.corr, &e)) {
        sd.api = e.api;
        sd.version = e.version;
        sd.flags |= flag::kKnownApi;
        if (e.no_reply) sd.flags |= flag::kNoReply;
        // ApiVersions responses keep header v0 in every version (clients read them before they know more).
        if (flexible(sd.api, sd.version)) sd.flags |= flag::kFlexible;
        if (sd.api == kafka::kApiApiVersions) sd.flags |= flag::kHeaderV0;
      }
      if (m != nullptr) {
        m->key = sd.corr;
        m->fields.add_uint("correlation_id", sd.corr);
      }
      break;
    }
    case Role::kPartition: ++sd.partitions; break;
    case Role::kTopError:
      if (v16 != 0) sd.flags |= flag::kError;
      if (m != nullptr) {
        m->fields.add_int("error_code", v16);
        if (v16 != 0) add_name(m->fields, "error", kafka::error_name(v16), v16);
      }
      // A broker that does not know the ApiVersions version asked answers in version 0: stop there.
      if (sd.api == kafka::kApiApiVersions && v16 == kafka::kUnsupportedVersion) sd.pc = kPcEnd;
      break;
    case Role::kItemError:
      if (v16 == 0) break;
      sd.flags |= flag::kError;
      if (sd.failed < UINT16_MAX) ++sd.failed;
      for (int16_t& e : sd.errs) {
        if (e == v16) break;
        if (e == 0) {
          e = v16;
          break;
        }
      }
      break;
    case Role::kThrottle:
      if (m != nullptr && !m->fields.has("throttle_time_ms")) m->fields.add_int("throttle_time_ms", v32);
      break;
    case Role::kGeneration:
      if (m != nullptr && !m->fields.has("generation_id")) m->fields.add_int("generation_id", v32);
      break;
    case Role::kAcks:
      if (v16 == 0) sd.flags |= flag::kAcks0;
      if (m != nullptr) m->fields.add_int("acks", v16);
      break;
    default: break;
  }
}

void apply_string(Side& sd, Direction dir, Role role, std::string_view s, bool null) {
  if (sd.m == nullptr || null) return;
  switch (role) {
    case Role::kClientId: add_once(sd, "client_id", s); break;
    case Role::kTopic:
      if (dir == kReq) add_topic(sd, s);
      break;
    case Role::kGroup: add_once(sd, "group_id", s); break;
    case Role::kMember:
      if (!s.empty()) add_once(sd, "member_id", s);
      break;
    case Role::kTransactional: add_once(sd, "transactional_id", s); break;
    case Role::kErrorMessage: add_once(sd, "error_message", s); break;
    case Role::kCoordinatorKey: add_once(sd, "coordinator_key", s); break;
    case Role::kProtocolName: add_once(sd, "protocol_name", s); break;
    default: break;
  }
}

void close_topics(Side& sd) {
  if (!(sd.flags & flag::kListOpen)) return;
  FieldList& f = sd.m->fields;
  f.raw_append("]");
  f.raw_commit("topics", sd.list_begin, FieldKind::kRawJson);
  sd.flags = static_cast<uint16_t>((sd.flags & ~flag::kListOpen) | flag::kListDone);
}

void add_totals(Side& sd, Direction dir) {
  FieldList& f = sd.m->fields;
  close_topics(sd);
  if (sd.partitions > 0) f.add_uint("partitions", sd.partitions);
  if (sd.record_bytes > 0 || (sd.api == kApiProduce && dir == kReq) || (sd.api == kApiFetch && dir == kResp)) {
    f.add_uint("records", sd.records);
    f.add_uint("record_bytes", sd.record_bytes);
  }
  if (sd.failed > 0) {
    f.add_uint("failed_partitions", sd.failed);
    error_list(f, sd);
  }
}

}  // namespace spanfeed::kafka
