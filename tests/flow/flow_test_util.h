// Test helpers for flow tracking / reassembly: crafted packets and a recording consumer.
// Runs in the test thread; allocates freely (tests only).
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "spanfeed/packet.h"
#include "spanfeed/tcp_reassembly.h"

namespace spanfeed::flowtest {

// Bytes of fake L2-L4 headers in front of the payload of a crafted frame.
inline constexpr uint16_t kHeaderBytes = 54;

struct Endpoint {
  IpAddr addr;
  uint16_t port;
};

inline IpAddr ipv4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  IpAddr ip{};
  ip.bytes[0] = a;
  ip.bytes[1] = b;
  ip.bytes[2] = c;
  ip.bytes[3] = d;
  return ip;
}

inline IpAddr ipv4_from_index(uint32_t i) {
  return ipv4(10, static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i));
}

// A frame plus its parsed metadata, as the RX lcore would hand it over.
struct TestPacket {
  std::vector<std::byte> frame;
  ParsedPacket parsed{};
  uint64_t ts_ns = 0;

  std::span<const std::byte> payload() const {
    return std::span<const std::byte>(frame).subspan(parsed.payload_offset, parsed.payload_len);
  }
};

inline TestPacket make_packet(uint8_t proto, const Endpoint& src, const Endpoint& dst, std::string_view payload,
                              uint64_t ts_ns, uint32_t vlan = 0) {
  TestPacket t;
  t.frame.assign(kHeaderBytes + payload.size(), std::byte{0});
  if (!payload.empty()) std::memcpy(t.frame.data() + kHeaderBytes, payload.data(), payload.size());
  ParsedPacket& p = t.parsed;
  p.src = src.addr;
  p.dst = dst.addr;
  p.src_port = src.port;
  p.dst_port = dst.port;
  p.vlan = vlan;
  p.ip_version = 4;
  p.l4_proto = proto;
  p.l3_offset = 14;
  p.l4_offset = 34;
  p.payload_offset = payload.empty() ? 0 : kHeaderBytes;
  p.payload_len = static_cast<uint16_t>(payload.size());
  p.l4_len_claimed = static_cast<uint32_t>(payload.size());
  p.ip_payload_len = static_cast<uint32_t>(payload.size() + (proto == kProtoTcp ? 20 : 8));
  t.ts_ns = ts_ns;
  return t;
}

inline TestPacket tcp_packet(const Endpoint& src, const Endpoint& dst, uint8_t flags, uint32_t seq, uint32_t ack,
                             std::string_view payload, uint64_t ts_ns) {
  TestPacket t = make_packet(kProtoTcp, src, dst, payload, ts_ns);
  t.parsed.tcp_flags = flags;
  t.parsed.tcp_seq = seq;
  t.parsed.tcp_ack = ack;
  t.parsed.tcp_window = 65535;
  return t;
}

inline TestPacket udp_packet(const Endpoint& src, const Endpoint& dst, std::string_view payload, uint64_t ts_ns) {
  return make_packet(kProtoUdp, src, dst, payload, ts_ns);
}

// Records every consumer call. Per flow serial and direction it keeps the
// stream as text with markers: data verbatim, "<gap N>", "<fin>", "<rst>".
class RecordingConsumer : public StreamConsumer {
 public:
  struct Event {
    std::string kind;  // open, data, gap, fin, rst, close
    uint64_t serial = 0;
    Direction dir = Direction::kClientToServer;
    std::string data;
    uint64_t missing = 0;
    GapReason gap_reason = GapReason::kCount;
    CloseReason close_reason = CloseReason::kCount;
    uint64_t ts_ns = 0;
    uint64_t peer_acked = kAckUnknown;  // data: on_data's peer_acked
    const std::byte* data_ptr = nullptr;
  };
  static Event make_event(const char* kind, uint64_t serial, Direction dir = Direction::kClientToServer) {
    Event e;
    e.kind = kind;
    e.serial = serial;
    e.dir = dir;
    return e;
  }

