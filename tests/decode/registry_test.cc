// The protocol registry: every descriptor is complete and consistent, and what is derived from it.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "decode_test_util.h"
#include "spanfeed/decoder.h"
#include "spanfeed/protocol.h"

namespace spanfeed {
namespace {

TEST(Registry, OneDescriptorPerProtocolInEnumOrder) {
  const auto reg = protocol_registry();
  ASSERT_EQ(reg.size() + 1, kProtocolCount);
  std::set<std::string_view> names;
  for (size_t i = 0; i < reg.size(); ++i) {
    const ProtocolDescriptor& d = *reg[i];
    EXPECT_EQ(static_cast<size_t>(d.id), i + 1) << d.name;
    EXPECT_EQ(to_string(d.id), d.name);
    EXPECT_EQ(protocol_descriptor(d.id), &d);
    EXPECT_EQ(protocol_descriptor(d.name), &d);
    EXPECT_TRUE(names.insert(d.name).second) << "duplicate name " << d.name;
    EXPECT_FALSE(d.title.empty()) << d.name;
    EXPECT_FALSE(d.tcp_ports.empty() && d.udp_ports.empty()) << d.name << ": no default port";
    EXPECT_FALSE(d.signatures.empty()) << d.name << ": never detected on other ports";
    ASSERT_NE(d.confirm, nullptr) << d.name;
    ASSERT_NE(d.make, nullptr) << d.name;
    EXPECT_LE(d.options.size(), kMaxProtocolOptions) << d.name;
  }
  EXPECT_EQ(protocol_descriptor(Protocol::kUnknown), nullptr);
  EXPECT_EQ(protocol_descriptor("gopher"), nullptr);
  EXPECT_EQ(protocol_names(), "http, redis, dns, memcached, mysql, pgsql, mongodb, smtp, tls, amqp, mqtt");
}

TEST(Registry, FactoriesMakeTheirProtocolsDecoder) {
  const DecodeConfig cfg = dectest::small_config();
  for (const ProtocolDescriptor* d : protocol_registry()) {
    auto dec = d->make(cfg);
    ASSERT_NE(dec, nullptr) << d->name;
    EXPECT_EQ(dec->protocol(), d->id) << d->name;
  }
}

TEST(Registry, FieldsAreDeclaredOnceWithAKnownType) {
  const std::set<std::string> types = {"string", "integer", "boolean", "array", "null"};
  for (const ProtocolDescriptor* d : protocol_registry()) {
    ASSERT_FALSE(d->fields.empty()) << d->name;
    std::set<std::string> seen;
    bool summary_declared = false;
    for (const RecordFieldSpec& f : d->fields) {
      const std::string side = f.side;
      EXPECT_TRUE(side == "request" || side == "response") << d->name << " " << f.name;
      EXPECT_TRUE(seen.insert(side + "." + f.name).second) << d->name << " declares " << f.name << " twice";
      EXPECT_NE(std::string(f.name), "bytes") << "bytes is common to every message";
      EXPECT_GT(std::string(f.meaning).size(), 2u) << d->name << " " << f.name;
      std::string t = f.type;
      for (size_t start = 0, bar; start <= t.size(); start = bar + 1) {
        bar = t.find('|', start);
        if (bar == std::string::npos) bar = t.size();
        EXPECT_TRUE(types.count(t.substr(start, bar - start))) << d->name << " " << f.name << ": " << t;
      }
      if (side == "request" && f.name == d->summary_field) summary_declared = true;
    }
    EXPECT_TRUE(summary_declared) << d->name << ": summary_field " << d->summary_field << " is no request field";
  }
}

TEST(Registry, DefaultPortsComeFromTheDescriptors) {
  size_t n = 0;
  for (const ProtocolDescriptor* d : protocol_registry()) n += d->tcp_ports.size() + d->udp_ports.size();
  const auto b = default_port_bindings();
  ASSERT_EQ(b.size(), n);
  size_t dns_udp = 0;
  for (const PortBinding& p : b) {
    const ProtocolDescriptor* d = protocol_descriptor(p.protocol);
    ASSERT_NE(d, nullptr);
    const auto ports = p.transport == Transport::kTcp ? d->tcp_ports : d->udp_ports;
    EXPECT_NE(std::find(ports.begin(), ports.end(), p.port), ports.end());
    if (p.protocol == Protocol::kDns && p.transport == Transport::kUdp && p.port == 53) ++dns_udp;
  }
  EXPECT_EQ(dns_udp, 1u);
}

TEST(Registry, ProtocolOptionsAreCheckedAgainstTheirDescriptor) {
  EXPECT_EQ(check_protocol_option(Protocol::kDns, "max_answers", 4), "");
  EXPECT_NE(check_protocol_option(Protocol::kDns, "max_answers", 65).find("must be in [0, 64]"), std::string::npos);
  EXPECT_NE(check_protocol_option(Protocol::kDns, "answers", 4).find("unknown dns option (known: max_answers)"),
            std::string::npos);
  EXPECT_NE(check_protocol_option(Protocol::kHttp, "x", 1).find("unknown http option"), std::string::npos);

  DecodeConfig cfg;
  EXPECT_EQ(cfg.option(Protocol::kDns, "max_answers"), 16u);
  EXPECT_EQ(cfg.option(Protocol::kRedis, "key_max"), 256u);
  cfg.options.push_back({Protocol::kDns, "max_answers", 2});
  EXPECT_EQ(cfg.option(Protocol::kDns, "max_answers"), 2u);
  EXPECT_EQ(validate(cfg), "");
  cfg.options.push_back({Protocol::kRedis, "key_max", 0});
  EXPECT_NE(validate(cfg).find("decode.redis.key_max: must be in [1, 512]"), std::string::npos);
}

TEST(Registry, ConfirmationsAgreeWithTheirSignaturesOnTypicalFirstChunks) {
  // A request of each protocol is confirmed by its own check and by no earlier one.
  const std::string dns_q = std::string("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12) +
                            std::string("\x03www\x07" "example\x03" "com\x00\x00\x01\x00\x01", 21);
  struct Case {
    Protocol p;
    Transport t;
    std::string bytes;
  };
  const Case cases[] = {
      {Protocol::kHttp, Transport::kTcp, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
      {Protocol::kRedis, Transport::kTcp, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"},
      {Protocol::kDns, Transport::kUdp, dns_q},
      {Protocol::kMemcached, Transport::kTcp, "get foo\r\n"},
      {Protocol::kSmtp, Transport::kTcp, "220 mx.example.org ESMTP Postfix\r\n"},
      {Protocol::kSmtp, Transport::kTcp, "EHLO client.example.net\r\n"},
      {Protocol::kTls, Transport::kTcp, std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + std::string(32, 'r')},
      {Protocol::kTls, Transport::kTcp, std::string("\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03", 11)},
      {Protocol::kTls, Transport::kTcp, std::string("\x80\x2e\x01\x03\x01\x00\x15\x00\x00\x00\x10", 11)},
      {Protocol::kAmqp, Transport::kTcp, std::string("AMQP\x00\x00\x09\x01", 8)},
      {Protocol::kAmqp, Transport::kTcp, std::string("\x01\x00\x00\x00\x00\x00\x14\x00\x0a\x00\x0a\x00\x09", 13)},
      {Protocol::kMqtt, Transport::kTcp, std::string("\x10\x13\x00\x04MQTT\x04\x02\x00\x3c\x00\x07sensor1", 21)},
      {Protocol::kMqtt, Transport::kTcp, std::string("\x10\x18\x00\x06MQIsdp\x03\x02\x00\x3c\x00\x0asub-orders", 26)},
  };
  for (const Case& c : cases) {
    const auto bytes = std::as_bytes(std::span(c.bytes.data(), c.bytes.size()));
    int first = -1;
    for (const ProtocolDescriptor* d : protocol_registry()) {
      if (d->confirm(bytes, c.t) != SniffResult::kNo) {
        first = static_cast<int>(d->id);
        break;
      }
    }
    EXPECT_EQ(first, static_cast<int>(c.p)) << to_string(c.p);
  }
}

}  // namespace
}  // namespace spanfeed
