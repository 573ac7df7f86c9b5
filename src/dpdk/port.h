// Ports and packet memory: mempool sizing, ethdev set-up (RSS, timestamps,
// promiscuous), and the port counters (basic stats and the PMD's xstats).
// Control core, start-up and snapshots; allocates. Internal to the DPDK adapter.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dpdk/engine.h"

struct rte_mempool;

namespace spanfeed::dpdk {

inline constexpr uint16_t kRxDescriptors = 1024;
// Per-lcore cache of the fragment header pool: every worker takes and frees
// header copies, and without a cache each would be a CAS on the one ring all
// workers share.
inline constexpr unsigned kFragHdrCache = 32;

// How big the mbuf pool is and what it must keep free.
struct PoolPlan {
  uint64_t mbufs = 0;        // elements in the pool
  uint32_t data_room = 0;    // bytes per mbuf, headroom included
  uint64_t mbuf_bytes = 0;   // memory per element (for the EAL heap size)
  unsigned reserve = 0;      // lossless runs: free mbufs the PMD must always find
  // Mapped capture files with fragment reassembly: the header copies of first
  // fragments (ip_defrag.cc), so rte_ip_frag never writes into the mapping.
  uint64_t frag_hdr_mbufs = 0;
  uint64_t frag_hdr_mbuf_bytes = 0;

  // The EAL memory both pools may take without hugepages. When a port may DMA
  // into them, DPDK keeps an mbuf that fits in a 4 KiB page inside one (it
  // must be IOVA-contiguous), so a 2.4 KiB mbuf takes a whole page: 1.7 times
  // its size. A packed pool (create_packet_pool, no DMA) takes less: a bound.
  uint64_t heap_bytes() const;
};

// Sizes the pool for `cfg`: every ring full, every lcore cache full, a burst
// in flight per lcore, the NIC descriptors, and for an infinite replay the
// whole file. False with `error` set when the file cannot be replayed.
bool plan_pool(const EngineConfig& cfg, PoolPlan& plan, std::string& error);

// The ethdev name of `port` ("port<N>" when unknown).
std::string port_name(uint16_t port);

// True when none of `ports` can DMA into mbufs: every one is a virtual device
// (net_pcap, af_packet and the like copy into theirs). No ports (a mapped
// capture file) counts as true.
bool ports_copy_only(const std::vector<uint16_t>& ports);

// A pool of `n` packet mbufs (`cache` per lcore, kPrivSize private bytes,
// `data_room` bytes of buffer) on `socket`. `dma`: a port may DMA into it,
// so every mbuf is IOVA-contiguous (rte_pktmbuf_pool_create); otherwise DPDK
// may pack mbufs across page boundaries, and without hugepages a 2.4 KiB mbuf
// no longer takes a 4 KiB page of its own (~40% less memory touched).
// nullptr with rte_errno set on failure.
rte_mempool* create_packet_pool(const char* name, unsigned n, unsigned cache, uint16_t data_room, int socket,
                                bool dma);

// Configures `nq` RX queues on `pool` (symmetric RSS when nq > 1) and starts
// the port. Non-zero with `error` set on failure.
int setup_port(uint16_t port, uint16_t nq, rte_mempool* pool, std::string& error);

// The port's basic stats and extended stats.
NicSnapshot read_port_counters(uint16_t port);

}  // namespace spanfeed::dpdk
