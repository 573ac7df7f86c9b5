// RecordBuilder detection: port map, sniffing (signatures, then each protocol's confirm), the kept first bytes
// of flows too short to classify, starting a decoder. Runs on one worker lcore; no allocation.
#include <algorithm>
#include <cstring>

#include "record_builder_internal.h"

#include "spanfeed/decoder.h"

namespace spanfeed {

using namespace builder;

void RecordBuilder::start_decoder(const Flow& f, FlowSession& s, Protocol p, DetectOutcome how, bool swap,
                                  uint64_t ts_ns) {
  --counters_.flows_undetected_now;
  ++counters_.detect[static_cast<size_t>(how)];
  s.protocol = p;
  if (how == DetectOutcome::kBySniff && swap != s.swapped) {
    s.swapped = swap;
    std::swap(s.client, s.server);
  }
  Decoder* d = decoders_[static_cast<size_t>(p)].get();
  if (d == nullptr || how == DetectOutcome::kNoDecoder || how == DetectOutcome::kUnknown) {
    s.detect_state = kDetectIgnored;
    return;
  }
  s.detect_state = kDetectActive;
  s.by_key = d->matches_by_key();
  s.state.fill(std::byte{0});
  FlowContext ctx(*this, s, f.slot);
  d->open(ctx, ts_ns);
}

bool FlowContext::hand_over(Protocol p, Direction dir, std::span<const std::byte> rest, uint64_t ts_ns,
                            const Message* origin) {
  Decoder* d = p < Protocol::kCount ? b_.decoders_[static_cast<size_t>(p)].get() : nullptr;
  if (d == nullptr) return false;
  // The old decoder ends its messages in progress first (HTTP/1: a response still open when the client's
  // HTTP/2 preface arrives): its state is wiped below, and a message held there would never go back to the pool.
  if (Decoder* old = s_.protocol < Protocol::kCount ? b_.decoders_[static_cast<size_t>(s_.protocol)].get() : nullptr) {
    old->close(*this, ts_ns);
  }
  b_.release_carry(s_, 0);  // what the old decoder kept is not the new protocol's
  b_.release_carry(s_, 1);
  s_.protocol = p;
  s_.by_key = d->matches_by_key();
  s_.state.fill(std::byte{0});
  d->open(*this, ts_ns);
  if (origin != nullptr) {
    d->upgraded(*this, origin, ts_ns);
  } else if (s_.gap_before[index_of(b_.logical(s_, opposite(dir)))]) {
    // Taken over mid-connection (no upgrade): the other direction lost bytes the old decoder heard of, so
    // its next bytes may be the tail of a message and what the lost ones carried is unknown (an HTTP/2
    // request whose HEADERS were lost: its record says so).
    d->gap(*this, opposite(dir), 0, ts_ns);
  }
  if (!rest.empty()) d->data(*this, dir, rest, ts_ns);
  return true;
}

void RecordBuilder::drop_prefix(uint32_t slot, FlowSession& s, size_t pd) {
  SniffPrefix& pre = sniff_prefix(s);
  if (pre.len[pd] == 0) return;
  const std::span<const std::byte> bytes(pre.bytes[pd].data(), pre.len[pd]);
  counters_.undecoded_bytes += bytes.size();
  const Direction dir = pd == 0 ? Direction::kClientToServer : Direction::kServerToClient;
  if (observer_ != nullptr) observer_->scan(slot, s.protocol, false, s.udp, logical(s, dir), 0, bytes);
  pre.len[pd] = 0;
}

RecordBuilder::Detected RecordBuilder::detect(const Flow& f, FlowSession& s, Direction dir,
                                              std::span<const std::byte> data, std::span<const std::byte>* replay,
                                              uint64_t ts_ns) {
  if (s.detect_state == kDetectPort) {
    const bool has = decoders_[static_cast<size_t>(s.protocol)] != nullptr;
    start_decoder(f, s, s.protocol, has ? DetectOutcome::kByPort : DetectOutcome::kNoDecoder, s.swapped, 0);
    return has ? Detected::kDecode : Detected::kNo;
  }
  if (s.detect_state != kDetectNone && s.detect_state != kDetectSniffing) return Detected::kNo;
  s.detect_state = kDetectSniffing;
  if (!cfg_.sniff_unknown_ports) {
    if (++s.sniff_chunks >= cfg_.sniff_max_chunks) start_decoder(f, s, Protocol::kUnknown, DetectOutcome::kUnknown, false, 0);
    return Detected::kNo;
  }
  SniffPrefix& pre = sniff_prefix(s);
  const size_t pd = index_of(dir);
  // TCP: the tries are counted per direction (4 bits each), and the flow is given up when both sides have
  // had theirs. A flow met mid-stream may send many chunks one way (a large response) before the other
  // side's next request, which is where a message starts.
  const uint32_t max_tries = std::min<uint32_t>(cfg_.sniff_max_chunks, 15);
  const auto tries = [&s](size_t side) -> uint32_t { return side == 0 ? s.sniff_chunks & 0x0fu : s.sniff_chunks >> 4; };
  if (!s.udp && tries(pd) >= max_tries) return Detected::kNo;  // this side has had its tries; the other not yet
  // What to classify: the kept first bytes of this direction, then this chunk.
  std::span<const std::byte> view = data;
  if (pre.len[pd] > 0) {
    const size_t n = std::min(data.size(), sniff_view_.size() - pre.len[pd]);
    std::memcpy(sniff_view_.data(), pre.bytes[pd].data(), pre.len[pd]);
    std::memcpy(sniff_view_.data() + pre.len[pd], data.data(), n);
    view = std::span<const std::byte>(sniff_view_.data(), pre.len[pd] + n);
  }
  // The signatures pick the candidates; each protocol's structural check
  // confirms (in registry order, so the first that agrees wins).
  const Transport t = s.udp ? Transport::kUdp : Transport::kTcp;
  auto classify = [&](std::span<const std::byte> v, SniffResult* r) -> const ProtocolDescriptor* {
    const uint32_t candidates = signatures_ != nullptr ? signatures_->candidates(v, t) : kAllProtocols;
    for (const ProtocolDescriptor* desc : protocol_registry()) {
      if (decoders_[static_cast<size_t>(desc->id)] == nullptr || (candidates & protocol_bit(desc->id)) == 0) continue;
      *r = desc->confirm(v, t);
      if (*r != SniffResult::kNo) return desc;
      if (signatures_ != nullptr) ++counters_.detect_rejected;  // a signature said yes, the check no
    }
    return nullptr;
  };
  SniffResult r = SniffResult::kNo;
  const ProtocolDescriptor* desc = classify(view, &r);
  if (desc == nullptr && pre.len[pd] > 0) {
    // The kept bytes may be a message no check knows (a flow met mid-stream): this chunk alone may start one.
    desc = classify(data, &r);
    if (desc != nullptr) drop_prefix(f.slot, s, pd);
  }
  if (desc != nullptr) {
    const Decoder* d = decoders_[static_cast<size_t>(desc->id)].get();
    ++counters_.detected_by_payload[static_cast<size_t>(d->protocol())];
    drop_prefix(f.slot, s, 1 - pd);  // the other side's kept bytes: order unknown, not decoded
    // This side's kept bytes go to the decoder first (copied out: the
    // decoder's state takes their place).
    std::memcpy(replay_.data(), pre.bytes[pd].data(), pre.len[pd]);
    *replay = std::span<const std::byte>(replay_.data(), pre.len[pd]);
    pre.len[pd] = 0;
    // Physical direction of a request: C2S unless the sniff says otherwise.
    const bool is_req = r == SniffResult::kEither ? dir == Direction::kClientToServer : r == SniffResult::kRequest;
    const bool swap = (dir == Direction::kClientToServer) != is_req;
    start_decoder(f, s, d->protocol(), DetectOutcome::kBySniff, swap, 0);
    if (s.gap_before[1 - pd]) {
      // The other direction lost bytes before this: its next bytes may be the tail of a message.
      // (This direction starts at the message the sniff recognised.)
      s.gap_before = {false, false};
      ++counters_.gaps;
      FlowContext ctx(*this, s, f.slot);
      decoders_[static_cast<size_t>(desc->id)]->gap(ctx, logical(s, opposite(dir)), 0, ts_ns);
    }
    return Detected::kDecode;
  }
  // Every chunk is an attempt, kept or not.
  bool exhausted = false;
  if (s.udp) {
    exhausted = ++s.sniff_chunks >= cfg_.sniff_max_chunks;
  } else {
    s.sniff_chunks = static_cast<uint8_t>(s.sniff_chunks + (pd == 0 ? 0x01 : 0x10));
    exhausted = tries(0) >= max_tries && tries(1) >= max_tries;
    if (!exhausted && tries(pd) >= max_tries) {
      drop_prefix(f.slot, s, pd);
      return Detected::kNo;
    }
  }
  if (exhausted) {
    drop_prefix(f.slot, s, 0);
    drop_prefix(f.slot, s, 1);
    start_decoder(f, s, Protocol::kUnknown, DetectOutcome::kUnknown, false, 0);
    return Detected::kNo;
  }
  if (!s.udp && pre.len[pd] + data.size() <= kSniffPrefixBytes) {
    // Perhaps too little to tell yet: keep it for the next chunk's try.
    std::memcpy(pre.bytes[pd].data() + pre.len[pd], data.data(), data.size());
    pre.len[pd] = static_cast<uint8_t>(pre.len[pd] + data.size());
    return Detected::kKept;
  }
  drop_prefix(f.slot, s, pd);
  return Detected::kNo;
}
}  // namespace spanfeed
