// InflatePool: zlib inflate contexts shared by the decoders (MySQL compressed protocol, MongoDB
// OP_COMPRESSED) and the rules engine (gzip/deflate HTTP bodies). Built at start-up, where zlib
// allocates every window; leased and released on a worker lcore without allocating.
#pragma once

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace spanfeed {

class InflatePool {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;
  enum class Format : uint8_t {
    kZlib,        // zlib header (RFC 1950)
    kZlibOrGzip,  // zlib or gzip header, detected per stream
  };

  // `contexts` inflate contexts (a context that zlib cannot set up is never
  // leased) and one reused output block of `out_bytes`.
  InflatePool(uint32_t contexts, Format format, size_t out_bytes);
  ~InflatePool();
  InflatePool(const InflatePool&) = delete;
  InflatePool& operator=(const InflatePool&) = delete;

  // A free context, reset for a new stream; kNone when every one is leased.
  uint32_t lease();
  // Back to the pool (kNone: nothing to release).
  void release(uint32_t i);
  // Every context free again (streams in progress are abandoned).
  void release_all();

  z_stream& stream(uint32_t i) { return ctx_[i].zs; }
  // The output block: what one inflate call may produce before it is consumed.
  std::span<std::byte> out() { return out_; }

 private:
  struct Context {
    z_stream zs{};  // zlib keeps a pointer back to it: never moves (heap array)
    bool ok = false;
  };
  uint32_t size_;
  std::unique_ptr<Context[]> ctx_;
  std::vector<uint32_t> free_;  // capacity for every context: never reallocates
  std::vector<std::byte> out_;
};

}  // namespace spanfeed
