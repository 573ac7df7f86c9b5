// Capture filter: a tcpdump expression compiled by libpcap to classic BPF,
// converted to eBPF (rte_bpf_convert) and loaded (JIT when available). Built
// on the control core after EAL start-up; run on RX lcores, per burst, without
// allocating. Internal to the DPDK adapter.
#pragma once

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
      uint64_t rc = jit_ != nullptr ? jit_(pkts[i]) : rte_bpf_exec(bpf_, pkts[i]);
      if (rc != 0) pkts[kept++] = pkts[i];
      else rejected[nrejected++] = pkts[i];
    }
    return kept;
  }
  bool jitted() const { return jit_ != nullptr; }

 private:
  CaptureFilter() = default;
  rte_bpf* bpf_ = nullptr;
  uint64_t (*jit_)(void*) = nullptr;
};

}  // namespace spanfeed::dpdk
