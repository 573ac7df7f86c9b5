// The flow table and reassembly settings of a run's Config, and their checks.
// Control core at start-up (and each worker once, building its Reassembler); allocates nothing but the result.
#include "spanfeed/config.h"
#include "spanfeed/tcp_reassembly.h"

namespace spanfeed {

ReassemblerConfig reassembler_config(const Config& cfg) {
  auto ns = [](double s) { return static_cast<uint64_t>(s * 1e9); };
  ReassemblerConfig r;
  r.table.capacity = cfg.flow_capacity;
  r.table.include_vlan = cfg.hash_vlan;
  r.table.tcp_opening_timeout_ns = ns(cfg.tcp_opening_timeout_s);
  r.table.tcp_established_timeout_ns = ns(cfg.tcp_established_timeout_s);
  r.table.tcp_closing_timeout_ns = ns(cfg.tcp_closing_timeout_s);
  r.table.udp_timeout_ns = ns(cfg.udp_timeout_s);
  r.reassembly.memory_cap_bytes = uint64_t{cfg.reassembly_memory_mb} << 20;
  r.reassembly.max_buffer_per_flow = cfg.reassembly_flow_buffer_kb << 10;
  r.reassembly.ack_hold_ns = static_cast<uint64_t>(cfg.reassembly_ack_hold_ms * 1e6);
  r.reassembly.ack_hold_bytes = cfg.reassembly_ack_hold_kb << 10;
  r.reassembly.prefault_arena = cfg.capture_policy().prefault_pools();
  const bool from_file = !cfg.pcap_file.empty();
  if (from_file ? cfg.dedup_files : cfg.dedup_live) {
    r.reassembly.dedup_window_ns = uint64_t{cfg.dedup_window_us} * 1000;
    r.reassembly.dedup_entries = cfg.dedup_entries;
  }
  return r;
}

void validate_flow_config(const Config& cfg) {
  if (cfg.job != JobKind::kFlows && cfg.job != JobKind::kRecords) return;
  const std::string why = validate(reassembler_config(cfg));
  if (!why.empty()) throw ConfigError("flow/reassembly settings: " + why);
}

}  // namespace spanfeed
