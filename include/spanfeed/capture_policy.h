// The offline/live difference, decided once per run: a lossless run (a
// capture file) waits wherever a live run drops and counts. A plain value,
// copied into each component at construction; any thread, no allocation.
#pragma once

namespace spanfeed {

class CapturePolicy {
 public:
  // Offline: nothing is lost; back-pressure travels from the sinks to RX,
  // and the run ends by itself when the file is done.
  static constexpr CapturePolicy lossless() { return CapturePolicy(true); }
  // Live: nothing waits; a full ring, batch pool or sink buffer is a counted
  // drop.
  static constexpr CapturePolicy drop_and_count() { return CapturePolicy(false); }

  constexpr CapturePolicy() = default;  // live

  // RX lcore: a full worker ring is waited on, not dropped.
  constexpr bool wait_for_ring_space() const { return lossless_; }
  // RX lcore: stop polling while the mempool runs low (net_pcap loses a
  // packet it has read when it finds no mbuf).
  constexpr bool keep_mbufs_in_reserve() const { return lossless_; }
  // Worker: no free export batch means wait for the exporter, not drop.
  constexpr bool wait_for_batches() const { return lossless_; }
  // Exporter thread: sinks wait (Kafka queue full, GELF reconnecting).
  constexpr bool wait_for_sinks() const { return lossless_; }
  // Kafka: no per-message delivery timeout unless the config sets one.
  constexpr bool deliver_without_timeout() const { return lossless_; }
  // Ledger: an uninterrupted run must have received every record of the file.
  constexpr bool expects_whole_input() const { return lossless_; }

  constexpr bool is_lossless() const { return lossless_; }
  // "offline" or "live", as summaries and metrics name the mode.
  constexpr const char* name() const { return lossless_ ? "offline" : "live"; }

 private:
  constexpr explicit CapturePolicy(bool lossless) : lossless_(lossless) {}
  bool lossless_ = false;
};

}  // namespace spanfeed
