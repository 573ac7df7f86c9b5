// HTTP/2 connection contexts: two HPACK inflaters (nghttp2) and a table of open streams per connection,
// pooled per worker (as InflatePool keeps zlib streams), so a flow's own state stays small.
// The pool is built at start-up; contexts are leased on a worker lcore when a connection starts and
// released when it closes. The inflaters allocate through a per-connection budget (hpack_memory_bytes).
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "spanfeed/record.h"

namespace spanfeed::http2 {

// gRPC length-prefixed messages of one direction of a stream: 1 flag byte, 4 length bytes, the message.
struct GrpcFraming {
  uint32_t left = 0;      // bytes of the current message still to come
  uint32_t len = 0;       // its length prefix, being read
  uint8_t got = 0;        // prefix bytes read (0..5)
  uint32_t messages = 0;  // complete prefixes seen
  uint32_t compressed = 0;
  uint64_t bytes = 0;     // sum of their lengths
  uint32_t max_len = 0;
};

// One direction of a stream: its message (request or response), what it carried.
struct StreamSide {
  Message* msg = nullptr;
  uint64_t frame_bytes = 0;  // frames of this stream, headers included
  uint64_t body_bytes = 0;   // DATA payload without padding
  GrpcFraming grpc;
  uint8_t blocks = 0;        // header blocks seen (the second of a response: trailers)
  bool ended = false;        // END_STREAM
};

struct Stream {
  uint32_t id = 0;  // 0: free entry
  uint64_t order = 0;  // opening order (the oldest is evicted when the table is full)
  StreamSide side[2];
  uint32_t rst_code = 0;
  int32_t grpc_status = -1;
  uint16_t status = 0;      // :status of the final response
  bool rst = false;
  bool grpc = false;        // content-type application/grpc*
  bool undecodable = false;
  bool counted = false;     // its undecodable state was counted
  bool gap = false;         // a gap took bytes of it (flagged on its record even where no message had begun)
};

// Per-connection allocation budget for nghttp2 (its nghttp2_mem user data).
struct HpackBudget {
  size_t used = 0;
  size_t cap = 0;
  bool hit = false;  // an allocation was refused
};

struct Connection {
  nghttp2_hd_inflater* hd[2] = {nullptr, nullptr};  // per logical direction (index_of)
  HpackBudget budget;
  nghttp2_mem mem{};
  uint64_t next_order = 0;
  uint32_t used = 0;  // stream slots taken since the lease: the table's prefix that lookups scan
};

class ConnPool {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  ConnPool(uint32_t connections, uint32_t max_streams, size_t memory_cap);
  ~ConnPool();
  ConnPool(const ConnPool&) = delete;
  ConnPool& operator=(const ConnPool&) = delete;

  // A context with two fresh inflaters (allocated within the budget) and an empty stream table;
  // kNone when every context is leased or the inflaters could not be made.
  uint32_t lease();
  void release(uint32_t i);
  Connection& conn(uint32_t i) { return conns_[i]; }
  // A leased context's stream slots taken so far (the table grows into its max_streams slots as a
  // connection opens more streams at once): lookups scan what the connection has used, not the whole table.
  std::span<Stream> streams(uint32_t i) { return {streams_[i].get(), conns_[i].used}; }
  // The next untaken slot of the table, or nullptr when all max_streams are taken.
  Stream* take_slot(uint32_t i) {
    Connection& c = conns_[i];
    return c.used < max_streams_ ? &streams_[i][c.used++] : nullptr;
  }
  uint32_t leased() const { return leased_; }

 private:
  uint32_t size_;
  uint32_t max_streams_;
  size_t cap_;
  std::unique_ptr<Connection[]> conns_;  // HpackBudget addresses are handed to nghttp2: never move
  std::vector<std::unique_ptr<Stream[]>> streams_;  // per context, made on its first lease
  std::vector<uint32_t> free_;
  uint32_t leased_ = 0;
};

}  // namespace spanfeed::http2