  void on_open(const Flow& flow, uint64_t ts_ns) override {
    Event e = make_event("open", flow.serial);
    e.ts_ns = ts_ns;
    events.push_back(e);
    ++opens;
    ++open_now;
  }
  void on_data(const Flow& flow, Direction dir, std::span<const std::byte> data, uint64_t ts_ns,
               uint64_t peer_acked) override {
    Event e = make_event("data", flow.serial, dir);
    e.peer_acked = peer_acked;
    e.data.assign(reinterpret_cast<const char*>(data.data()), data.size());
    e.ts_ns = ts_ns;
    e.data_ptr = data.data();
    if (data.empty()) ++empty_data_calls;
    stream(flow.serial, dir) += e.data;
    data_bytes += data.size();
    if (keep_events) events.push_back(std::move(e));
  }
  void on_gap(const Flow& flow, Direction dir, uint64_t missing, GapReason reason, uint64_t ts_ns) override {
    Event e = make_event("gap", flow.serial, dir);
    e.missing = missing;
    e.gap_reason = reason;
    e.ts_ns = ts_ns;
    stream(flow.serial, dir) += "<gap " + std::to_string(missing) + ">";
    gap_bytes += missing;
    ++gaps;
    if (keep_events) events.push_back(e);
  }
  void on_overlap_conflict(const Flow& flow, Direction dir, uint64_t ts_ns) override {
    Event e = make_event("conflict", flow.serial, dir);
    e.ts_ns = ts_ns;
    ++conflicts;
    if (keep_events) events.push_back(e);
  }
  void on_fin(const Flow& flow, Direction dir, uint64_t ts_ns) override {
    Event e = make_event("fin", flow.serial, dir);
    e.ts_ns = ts_ns;
    stream(flow.serial, dir) += "<fin>";
    ++fins;
    if (keep_events) events.push_back(e);
  }
  void on_rst(const Flow& flow, Direction dir, uint64_t ts_ns) override {
    Event e = make_event("rst", flow.serial, dir);
    e.ts_ns = ts_ns;
    stream(flow.serial, dir) += "<rst>";
    if (keep_events) events.push_back(e);
  }
  void on_close(const Flow& flow, CloseReason reason, uint64_t ts_ns) override {
    Event e = make_event("close", flow.serial);
    e.close_reason = reason;
    e.ts_ns = ts_ns;
    ++closes;
    --open_now;
    close_reasons[flow.serial] = reason;
    if (keep_events) events.push_back(e);
  }

  std::string& stream(uint64_t serial, Direction dir) { return streams[{serial, dir}]; }
  std::string text(uint64_t serial, Direction dir) {
    auto it = streams.find({serial, dir});
    return it == streams.end() ? std::string{} : it->second;
  }
  // Events of one kind, in order.
  std::vector<Event> of(std::string_view kind) const {
    std::vector<Event> out;
    for (const Event& e : events) {
      if (e.kind == kind) out.push_back(e);
    }
    return out;
  }

  bool keep_events = true;
  std::vector<Event> events;
  std::map<std::pair<uint64_t, Direction>, std::string> streams;
  std::map<uint64_t, CloseReason> close_reasons;
  uint64_t opens = 0;
  int64_t open_now = 0;
  uint64_t closes = 0;
  uint64_t fins = 0;
  uint64_t gaps = 0;
  uint64_t gap_bytes = 0;
  uint64_t conflicts = 0;  // on_overlap_conflict calls
  uint64_t data_bytes = 0;
  uint64_t empty_data_calls = 0;
};

// One TCP connection between a client and a server with chosen ISNs.
// Offsets are stream offsets: byte 0 is the first data byte after the SYN.
struct TcpConn {
  Endpoint client;
  Endpoint server;
  uint32_t c_isn;
  uint32_t s_isn;

  uint32_t cseq(uint32_t off) const { return c_isn + 1 + off; }
  uint32_t sseq(uint32_t off) const { return s_isn + 1 + off; }

