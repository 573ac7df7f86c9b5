// The AMQP 0-9-1 decoder's entry points for its descriptor (descriptor.cc); internal to src/decode/amqp/.
// Start-up (make_decoder allocates) and worker (confirm, no allocation).
#pragma once

#include <memory>
#include <span>

#include "spanfeed/decoder.h"

namespace spanfeed::amqp {

std::unique_ptr<Decoder> make_decoder(const DecodeConfig& cfg);
SniffResult confirm(std::span<const std::byte> chunk, Transport t);

}  // namespace spanfeed::amqp
