// libFuzzer target for the packet parser and decapsulation (scripts/fuzz-decoders.sh builds it with the
// decoders'; packet_test replays it without clang): byte 0 picks the link type and the decap settings, the
// rest is one frame, copied to a buffer of exactly its size so that any read past it is an ASan error.
// Checks, on kOk, that every offset and length the parser reports stays inside the frame. Seeds:
// tests/core/corpus/packet (the first frames of the tunnel captures and two plain ones, byte 0 their link).
// Runs in the fuzzer / test thread.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>

#include "spanfeed/packet.h"

namespace {
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "packet invariant failed: %s\n", what);
    std::abort();
  }
}
}  // namespace

int spanfeed_fuzz_packet(const uint8_t* data, size_t size) {
  using namespace spanfeed;
  if (size == 0) return 0;
  const uint8_t sel = data[0];
  const LinkType link = static_cast<LinkType>(sel % 6);
  DecapConfig decap;
  decap.enabled = (sel & 0x40) == 0;
  decap.max_depth = static_cast<uint8_t>(1 + ((sel >> 3) & 7));
  decap.tunnel_in_flow_key = (sel & 0x80) == 0;
  const size_t n = size - 1;
  std::unique_ptr<std::byte[]> frame(new std::byte[n == 0 ? 1 : n]);
  if (n != 0) std::memcpy(frame.get(), data + 1, n);
  ParsedPacket p;
  const ParseOutcome o = parse_packet(std::span<const std::byte>(frame.get(), n), link, p, decap);
  check(static_cast<size_t>(o) < static_cast<size_t>(ParseOutcome::kCount), "outcome in range");
  if (o != ParseOutcome::kOk) return 0;
  check(p.ip_version == 4 || p.ip_version == 6, "ip version");
  check(p.l3_offset < n, "l3 inside the frame");
  if (p.l4_offset != 0) check(p.l4_offset > p.l3_offset && p.l4_offset <= n, "l4 inside the frame");
  if (p.payload_offset != 0) {
    check(p.payload_offset >= p.l4_offset && p.payload_offset <= n, "payload start inside the frame");
    check(size_t{p.payload_offset} + p.payload_len <= n, "payload inside the frame");
  } else {
    check(p.payload_len == 0, "no payload offset, no payload");
  }
  check(p.tunnel.depth <= decap.max_depth && p.tunnel.depth <= kMaxTunnelDepth, "tunnel depth");
  check(static_cast<size_t>(p.tunnel.type) < kTunnelTypeCount, "tunnel type");
  for (size_t i = 0; i < p.tunnel.depth; ++i) {
    check(p.tunnel.layers[i] != TunnelType::kNone && static_cast<size_t>(p.tunnel.layers[i]) < kTunnelTypeCount,
          "tunnel layer");
  }
  char text[64];
  check(format_ip(p.src, p.ip_version, text, sizeof(text)) < sizeof(text), "address text");
  return 0;
}

#ifdef SPANFEED_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return spanfeed_fuzz_packet(data, size); }
#endif
