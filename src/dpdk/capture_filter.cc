// Capture filter build: libpcap compile -> rte_bpf_convert -> rte_bpf_load.
// Control core, start-up only.
#include "dpdk/capture_filter.h"

#include <pcap/pcap.h>
#include <rte_errno.h>
#include <rte_malloc.h>

#include "spanfeed/capture_file.h"

namespace spanfeed::dpdk {

std::unique_ptr<CaptureFilter> CaptureFilter::create(const std::string& expr, int dlt,
                                                     std::string& error) {
  bpf_program prog{};
  if (!compile_capture_filter(expr, dlt, prog, error)) return nullptr;
  rte_bpf_prm* prm = rte_bpf_convert(&prog);
  pcap_freecode(&prog);
  if (prm == nullptr) {
    error = "filter '" + expr + "': cannot convert to eBPF: " + rte_strerror(rte_errno);
    return nullptr;
  }
  std::unique_ptr<CaptureFilter> f(new CaptureFilter());
  f->bpf_ = rte_bpf_load(prm);
  rte_free(prm);
  if (f->bpf_ == nullptr) {
    error = "filter '" + expr + "': eBPF load failed: " + rte_strerror(rte_errno);
    return nullptr;
  }
  rte_bpf_jit jit{};
  if (rte_bpf_get_jit(f->bpf_, &jit) == 0 && jit.func != nullptr) f->jit_ = jit.func;
  return f;
}

CaptureFilter::~CaptureFilter() {
  if (bpf_ != nullptr) rte_bpf_destroy(bpf_);
}

}  // namespace spanfeed::dpdk
