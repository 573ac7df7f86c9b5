// Worker jobs: the PacketHandler each worker lcore drives. Created on the
// control core before launch (may allocate then); run on one worker each.
#pragma once

#include <memory>

#include "spanfeed/config.h"
#include "spanfeed/counters.h"
#include "spanfeed/packet_handler.h"

namespace spanfeed {

// payload-sum: counts packets and sums IP payload bytes (IPv4 total length -
// IHL, IPv6 payload length) into the worker's counters.
class PayloadSumJob final : public PacketHandler {
 public:
  explicit PayloadSumJob(WorkerCounters& c) : c_(c) {}
  void on_packet(const PacketView& pkt) override {
    c_.packets.add(1);
    c_.payload_bytes.add(pkt.parsed->ip_payload_len);
  }

 private:
  WorkerCounters& c_;
};

std::unique_ptr<PacketHandler> make_job(const Config& cfg, WorkerCounters& counters);

}  // namespace spanfeed
