// zlib helper shared by the decoders (MySQL compressed protocol) and the rules engine (HTTP bodies).
// Start-up only: it makes zlib allocate there, so the data path never does.
#pragma once

#include <zlib.h>

#include <cstdint>

namespace spanfeed {

// Inflates one empty zlib stream so that zlib allocates the context's window
// now, not on the data path; leaves `zs` reset for its first real stream.
inline void warm_inflate(z_stream& zs) {
  static const uint8_t kEmpty[] = {0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01};  // zlib("")
  uint8_t o[8];
  zs.next_in = const_cast<Bytef*>(kEmpty);
  zs.avail_in = sizeof(kEmpty);
  zs.next_out = o;
  zs.avail_out = sizeof(o);
  inflate(&zs, Z_FINISH);
  inflateReset(&zs);
}

}  // namespace spanfeed
