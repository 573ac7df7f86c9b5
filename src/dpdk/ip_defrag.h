// Per-worker IP fragment reassembly over DPDK's rte_ip_frag: a bounded table,
// timeouts in packet time, every fragment counted (DefragCounters). Created on
// the control core (allocates the table); used on one worker lcore, which it
// never allocates on. Internal to the DPDK adapter.
#pragma once

#include <rte_ip_frag.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "spanfeed/counters.h"
#include "spanfeed/defrag_counters.h"
#include "spanfeed/packet.h"

struct rte_mbuf;
struct rte_mempool;

namespace spanfeed::dpdk {

// Room for the headers of a first fragment copied out of a mapped file: L2,
// VLAN/MPLS and up to decap.max_depth tunnel layers, then the IP header.
inline constexpr uint16_t kFragHeaderRoom = 512;

// Aligned to a cache line: one per worker, its counters written per fragment.
class alignas(64) Defragmenter {
 public:
  // max_datagrams: table entries (each holds up to 8 fragments' mbufs).
  // hdr_pool (mapped capture files, else null): mbufs of kFragHeaderRoom
  // bytes after the headroom and the pool's private size, for the header
  // copies of first fragments that point into the read-only mapping.
  // dedup_window_ns (0: off): a fragment identical to one seen less than
  // this before (mirror copy) is dropped, keyed with `seed`.
  Defragmenter(uint32_t max_datagrams, uint64_t timeout_ns, int socket, const void* pool,
               rte_mempool* hdr_pool = nullptr, uint64_t dedup_window_ns = 0, uint64_t seed = 0);
  ~Defragmenter();
  Defragmenter(const Defragmenter&) = delete;
  Defragmenter& operator=(const Defragmenter&) = delete;
  bool ok() const { return table_ != nullptr; }

  enum class Result : uint8_t {
    kPassThrough,  // not reassembled here: hand `m` on as it is
    kHeld,         // taken: the table (or the death row) owns it now
    kComplete,     // `*whole` is the reassembled datagram (chained mbufs)
  };
  // `p` is what RX parsed from `m` (a fragment). Takes ownership unless it
  // returns kPassThrough.
  Result add(rte_mbuf* m, const ParsedPacket& p, uint64_t ts_ns, rte_mbuf** whole);
  // Drops datagrams older than the timeout at now_ns (packet time).
  void expire(uint64_t now_ns);
  // End of run: everything still waiting is timed out.
  void flush();

  DefragCounters& counters() { return c_; }
  // Copies the counters where the control core reads them.
  void publish(std::array<Counter, kDefragCounterCount>& out) const;

 private:
  void free_death_row();
  void count_expired(uint32_t before);
  rte_mbuf* own_headers(rte_mbuf* m, uint16_t header_len);
  bool mirror_copy(const uint8_t* l3, size_t ip_len, uint16_t l3_len, const ParsedPacket& p, uint64_t ts_ns);

  // Recent fragments' fingerprints (direct-mapped; 0 = empty), for mirror copies.
  struct Seen {
    uint64_t fp = 0;
    uint64_t ts_ns = 0;
  };
  std::vector<Seen> seen_;
  uint64_t dedup_window_ns_ = 0;
  uint64_t seed_ = 0;

  rte_ip_frag_tbl* table_ = nullptr;
  rte_ip_frag_death_row dr_{};
  uint64_t timeout_us_;
  const void* pool_;  // TSan: freed mbufs go back to this pool
  rte_mempool* hdr_pool_;
  DefragCounters c_;
};

}  // namespace spanfeed::dpdk
