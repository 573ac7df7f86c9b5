// AMQP 0-9-1 methods: the name table and each method's arguments as record fields (shortstr names, reply
// codes, delivery tags, flags). Runs on worker lcores; no allocation (fields go to the message's arena).
#include "amqp_wire.h"

namespace spanfeed::amqp {
namespace {

struct MethodName {
  uint32_t id;
  const char* name;
};
constexpr MethodName kMethods[] = {
    {mid(10, 10), "connection.start"},     {mid(10, 11), "connection.start-ok"}, {mid(10, 20), "connection.secure"},
    {mid(10, 21), "connection.secure-ok"}, {mid(10, 30), "connection.tune"},     {mid(10, 31), "connection.tune-ok"},
    {mid(10, 40), "connection.open"},      {mid(10, 41), "connection.open-ok"},  {mid(10, 50), "connection.close"},
    {mid(10, 51), "connection.close-ok"},  {mid(10, 60), "connection.blocked"},  {mid(10, 61), "connection.unblocked"},
    {mid(20, 10), "channel.open"},         {mid(20, 11), "channel.open-ok"},     {mid(20, 20), "channel.flow"},
    {mid(20, 21), "channel.flow-ok"},      {mid(20, 40), "channel.close"},       {mid(20, 41), "channel.close-ok"},
    {mid(40, 10), "exchange.declare"},     {mid(40, 11), "exchange.declare-ok"}, {mid(40, 20), "exchange.delete"},
    {mid(40, 21), "exchange.delete-ok"},   {mid(40, 30), "exchange.bind"},       {mid(40, 31), "exchange.bind-ok"},
    {mid(40, 40), "exchange.unbind"},      {mid(40, 51), "exchange.unbind-ok"},  {mid(50, 10), "queue.declare"},
    {mid(50, 11), "queue.declare-ok"},     {mid(50, 20), "queue.bind"},          {mid(50, 21), "queue.bind-ok"},
    {mid(50, 30), "queue.purge"},          {mid(50, 31), "queue.purge-ok"},      {mid(50, 40), "queue.delete"},
    {mid(50, 41), "queue.delete-ok"},      {mid(50, 50), "queue.unbind"},        {mid(50, 51), "queue.unbind-ok"},
    {mid(60, 10), "basic.qos"},            {mid(60, 11), "basic.qos-ok"},        {mid(60, 20), "basic.consume"},
    {mid(60, 21), "basic.consume-ok"},     {mid(60, 30), "basic.cancel"},        {mid(60, 31), "basic.cancel-ok"},
    {mid(60, 40), "basic.publish"},        {mid(60, 50), "basic.return"},        {mid(60, 60), "basic.deliver"},
    {mid(60, 70), "basic.get"},            {mid(60, 71), "basic.get-ok"},        {mid(60, 72), "basic.get-empty"},
    {mid(60, 80), "basic.ack"},            {mid(60, 90), "basic.reject"},        {mid(60, 100), "basic.recover-async"},
    {mid(60, 110), "basic.recover"},       {mid(60, 111), "basic.recover-ok"},   {mid(60, 120), "basic.nack"},
    {mid(85, 10), "confirm.select"},       {mid(85, 11), "confirm.select-ok"},   {mid(90, 10), "tx.select"},
    {mid(90, 11), "tx.select-ok"},         {mid(90, 20), "tx.commit"},           {mid(90, 21), "tx.commit-ok"},
    {mid(90, 30), "tx.rollback"},          {mid(90, 31), "tx.rollback-ok"},
};

}  // namespace

const char* method_name(uint32_t id) {
  for (const MethodName& m : kMethods) {
    if (m.id == id) return m.name;
  }
  return nullptr;
}


bool method_arguments(FieldList& f, uint32_t id, WireReader& a) {
  switch (id) {
    case mid(10, 10): {  // connection.start
      const uint8_t major = a.u8(), minor = a.u8();
      a.skip(a.u32());  // a field table
      const std::string_view mechs = a.str32();
      if (!a.ok()) return false;
      f.add_uint("version_major", major);
      f.add_uint("version_minor", minor);
      f.add_string("mechanisms", mechs, kTextMax);
      return false;
    }
    case mid(10, 11): {  // connection.start-ok: mechanism, and the user of a PLAIN response (never its password)
      a.skip(a.u32());  // a field table
      const std::string_view mech = a.str8();
      const std::string_view resp = a.str32();
      if (!a.ok()) return false;
      f.add_string("mechanism", mech, kNameMax);
      if (mech == "PLAIN") {
        // "authzid \0 authcid \0 password": the authentication identity only.
        const size_t z1 = resp.find('\0');
        if (z1 != std::string_view::npos) {
          const std::string_view rest = resp.substr(z1 + 1);
          f.add_string("user", rest.substr(0, rest.find('\0')), kNameMax);
        }
      }
      return false;
    }
    case mid(10, 30):
    case mid(10, 31): {  // tune / tune-ok
      const uint16_t chmax = a.u16();
      const uint32_t fmax = a.u32();
      const uint16_t hb = a.u16();
      if (!a.ok()) return false;
      f.add_uint("channel_max", chmax);
      f.add_uint("frame_max", fmax);
      f.add_uint("heartbeat", hb);
      return false;
    }
    case mid(10, 40): f.add_string("vhost", a.str8(), kNameMax); return false;
    case mid(10, 50):
    case mid(20, 40): {  // connection.close / channel.close
      const uint16_t code = a.u16();
      const std::string_view text = a.str8();
      const uint16_t cls = a.u16(), mth = a.u16();
      if (!a.ok()) return false;
      f.add_uint("reply_code", code);
      f.add_string("reply_text", text, kTextMax);
      if (cls != 0) {
        const char* failed = method_name(mid(cls, mth));
        if (failed != nullptr) f.add_string("failed_method", failed);
      }
      return false;
    }
    case mid(10, 60): f.add_string("reason", a.str8(), kTextMax); return false;
    case mid(20, 20):
    case mid(20, 21): f.add_bool("active", (a.u8() & 1) != 0); return false;
    case mid(40, 10): {  // exchange.declare
      a.u16();
      const std::string_view ex = a.str8(), type = a.str8();
      const uint8_t bits = a.u8();
      f.add_string("exchange", ex, kNameMax);
      f.add_string("exchange_type", type, kNameMax);
      if (bits & 1) f.add_bool("passive", true);
      if (bits & 2) f.add_bool("durable", true);
      return (bits & 16) != 0;
    }
    case mid(40, 20): {  // exchange.delete
      a.u16();
      f.add_string("exchange", a.str8(), kNameMax);
      return (a.u8() & 2) != 0;
    }
    case mid(40, 30):
    case mid(40, 40): {  // exchange.bind / unbind: destination <- source
      a.u16();
      const std::string_view dst = a.str8(), src = a.str8(), key = a.str8();
      f.add_string("destination", dst, kNameMax);
      f.add_string("exchange", src, kNameMax);
      f.add_string("routing_key", key, kNameMax);
      return (a.u8() & 1) != 0;
    }
    case mid(50, 10): {  // queue.declare
      a.u16();
      const std::string_view q = a.str8();
      const uint8_t bits = a.u8();
      f.add_string("queue", q, kNameMax);
      if (bits & 1) f.add_bool("passive", true);
      if (bits & 2) f.add_bool("durable", true);
      if (bits & 4) f.add_bool("exclusive", true);
      if (bits & 8) f.add_bool("auto_delete", true);
      return (bits & 16) != 0;
    }
    case mid(50, 11): {  // queue.declare-ok
      f.add_string("queue", a.str8(), kNameMax);
      const uint32_t msgs = a.u32(), cons = a.u32();
      if (!a.ok()) return false;
      f.add_uint("message_count", msgs);
      f.add_uint("consumer_count", cons);
      return false;
    }
    case mid(50, 20):
    case mid(50, 50): {  // queue.bind / unbind
      a.u16();
      const std::string_view q = a.str8(), ex = a.str8(), key = a.str8();
      f.add_string("queue", q, kNameMax);
      f.add_string("exchange", ex, kNameMax);
      f.add_string("routing_key", key, kNameMax);
      return id == mid(50, 20) && (a.u8() & 1) != 0;
    }
    case mid(50, 30): {  // queue.purge
      a.u16();
      f.add_string("queue", a.str8(), kNameMax);
      return (a.u8() & 1) != 0;
    }
    case mid(50, 40): {  // queue.delete
      a.u16();
      f.add_string("queue", a.str8(), kNameMax);
      return (a.u8() & 4) != 0;
    }
    case mid(50, 31):
    case mid(50, 41): {  // purge-ok / delete-ok
      const uint32_t c = a.u32();
      if (a.ok()) f.add_uint("message_count", c);
      return false;
    }
    case mid(60, 10): {  // basic.qos
      a.u32();
      const uint16_t count = a.u16();
      if (a.ok()) f.add_uint("prefetch_count", count);
      return false;
    }
    case mid(60, 20): {  // basic.consume
      a.u16();
      const std::string_view q = a.str8(), tag = a.str8();
      const uint8_t bits = a.u8();
      f.add_string("queue", q, kNameMax);
      f.add_string("consumer_tag", tag, kNameMax);
      if (bits & 2) f.add_bool("no_ack", true);
      return (bits & 8) != 0;
    }
    case mid(60, 21):
    case mid(60, 31): f.add_string("consumer_tag", a.str8(), kNameMax); return false;
    case mid(60, 30): {  // basic.cancel
      f.add_string("consumer_tag", a.str8(), kNameMax);
      return (a.u8() & 1) != 0;
    }
    case mid(60, 40): {  // basic.publish
      a.u16();
      const std::string_view ex = a.str8(), key = a.str8();
      const uint8_t bits = a.u8();
      f.add_string("exchange", ex, kNameMax);
      f.add_string("routing_key", key, kNameMax);
      if (bits & 1) f.add_bool("mandatory", true);
      return false;
    }
    case mid(60, 50): {  // basic.return
      const uint16_t code = a.u16();
      const std::string_view text = a.str8(), ex = a.str8(), key = a.str8();
      if (!a.ok()) return false;
      f.add_uint("reply_code", code);
      f.add_string("reply_text", text, kTextMax);
      f.add_string("exchange", ex, kNameMax);
      f.add_string("routing_key", key, kNameMax);
      return false;
    }
    case mid(60, 60): {  // basic.deliver
      const std::string_view tag = a.str8();
      const uint64_t dtag = a.u64();
      const uint8_t bits = a.u8();
      const std::string_view ex = a.str8(), key = a.str8();
      if (!a.ok()) return false;
      f.add_string("consumer_tag", tag, kNameMax);
      f.add_uint("delivery_tag", dtag);
      if (bits & 1) f.add_bool("redelivered", true);
      f.add_string("exchange", ex, kNameMax);
      f.add_string("routing_key", key, kNameMax);
      return false;
    }
    case mid(60, 70): {  // basic.get
      a.u16();
      f.add_string("queue", a.str8(), kNameMax);
      if (a.u8() & 1) f.add_bool("no_ack", true);
      return false;
    }
    case mid(60, 71): {  // basic.get-ok
      const uint64_t dtag = a.u64();
      const uint8_t bits = a.u8();
      const std::string_view ex = a.str8(), key = a.str8();
      const uint32_t count = a.u32();
      if (!a.ok()) return false;
      f.add_uint("delivery_tag", dtag);
      if (bits & 1) f.add_bool("redelivered", true);
      f.add_string("exchange", ex, kNameMax);
      f.add_string("routing_key", key, kNameMax);
      f.add_uint("message_count", count);
      return false;
    }
    case mid(60, 80):
    case mid(60, 90):
    case mid(60, 120): {  // ack / reject / nack
      const uint64_t dtag = a.u64();
      const uint8_t bits = a.u8();
      if (!a.ok()) return false;
      f.add_uint("delivery_tag", dtag);
      if (id != mid(60, 90) && (bits & 1)) f.add_bool("multiple", true);
      if ((id == mid(60, 90) && (bits & 1)) || (id == mid(60, 120) && (bits & 2))) f.add_bool("requeue", true);
      return false;
    }
    case mid(85, 10): return (a.u8() & 1) != 0;  // confirm.select
    default: return false;
  }
}


}  // namespace spanfeed::amqp
