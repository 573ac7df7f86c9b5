// The TLS decoder's entry points for its descriptor (descriptor.cc); internal to src/decode/tls/.
// Start-up (make_decoder allocates) and worker (confirm, no allocation).
#pragma once

#include <memory>
#include <span>

#include "spanfeed/decoder.h"

namespace spanfeed::tls {

std::unique_ptr<Decoder> make_decoder(const DecodeConfig& cfg);
SniffResult confirm(std::span<const std::byte> chunk, Transport t);
// OpenSSL's initialisation (its configuration, providers and method stores: ~5 M instructions) and
// the two digests, once for the process (crypto.cc); every worker's Crypto shares them. Start-up,
// any thread: the descriptor's prepare.
void prepare_crypto();

}  // namespace spanfeed::tls
