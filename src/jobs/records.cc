// The records job: reassembly + protocol decoders on a worker lcore, records
// encoded into export batches. Constructed on the control core (allocates
// every pool then); on the worker it only reuses batches and pools.
#include <cstring>
#include <random>

#include "jobs/jobs.h"

#include "decode/detect/hyperscan_signatures.h"
#include "export/gelf_encoder.h"

namespace spanfeed {

DecodeConfig decode_config(const Config& cfg, unsigned worker) {
  DecodeConfig d;
  d.worker_id = worker;
  d.flow_capacity = cfg.flow_capacity;
  d.recording_id = cfg.recording_id;
  d.tunnel_in_records = cfg.tunnel_in_records;
  d.response_timeout_ns = static_cast<uint64_t>(cfg.response_timeout_s * 1e9);
  d.redact_secrets = cfg.redact_secrets;
  for (const auto& [name, ports] : cfg.decode_ports) {
    const ProtocolDescriptor* desc = protocol_descriptor(name);  // names were checked when the config was read
    if (desc == nullptr) continue;
    const Protocol p = desc->id;
    // The listed ports replace this protocol's defaults and leave other protocols.
    std::erase_if(d.ports, [&](const PortBinding& b) {
      if (b.protocol == p) return true;
      for (uint16_t port : ports) {
        if (b.port == port) return true;
      }
      return false;
    });
    // On every transport the protocol has default ports for (DNS: TCP and UDP).
    for (uint16_t port : ports) {
      if (!desc->tcp_ports.empty() || desc->udp_ports.empty()) d.ports.push_back({p, Transport::kTcp, port});
      if (!desc->udp_ports.empty()) d.ports.push_back({p, Transport::kUdp, port});
    }
  }
  for (const auto& o : cfg.decode_options) {
    if (const ProtocolDescriptor* desc = protocol_descriptor(o.protocol)) d.options.push_back({desc->id, o.name, o.value});
  }
  return d;
}

RecordsJob::RecordsJob(const Config& cfg, unsigned worker, Exporter& exporter, RulesControl* rules,
                       const red::Shared* red)
    : worker_(worker), exporter_(exporter), policy_(cfg.capture_policy()) {
  // The series table's hash seed: per run and worker, so crafted endpoints cannot aim at its probes.
  if (red != nullptr) red_ = std::make_unique<red::Exchange>(*red, static_cast<uint32_t>(std::random_device{}()) ^ worker);
  if (rules != nullptr) scanner_ = rules->scanner(cfg.flow_capacity);
  builder_ = std::make_unique<RecordBuilder>(decode_config(cfg, worker), *this);
  builder_->set_observer(scanner_.get());
  if (builder_->config().sniff_unknown_ports) {
    signatures_ = std::make_unique<HyperscanSignatures>();
    builder_->set_signatures(signatures_.get());
  }
  r_ = std::make_unique<Reassembler>(reassembler_config(cfg), *builder_);
  if (!exporter.gelf_host().empty()) gelf_ = std::make_unique<GelfEncoder>(exporter.gelf_host());
}

void RecordsJob::on_packet(const PacketView& pkt) {
  if (scanner_) scanner_->poll_reload();  // a reloaded rule set takes over between packets
  count(pkt);
  r_->process(pkt);
}

void RecordsJob::on_idle(uint64_t now_ns) {
  if (scanner_) scanner_->poll_reload();
  r_->advance_time(now_ns);
  builder_->advance_time(now_ns);
  hand_over();  // an idle worker does not sit on records
}

void RecordsJob::finish(uint64_t now_ns) {
  r_->finish(now_ns);
  builder_->finish(now_ns);
  hand_over();
}

bool RecordsJob::ensure_batch() {
  if (batch_ != nullptr) return true;
  batch_ = exporter_.try_acquire(worker_);
  // Offline: wait for the exporter to return a batch (backpressure reaches
  // RX through the rings; nothing is lost) unless a second signal abandoned
  // the run's waits. Live: drop and count.
  IdleWait idle(policy_, true);
  while (batch_ == nullptr && policy_.wait_for_batches() && !exporter_.abandoned()) {
    idle.wait();
    batch_ = exporter_.try_acquire(worker_);
  }
  if (batch_ == nullptr && policy_.wait_for_batches()) ++dropped_abandoned_;
  if (batch_ == nullptr) return false;
  data_end_ = batch_->data.size();  // the encoder writes in place and grows the string as it goes
  return true;
}

void RecordsJob::hand_over() {
  if (batch_ == nullptr || batch_->records() == 0) return;
  batch_->data.resize(data_end_);
  exporter_.submit(batch_);
  batch_ = nullptr;
  ++handed_over_;
}

void RecordsJob::emit(const Record& r) {
  if (r.has_latency) latency_[static_cast<size_t>(r.protocol)].add(r.latency_us);
  if (red_) red_->aggregator().add(r);
  if (!ensure_batch()) {
    ++dropped_;
    return;
  }
  data_end_ = write_json_line(r, batch_->data, data_end_);
  if (gelf_) gelf_->append(r, batch_->gelf);
  // The connection's key: the same for every record of the connection (and
  // either direction), so Kafka keeps them in one partition, in order.
  // Remembered per connection (keys_): FNV-1a over 36 bytes costs ~170 instructions.
  auto same = [](const Endpoint& a, const Endpoint& b) {
    return a.port == b.port && std::memcmp(a.ip.bytes, b.ip.bytes, sizeof(a.ip.bytes)) == 0;
  };
  KeyEntry& ke = keys_[connection_mix(r) >> 24];
  static_assert(kKeyEntries == 256, "the index is the mix's top byte");
  if (!ke.valid || !same(r.client, ke.client) || !same(r.server, ke.server)) {
    uint32_t key = fnv1a32(r.client.ip.bytes, sizeof(r.client.ip.bytes));
    key = fnv1a32(&r.client.port, sizeof(r.client.port), key);
    key = fnv1a32(r.server.ip.bytes, sizeof(r.server.ip.bytes), key);
    key = fnv1a32(&r.server.port, sizeof(r.server.port), key);
    ke.key = key;
    ke.client = r.client;
    ke.server = r.server;
    ke.valid = true;
  }
  const uint32_t key = ke.key;
  batch_->refs.push_back({static_cast<uint32_t>(data_end_), key, static_cast<uint8_t>(r.protocol),
                          static_cast<uint32_t>(batch_->gelf.size())});
  ++batched_;
  const ExportConfig& ec = exporter_.config();
  if (batch_->records() >= ec.batch_records || data_end_ >= ec.batch_bytes) hand_over();
}

void RecordsJob::published(bool wait) {
  if (!red_) return;
  if (wait) {
    red_->finish();  // the last publish: the control core harvests the rest itself
  } else {
    red_->offer();
  }
}

void RecordsJob::collect(WorkerSnapshot& out) const {
  Job::collect(out);
  out.reassembly.present = true;
  out.reassembly.counters = r_->counters();
  out.reassembly.table = r_->table_counters();
  out.records.present = true;
  out.records.decode = builder_->counters();
  out.records.batched = batched_;
  out.records.dropped = dropped_;
  out.records.dropped_abandoned = dropped_abandoned_;
  out.records.batches = handed_over_;
  out.records.latency = latency_;
}

}  // namespace spanfeed
