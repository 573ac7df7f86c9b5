// The interface between a worker lcore loop (DPDK adapter) and the plain C++
// pipeline it drives. Runs on one worker lcore; implementations own their
// state outright (no locks) and must not allocate per packet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "spanfeed/packet.h"

namespace spanfeed {

// One packet as a worker sees it: the whole captured frame (contiguous) plus
// what the RX lcore parsed.
struct PacketView {
  std::span<const std::byte> frame;
  const ParsedPacket* parsed;
  uint64_t ts_ns;      // capture timestamp (offline) or TSC-derived time (live)
  uint32_t flow_hash;  // the symmetric hash that picked this worker
  // The packet the worker hands over right after this one (same burst), or
  // nullptr: its table lines can be fetched while this one is processed.
  // Its frame and parsed packet stay where they are until then.
  const PacketView* next = nullptr;
};

class PacketHandler {
 public:
  virtual ~PacketHandler() = default;
  // Called for every packet, in RX order per flow.
  virtual void on_packet(const PacketView& pkt) = 0;
  // Called when the worker's rings were empty; now_ns is the newest time the
  // worker has seen (packet time offline, TSC time live). For timers.
  virtual void on_idle(uint64_t now_ns) { (void)now_ns; }
  // Called once after the last packet: flush everything.
  virtual void finish(uint64_t now_ns) { (void)now_ns; }
  // Called between bursts (every few milliseconds while busy, on idle turns)
  // and once after finish(): copy the counters to where the control core reads
  // them. `wait`: block until the copy is made (the final one); otherwise skip
  // the turn if the control core is reading.
  virtual void publish(bool wait) { (void)wait; }
};

}  // namespace spanfeed
