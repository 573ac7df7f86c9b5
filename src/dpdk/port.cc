// Ports and packet memory: pool sizing, ethdev set-up, port counters.
// Control core; allocates.
#include "dpdk/port.h"

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>
#include <rte_mempool.h>

#include <algorithm>
#include <vector>

#include "dpdk/file_source.h"
#include "dpdk/ip_defrag.h"
#include "dpdk/lcore_loops.h"

namespace spanfeed::dpdk {
namespace {

uint32_t round_pool_size(uint64_t n) {
  // rte_mempool is most memory-efficient at 2^k - 1 elements.
  uint64_t p = 1;
  while (p - 1 < n) p <<= 1;
  return static_cast<uint32_t>(std::min<uint64_t>(p - 1, UINT32_MAX));
}

// What `objects` mempool elements of `bytes` each take in 4 KiB pages, as
// DPDK's rte_mempool_op_calc_mem_size_helper places them: one that fits in a
// page never crosses one; a larger one takes whole pages.
uint64_t in_pages(uint64_t objects, uint64_t bytes) {
  constexpr uint64_t kPage = 4096;
  if (objects == 0 || bytes == 0) return 0;
  if (bytes > kPage) return objects * ((bytes + kPage - 1) / kPage * kPage);
  const uint64_t per_page = kPage / bytes;
  return (objects + per_page - 1) / per_page * kPage;
}

}  // namespace

uint64_t PoolPlan::heap_bytes() const {
  return in_pages(mbufs, mbuf_bytes) + in_pages(frag_hdr_mbufs, frag_hdr_mbuf_bytes);
}

bool ports_copy_only(const std::vector<uint16_t>& ports) {
  return std::all_of(ports.begin(), ports.end(), [](uint16_t p) {
    rte_eth_dev_info info{};
    if (rte_eth_dev_info_get(p, &info) != 0 || info.device == nullptr) return false;
    const rte_bus* bus = rte_dev_bus(info.device);
    return bus != nullptr && std::string_view(rte_bus_name(bus)) == "vdev";
  });
}

rte_mempool* create_packet_pool(const char* name, unsigned n, unsigned cache, uint16_t data_room, int socket,
                                bool dma) {
  if (dma) return rte_pktmbuf_pool_create(name, n, cache, kPrivSize, data_room, socket);
  // rte_pktmbuf_pool_create's steps, with RTE_MEMPOOL_F_NO_IOVA_CONTIG.
  rte_pktmbuf_pool_private priv{};
  priv.mbuf_data_room_size = data_room;
  priv.mbuf_priv_size = kPrivSize;
  const unsigned elt_size = static_cast<unsigned>(sizeof(rte_mbuf)) + kPrivSize + data_room;
  rte_mempool* mp = rte_mempool_create_empty(name, n, elt_size, cache, sizeof(priv), socket,
                                             RTE_MEMPOOL_F_NO_IOVA_CONTIG);
  if (mp == nullptr) return nullptr;
  if (const int rc = rte_mempool_set_ops_byname(mp, rte_mbuf_best_mempool_ops(), nullptr); rc != 0) {
    rte_mempool_free(mp);
    rte_errno = -rc;
    return nullptr;
  }
  rte_pktmbuf_pool_init(mp, &priv);
  if (const int rc = rte_mempool_populate_default(mp); rc < 0) {
    rte_mempool_free(mp);
    rte_errno = -rc;
    return nullptr;
  }
  rte_mempool_obj_iter(mp, rte_pktmbuf_init, nullptr);
  return mp;
}

bool plan_pool(const EngineConfig& cfg, PoolPlan& plan, std::string& error) {
  const unsigned nrx = cfg.rx_lcores, nw = cfg.workers;
  const unsigned cache = cfg.mempool_cache;
  const CaptureFileInfo* file = cfg.file;
  uint32_t data_room = cfg.mbuf_data_room;
  // A mapped capture file: mbufs only carry the external buffer's shared info.
  const bool mapped = !cfg.pcap_file.empty() && !cfg.pcap_pmd;
  if (mapped) data_room = dpdk::kFileMbufDataRoom;
  if (file != nullptr && cfg.pcap_infinite && !mapped) {
    // net_pcap's in-memory replay cannot chain mbufs: every record must fit
    // one mbuf's data room (after the headroom).
    uint64_t want = uint64_t{file->max_caplen} + RTE_PKTMBUF_HEADROOM;
    if (want > UINT16_MAX) {
      error = "cannot replay '" + cfg.pcap_file + "' from memory: it holds a " +
              std::to_string(file->max_caplen) + "-byte frame, over the 65535-byte mbuf limit";
      return false;
    }
    data_room = std::max<uint32_t>(data_room, static_cast<uint32_t>(want));
  }
  plan.data_room = data_room;
  plan.mbuf_bytes = data_room + kPrivSize + sizeof(rte_mbuf) + 64;

  // Every ring full, every lcore cache full (1.5x: the flush threshold), a
  // burst in flight per lcore, the NIC descriptors, and for an infinite
  // replay the whole file held by net_pcap.
  uint64_t lcores = 1 + nrx + nw;
  const uint64_t caches = lcores * (cache * 3 / 2 + cfg.burst_size * 2);
  uint64_t needed = uint64_t{nrx} * nw * cfg.ring_size + caches +
                    (mapped ? 0 : uint64_t{nrx} * kRxDescriptors) + 1024;
  if (cfg.defrag) {
    // Fragments waiting for the rest of their datagram hold their mbufs: at
    // most RTE_LIBRTE_IP_FRAG_MAX_FRAG (8) per table entry, a table per worker.
    needed += uint64_t{nw} * cfg.defrag_max_datagrams * 8;
  }
  if (file != nullptr && cfg.pcap_infinite && !mapped) {
    // net_pcap holds the whole file: one mbuf per record, plus the chained
    // ones of records over a data room
    needed += file->packets;
  }
  if (file != nullptr && mapped && !cfg.pcap_infinite) {
    // A finite file never has more records in flight than it holds (records
    // over 64 KiB take one mbuf per 64 KiB).
    uint64_t segments = file->packets + file->bytes / 65535;
    needed = std::min(needed, segments + caches + 1024);
  }
  plan.mbufs = cfg.mempool_size != 0 ? cfg.mempool_size : round_pool_size(needed);
  // net_pcap loses the record it read when it finds no mbuf: lossless runs
  // keep what the caches and descriptors can hold free for it. The mapped
  // file loses nothing (it waits), so it needs no reserve.
  plan.reserve = mapped ? 0 : static_cast<unsigned>(lcores * (cache * 3 / 2) + kRxDescriptors);
  if (mapped && cfg.defrag) {
    // One header copy per first fragment a table entry holds, and the
    // datagrams completed in a burst until the burst is freed.
    const uint64_t burst = std::min<unsigned>(cfg.burst_size, kMaxBurst);
    // Plus what the per-lcore caches (workers, and the control core at teardown) may hold.
    plan.frag_hdr_mbufs = uint64_t{nw} * (cfg.defrag_max_datagrams + 2 * burst) + 64 +
                          uint64_t{1 + nw} * (kFragHdrCache * 3 / 2);
    plan.frag_hdr_mbuf_bytes = kFragHeaderRoom + RTE_PKTMBUF_HEADROOM + kPrivSize + sizeof(rte_mbuf) + 64;
  }
  return true;
}

std::string port_name(uint16_t port) {
  char name[RTE_ETH_NAME_MAX_LEN] = {0};
  if (rte_eth_dev_get_name_by_port(port, name) != 0) return "port" + std::to_string(port);
  return name;
}

int setup_port(uint16_t port, uint16_t nq, rte_mempool* pool, std::string& error) {
  rte_eth_dev_info info;
  if (int rc = rte_eth_dev_info_get(port, &info); rc != 0) {
    error = "port " + std::to_string(port) + ": cannot read device info: " + rte_strerror(-rc);
    return -1;
  }
  if (nq > info.max_rx_queues) {
    error = "port " + std::to_string(port) + " (" + port_name(port) + ") has at most " +
            std::to_string(info.max_rx_queues) + " RX queue(s); lower lcores.rx to " +
            std::to_string(info.max_rx_queues);
    return -1;
  }
  rte_eth_conf conf{};
  if (nq > 1) {
    // Symmetric RSS key (0x6d5a repeated) so both directions of a flow land
    // on one queue and so one RX lcore: per-flow order is kept end to end.
    static uint8_t key[40];
    for (size_t i = 0; i < sizeof(key); i += 2) { key[i] = 0x6d; key[i + 1] = 0x5a; }
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_key = key;
    conf.rx_adv_conf.rss_conf.rss_key_len = sizeof(key);
    conf.rx_adv_conf.rss_conf.rss_hf =
        (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
  }
  if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_TIMESTAMP) {
    conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TIMESTAMP;
  }
  uint16_t ntx = info.max_tx_queues > 0 ? 1 : 0;
  if (int rc = rte_eth_dev_configure(port, nq, ntx, &conf); rc != 0) {
    error = "port " + std::to_string(port) + ": configure failed: " + rte_strerror(-rc);
    return -1;
  }
  uint16_t nrxd = kRxDescriptors, ntxd = 512;
  rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrxd, &ntxd);
  int socket = rte_eth_dev_socket_id(port);
  for (uint16_t q = 0; q < nq; ++q) {
    if (int rc = rte_eth_rx_queue_setup(port, q, nrxd, socket, nullptr, pool); rc != 0) {
      error = "port " + std::to_string(port) + " queue " + std::to_string(q) +
              ": RX queue setup failed: " + rte_strerror(-rc) +
              " (for an infinite replay the mempool must hold the whole file)";
      return -1;
    }
  }
  for (uint16_t q = 0; q < ntx; ++q) {
    if (int rc = rte_eth_tx_queue_setup(port, q, ntxd, socket, nullptr); rc != 0) {
      error = "port " + std::to_string(port) + ": TX queue setup failed: " + rte_strerror(-rc);
      return -1;
    }
  }
  rte_eth_promiscuous_enable(port);  // SPAN traffic is not addressed to us; errors are fine
  if (int rc = rte_eth_dev_start(port); rc != 0) {
    error = "port " + std::to_string(port) + " (" + port_name(port) + "): start failed: " +
            rte_strerror(-rc);
    return -1;
  }
  return 0;
}

NicSnapshot read_port_counters(uint16_t port) {
  rte_eth_stats st{};
  rte_eth_stats_get(port, &st);
  NicSnapshot ns{port, port_name(port), st.ipackets, st.ibytes, st.imissed, st.ierrors,
                 st.rx_nombuf, {}};
  int nx = rte_eth_xstats_get(port, nullptr, 0);
  if (nx > 0) {
    std::vector<rte_eth_xstat> xs(static_cast<size_t>(nx));
    std::vector<rte_eth_xstat_name> names(static_cast<size_t>(nx));
    if (rte_eth_xstats_get_names(port, names.data(), static_cast<unsigned>(nx)) == nx &&
        rte_eth_xstats_get(port, xs.data(), static_cast<unsigned>(nx)) == nx) {
      for (const auto& x : xs) ns.xstats.emplace_back(names[x.id].name, x.value);
    }
  }
  return ns;
}

}  // namespace spanfeed::dpdk
