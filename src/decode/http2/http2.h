// The HTTP/2 decoder's entry points for its descriptor (descriptor.cc) and for gRPC's (src/decode/grpc/).
// Start-up (make_decoder allocates) and worker (confirm, no allocation).
#pragma once

#include <memory>
#include <span>

#include "spanfeed/decoder.h"

namespace spanfeed::http2 {

// One decoder per worker for flows of protocol `as` (kHttp2, or kGrpc for flows on gRPC's ports): the same
// HTTP/2 decoder; each stream's record is `grpc` when its content-type says so, else `http2`.
std::unique_ptr<Decoder> make_decoder(const DecodeConfig& cfg, Protocol as);
std::unique_ptr<Decoder> make_decoder(const DecodeConfig& cfg);
SniffResult confirm(std::span<const std::byte> chunk, Transport t);

}  // namespace spanfeed::http2
