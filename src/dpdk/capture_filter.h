// Capture filter: a tcpdump expression compiled by libpcap to classic BPF,
// converted to eBPF (rte_bpf_convert) and loaded (JIT when available). Built
// on the control core after EAL start-up; run on RX lcores, per burst, without
// allocating. Internal to the DPDK adapter.
#pragma once

#include <pcap/pcap.h>
#include <rte_bpf.h>
#include <rte_mbuf.h>

#include <memory>
#include <string>

namespace spanfeed::dpdk {

class CaptureFilter {
 public:
  // nullptr + error when the expression does not compile for `dlt`.
  static std::unique_ptr<CaptureFilter> create(const std::string& expr, int dlt, std::string& error);
  ~CaptureFilter();

  // Keeps the matching packets at the front of pkts (order kept) and returns
  // their number; the others are moved to `rejected` (the caller frees and
  // counts them). Never allocates.
  unsigned apply(rte_mbuf** pkts, unsigned n, rte_mbuf** rejected, unsigned& nrejected) const {
    unsigned kept = 0;
    for (unsigned i = 0; i < n; ++i) {
      rte_mbuf* m = pkts[i];
      uint64_t rc;
      if (classic_) {
        // libpcap's reference cBPF interpreter over the first segment
        rc = bpf_filter(prog_.bf_insns, rte_pktmbuf_mtod(m, const u_char*), rte_pktmbuf_pkt_len(m),
                        rte_pktmbuf_data_len(m));
      } else {
        rc = jit_ != nullptr ? jit_(m) : rte_bpf_exec(bpf_, m);
      }
      if (rc != 0) pkts[kept++] = m;
      else rejected[nrejected++] = m;
    }
    return kept;
  }
  // One packet, from `offset` bytes into its first segment (the inner IP
  // header when the filter applies to the inner packet). Single-segment only.
  bool match_from(rte_mbuf* m, uint16_t offset) const {
    if (classic_) {
      const u_char* d = rte_pktmbuf_mtod(m, const u_char*);
      return bpf_filter(prog_.bf_insns, d + offset, rte_pktmbuf_pkt_len(m) - offset,
                        rte_pktmbuf_data_len(m) - offset) != 0;
    }
    // The eBPF program reads the mbuf: move its start to the offset and back.
    rte_pktmbuf_adj(m, offset);
    uint64_t rc = jit_ != nullptr ? jit_(m) : rte_bpf_exec(bpf_, m);
    rte_pktmbuf_prepend(m, offset);
    return rc != 0;
  }
  // How the filter runs: "rte_bpf jit", "rte_bpf" or "libpcap cbpf".
  const char* engine() const { return classic_ ? "libpcap cbpf" : jit_ != nullptr ? "rte_bpf jit" : "rte_bpf"; }

 private:
  CaptureFilter() = default;
  rte_bpf* bpf_ = nullptr;
  uint64_t (*jit_)(void*) = nullptr;
  bool classic_ = false;  // the program has indirect loads: see capture_filter.cc
  bpf_program prog_{};
};

}  // namespace spanfeed::dpdk
