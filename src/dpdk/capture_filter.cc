// Capture filter build: libpcap compile -> rte_bpf_convert -> rte_bpf_load.
// Control core, start-up only.
#include "dpdk/capture_filter.h"

#include <pcap/pcap.h>
#include <rte_errno.h>
#include <rte_malloc.h>

#include "core/capture_file.h"

namespace spanfeed::dpdk {

std::unique_ptr<CaptureFilter> CaptureFilter::create(const std::string& expr, int dlt,
                                                     std::string& error) {
  std::unique_ptr<CaptureFilter> f(new CaptureFilter());
  if (!compile_capture_filter(expr, dlt, f->prog_, error)) return nullptr;
  // DPDK 22.11's rte_bpf_convert mistranslates byte-sized indirect loads
  // ("ldxb 4*([14]&0xf); ldb [x + 27]", e.g. tcp[tcpflags]): the converted
  // program rejects packets libpcap accepts, while half-word indirect loads
  // (ports) convert correctly (tests/integration/test_capture_filter.py).
  // Programs with a byte indirect load run on libpcap's cBPF interpreter.
  for (u_int i = 0; i < f->prog_.bf_len; ++i) {
    uint16_t code = f->prog_.bf_insns[i].code;
    if (BPF_CLASS(code) == BPF_LD && BPF_MODE(code) == BPF_IND && BPF_SIZE(code) == BPF_B) {
      f->classic_ = true;
    }
  }
  if (f->classic_) return f;
  rte_bpf_prm* prm = rte_bpf_convert(&f->prog_);
  if (prm == nullptr) {
    error = "filter '" + expr + "': cannot convert to eBPF: " + rte_strerror(rte_errno);
    return nullptr;
  }
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
  pcap_freecode(&prog_);
}

}  // namespace spanfeed::dpdk