  TestPacket syn(uint64_t ts) const { return tcp_packet(client, server, tcp_flag::kSyn, c_isn, 0, "", ts); }
  TestPacket syn_ack(uint64_t ts) const {
    return tcp_packet(server, client, tcp_flag::kSyn | tcp_flag::kAck, s_isn, c_isn + 1, "", ts);
  }
  TestPacket ack(uint64_t ts) const {
    return tcp_packet(client, server, tcp_flag::kAck, c_isn + 1, s_isn + 1, "", ts);
  }
  // Client data at stream offset `off`; acks server offset `s_acked`.
  TestPacket c_data(uint32_t off, std::string_view data, uint64_t ts, uint32_t s_acked = 0,
                    uint8_t extra = 0) const {
    return tcp_packet(client, server, tcp_flag::kAck | tcp_flag::kPsh | extra, cseq(off), sseq(s_acked), data, ts);
  }
  TestPacket s_data(uint32_t off, std::string_view data, uint64_t ts, uint32_t c_acked = 0,
                    uint8_t extra = 0) const {
    return tcp_packet(server, client, tcp_flag::kAck | tcp_flag::kPsh | extra, sseq(off), cseq(c_acked), data, ts);
  }
  // Pure ACK from the server acknowledging client stream offset `c_acked`.
  TestPacket s_ack(uint32_t c_acked, uint64_t ts, uint32_t s_off = 0) const {
    return tcp_packet(server, client, tcp_flag::kAck, sseq(s_off), cseq(c_acked), "", ts);
  }
  TestPacket c_ack(uint32_t s_acked, uint64_t ts, uint32_t c_off = 0) const {
    return tcp_packet(client, server, tcp_flag::kAck, cseq(c_off), sseq(s_acked), "", ts);
  }
  TestPacket c_fin(uint32_t off, uint64_t ts, uint32_t s_acked = 0) const {
    return tcp_packet(client, server, tcp_flag::kFin | tcp_flag::kAck, cseq(off), sseq(s_acked), "", ts);
  }
  TestPacket s_fin(uint32_t off, uint64_t ts, uint32_t c_acked = 0) const {
    return tcp_packet(server, client, tcp_flag::kFin | tcp_flag::kAck, sseq(off), cseq(c_acked), "", ts);
  }
  TestPacket c_rst(uint32_t off, std::string_view data, uint64_t ts) const {
    return tcp_packet(client, server, tcp_flag::kRst, cseq(off), 0, data, ts);
  }
  TestPacket s_rst(uint32_t off, std::string_view data, uint64_t ts) const {
    return tcp_packet(server, client, tcp_flag::kRst | tcp_flag::kAck, sseq(off), 0, data, ts);
  }
};

inline TcpConn default_conn() {
  return TcpConn{{ipv4(10, 0, 0, 2), 51234}, {ipv4(10, 0, 0, 1), 3306}, 1000, 5000};
}

// Sum of all outcomes == packets fed: every packet counted exactly once.
inline void expect_ledger(const Reassembler& r, uint64_t fed) {
  EXPECT_EQ(r.counters().segments, fed);
  EXPECT_EQ(r.counters().outcome_total(), fed);
  EXPECT_TRUE(r.ledger_balanced());
}

// The reassembly tests' fixture: a Reassembler (config from the subclass; make() for another) over a
// RecordingConsumer, fed crafted packets and counting them for expect_ledger.
class ReassemblerTest : public ::testing::Test {
 protected:
  explicit ReassemblerTest(const ReassemblerConfig& c) : config_(c) {}
  void SetUp() override { make(config_); }
  void make(const ReassemblerConfig& c) {
    ASSERT_EQ(validate(c), "");
    r_.reset();
    rec_ = RecordingConsumer{};
    r_ = std::make_unique<Reassembler>(c, rec_);
    fed_ = 0;
  }
  SegmentOutcome feed(const TestPacket& t) {
    ++fed_;
    return r_->process(PacketView{t.frame, &t.parsed, t.ts_ns, 0});
  }
  void handshake(const TcpConn& c, uint64_t ts) {
    EXPECT_EQ(feed(c.syn(ts)), SegmentOutcome::kNoPayload);
    EXPECT_EQ(feed(c.syn_ack(ts + 1)), SegmentOutcome::kNoPayload);
    EXPECT_EQ(feed(c.ack(ts + 2)), SegmentOutcome::kNoPayload);
  }
  const ReassemblerCounters& ctr() const { return r_->counters(); }

  ReassemblerConfig config_;
  RecordingConsumer rec_;
  std::unique_ptr<Reassembler> r_;
  uint64_t fed_ = 0;
};

}  // namespace spanfeed::flowtest
