// gRPC: the HTTP/2 decoder (src/decode/http2/) serving flows on gRPC's ports. gRPC has no framing of its
// own below HTTP/2: the HTTP/2 decoder makes each stream's record `grpc` when its content-type is
// application/grpc* (service, method, messages, grpc-status), on any port. Dependency: grpc -> http2 only.
// Start-up (make_decoder allocates); confirm runs on a worker lcore and never allocates.
#include "grpc.h"

#include "http2/http2.h"

namespace spanfeed::grpc {

std::unique_ptr<Decoder> make_decoder(const DecodeConfig& cfg) { return http2::make_decoder(cfg, Protocol::kGrpc); }

// A gRPC connection starts as any HTTP/2 one: the HTTP/2 entry (earlier in the registry) confirms it and
// its gRPC streams still become `grpc` records. Nothing on the wire is gRPC's alone before the headers.
SniffResult confirm(std::span<const std::byte> /*chunk*/, Transport /*t*/) { return SniffResult::kNo; }

}  // namespace spanfeed::grpc
