// The flows job: flow table + TCP reassembly on a worker lcore, and the
// optional per-flow digest lines. Constructed on the control core
// (allocates the table, pool and digests); on_packet never allocates.
#include <cinttypes>
#include <cstring>

#include "jobs/jobs.h"

namespace spanfeed {

FlowsJob::FlowsJob(const Config& cfg, unsigned worker, const std::string& out_path)
    : worker_(worker) {
  ReassemblerConfig rc = reassembler_config(cfg);
  r_ = std::make_unique<Reassembler>(rc, *this);
  digests_.resize(rc.table.capacity);
  if (!out_path.empty()) {
    out_ = std::fopen(out_path.c_str(), "w");
    if (out_ != nullptr) {
      out_buf_.resize(1 << 20);
      std::setvbuf(out_, out_buf_.data(), _IOFBF, out_buf_.size());
    }
  }
}

FlowsJob::~FlowsJob() {
  if (out_ != nullptr) std::fclose(out_);
}

void FlowsJob::on_packet(const PacketView& pkt) {
  count(pkt);
  r_->process(pkt);
}

void FlowsJob::finish(uint64_t now_ns) {
  r_->finish(now_ns);
  if (out_ != nullptr) std::fflush(out_);
}

void FlowsJob::collect(WorkerSnapshot& out) const {
  Job::collect(out);
  out.reassembly.present = true;
  out.reassembly.counters = r_->counters();
  out.reassembly.table = r_->table_counters();
}

void FlowsJob::on_open(const Flow& flow, uint64_t) { digests_[flow.slot] = FlowDigest{}; }

void FlowsJob::on_data(const Flow& flow, Direction dir, std::span<const std::byte> data, uint64_t,
                       uint64_t /*peer_acked*/) {
  if (out_ == nullptr) return;
  DirDigest& d = digests_[flow.slot].dir[index_of(dir)];
  d.fnv = fnv1a64(data, d.fnv);
  d.bytes += data.size();
}

void FlowsJob::on_gap(const Flow& flow, Direction dir, uint64_t missing, GapReason, uint64_t) {
  DirDigest& d = digests_[flow.slot].dir[index_of(dir)];
  if (d.gaps == 0) {
    d.prefix_fnv = d.fnv;
    d.prefix_bytes = d.bytes;
  }
  d.gap_bytes += missing;
  ++d.gaps;
}

void FlowsJob::on_fin(const Flow& flow, Direction dir, uint64_t) {
  digests_[flow.slot].dir[index_of(dir)].fin = true;
}

void FlowsJob::on_close(const Flow& flow, CloseReason reason, uint64_t) {
  if (out_ == nullptr) return;
  char cip[64], sip[64];
  format_ip(flow.client_addr(), flow.key.ip_version, cip, sizeof(cip));
  format_ip(flow.server_addr(), flow.key.ip_version, sip, sizeof(sip));
  FlowDigest& fd = digests_[flow.slot];
  for (DirDigest& d : fd.dir) {
    if (d.gaps == 0) {
      d.prefix_fnv = d.fnv;
      d.prefix_bytes = d.bytes;
    }
  }
  const DirDigest& a = fd.dir[index_of(Direction::kClientToServer)];
  const DirDigest& b = fd.dir[index_of(Direction::kServerToClient)];
  const auto& sa = flow.dir_stats(Direction::kClientToServer);
  const auto& sb = flow.dir_stats(Direction::kServerToClient);
  std::fprintf(out_,
               "{\"worker\":%u,\"serial\":%" PRIu64 ",\"proto\":\"%s\",\"vlan\":%u,"
               "\"client\":{\"ip\":\"%s\",\"port\":%u},\"server\":{\"ip\":\"%s\",\"port\":%u},"
               "\"close\":\"%.*s\","
               "\"c2s\":{\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"fnv64\":\"%016" PRIx64
               "\",\"gaps\":%u,\"gap_bytes\":%" PRIu64 ",\"fin\":%s,"
               "\"prefix_bytes\":%" PRIu64 ",\"prefix_fnv64\":\"%016" PRIx64 "\"},"
               "\"s2c\":{\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"fnv64\":\"%016" PRIx64
               "\",\"gaps\":%u,\"gap_bytes\":%" PRIu64 ",\"fin\":%s,"
               "\"prefix_bytes\":%" PRIu64 ",\"prefix_fnv64\":\"%016" PRIx64 "\"}}\n",
               worker_, flow.serial, flow.key.proto == kProtoTcp ? "tcp" : "udp", flow.key.vlan,
               cip, flow.client_port(), sip, flow.server_port(),
               static_cast<int>(to_string(reason).size()), to_string(reason).data(),
               sa.packets, a.bytes, a.fnv, a.gaps, a.gap_bytes, a.fin ? "true" : "false",
               a.prefix_bytes, a.prefix_fnv,
               sb.packets, b.bytes, b.fnv, b.gaps, b.gap_bytes, b.fin ? "true" : "false",
               b.prefix_bytes, b.prefix_fnv);
}

std::string flows_part_path(const std::string& path, unsigned worker) {
  return path + ".part" + std::to_string(worker);
}

bool join_flows_parts(const std::string& path, unsigned workers, std::string& error) {
  std::FILE* out = std::fopen(path.c_str(), "w");
  for (unsigned w = 0; w < workers; ++w) {
    std::string part = flows_part_path(path, w);
    if (std::FILE* in = std::fopen(part.c_str(), "r")) {
      char buf[1 << 16];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof(buf), in)) > 0 && out != nullptr) std::fwrite(buf, 1, n, out);
      std::fclose(in);
    }
    std::remove(part.c_str());
  }
  if (out == nullptr || std::fclose(out) != 0) {
    error = "cannot write flows output '" + path + "'";
    return false;
  }
  return true;
}

}  // namespace spanfeed
