// Payload-based protocol detection with Hyperscan: the registry's signatures in one block-mode database.
// Built on the control core (allocates the scratch); candidates() runs on one worker, no allocation.
#pragma once

#include <cstddef>
#include <span>

#include "spanfeed/decoder.h"

namespace spanfeed {

// One per worker (the scratch is per object); the database is compiled once
// per process from every descriptor's signatures (DOTALL, single match).
class HyperscanSignatures final : public SignatureMatcher {
 public:
  HyperscanSignatures();
  ~HyperscanSignatures() override;
  HyperscanSignatures(const HyperscanSignatures&) = delete;
  HyperscanSignatures& operator=(const HyperscanSignatures&) = delete;

  uint32_t candidates(std::span<const std::byte> chunk, Transport t) override;
  static constexpr size_t kScanBytes = 64;  // signatures are anchored: the first bytes decide
  // Empty when every signature of the registry compiles, else the Hyperscan error naming the pattern.
  static std::string compile_error();

 private:
  void* scratch_ = nullptr;
};

}  // namespace spanfeed
