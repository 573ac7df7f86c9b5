// InflatePool: zlib contexts with their windows allocated at start-up (construction allocates;
// lease/release on a worker lcore do not).
#include "decode/inflate.h"

namespace spanfeed {

namespace {

// Inflates one empty zlib stream so that zlib allocates the context's window
// now, not on the data path; leaves `zs` reset for its first real stream.
void warm_inflate(z_stream& zs) {
  static const uint8_t kEmpty[] = {0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01};  // zlib("")
  uint8_t o[8];
  zs.next_in = const_cast<Bytef*>(kEmpty);
  zs.avail_in = sizeof(kEmpty);
  zs.next_out = o;
  zs.avail_out = sizeof(o);
  inflate(&zs, Z_FINISH);
  inflateReset(&zs);
}

}  // namespace

InflatePool::InflatePool(uint32_t contexts, Format format, size_t out_bytes)
    : size_(contexts), ctx_(std::make_unique<Context[]>(contexts)), out_(out_bytes) {
  free_.reserve(contexts);
  const int window = format == Format::kZlibOrGzip ? 15 + 32 : 15;  // + 32: gzip or zlib header, detected
  for (uint32_t i = 0; i < contexts; ++i) {
    Context& c = ctx_[i];
    c.ok = inflateInit2(&c.zs, window) == Z_OK;
    if (c.ok) warm_inflate(c.zs);
  }
  release_all();
}

InflatePool::~InflatePool() {
  for (uint32_t i = 0; i < size_; ++i) {
    if (ctx_[i].ok) inflateEnd(&ctx_[i].zs);
  }
}

uint32_t InflatePool::lease() {
  if (free_.empty()) return kNone;
  const uint32_t i = free_.back();
  free_.pop_back();
  inflateReset(&ctx_[i].zs);
  return i;
}

void InflatePool::release(uint32_t i) {
  if (i < size_) free_.push_back(i);
}

void InflatePool::release_all() {
  free_.clear();
  for (uint32_t i = size_; i-- > 0;) {  // lowest index leased first
    if (ctx_[i].ok) free_.push_back(i);
  }
}

}  // namespace spanfeed
