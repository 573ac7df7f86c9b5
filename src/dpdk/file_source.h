// Zero-copy capture-file source: the file (classic pcap or pcapng) mapped
// once, each record handed out as an mbuf attached to the mapping as an
// external buffer (no per-packet copy). Opened on the control core
// (allocates); rx_burst runs on one RX lcore and never allocates. Internal to
// the DPDK adapter (includes rte_*.h).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "spanfeed/counters.h"

struct rte_mbuf;
struct rte_mempool;

namespace spanfeed::dpdk {

// The mbufs' own data room only holds the external buffer's shared info.
inline constexpr uint32_t kFileMbufDataRoom = 64;

class FileSource {
 public:
  struct Options {
    std::string path;
    // Records to deliver per pass (what libpcap could read), or kUncounted: a
    // finite classic pcap nobody counted beforehand, read to its last whole
    // record (the reader counts as it goes: `read_end()`).
    uint64_t records = 0;
    uint32_t snaplen = 0;    // the file's snapshot length (libpcap cuts longer records)
    bool infinite = false;   // start over at the end, for ever (no capture timestamps)
    bool drop_without_mbuf = false;  // live: a record finding no mbuf is lost (rx_nombuf)
  };
  // Maps the file and checks its header. nullptr with `error` set on failure.
  static std::unique_ptr<FileSource> open(const Options& opt, std::string& error);
  ~FileSource();
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  // Control core, before any mbuf is taken from `pool` (a pool no port
  // shares): every mbuf becomes a pinned external-buffer mbuf whose shared
  // info (in its own data room) is set up once, here. A freed mbuf then keeps
  // it (rte_pktmbuf_free does not detach a pinned buffer), and rx_burst only
  // points it at the next record: no reset, no attach, no atomic per packet,
  // and no detach on the worker that frees it.
  void pin_pool(rte_mempool* pool);

  // Any lcore: frees `n` mbufs (nullptr entries skipped) like
  // rte_pktmbuf_free_bulk. Those of a pinned pool that are as rx_burst made
  // them (reference count 1, one segment, the pinned buffer attached) go
  // straight back with one rte_mempool_put_bulk: ~3 instructions a packet
  // instead of ~85 through rte_pktmbuf_free_bulk (prefree, detach). Any other
  // mbuf (a reassembled datagram's chain, another pool) takes
  // rte_pktmbuf_free_bulk. Reorders `pkts`.
  static void free_bulk(rte_mbuf** pkts, unsigned n);

  // RX lcore: up to `n` records as mbufs from `pool`. Each record's capture
  // time, in nanoseconds, goes to the uint64_t at byte `ts_offset` from the
  // mbuf's start (finite files only; -1: none). The engine points it at the
  // private area's MbufMeta::ts_ns, so the RX lcore never writes an mbuf's
  // second cache line (next, tx_offload, dynfields), which the worker that
  // frees it reads: that line stays shared between the two cores instead of
  // moving back and forth for every packet.
  uint16_t rx_burst(rte_mempool* pool, rte_mbuf** pkts, uint16_t n, int ts_offset);
  bool stamps() const { return !opt_.infinite; }  // rx_burst writes times (when given an offset)
  static constexpr uint64_t kUncounted = UINT64_MAX;
  bool uncounted() const { return !opt_.infinite && opt_.records == kUncounted; }
  // Every record delivered or lost (a finite file). RX lcore.
  bool finished() const {
    return ended_ || (!opt_.infinite && delivered_ + nombuf_ >= opt_.records);
  }

  // How far a finite file has been read. Control core: `offset` and
  // `records` any time; the rest once the RX lcore has stopped (after
  // rte_eal_mp_wait_lcore).
  struct ReadEnd {
    uint64_t records = 0;               // records read: delivered or lost for want of an mbuf
    uint64_t truncated_by_snaplen = 0;  // of those, captured shorter than on the wire
    uint64_t offset = 0, size = 0;      // bytes of the file read, and its size
    bool ended = false;                 // no record left to read
    // Bytes are left that do not make a record libpcap would read (a cut-off
    // end, a bad length): libpcap has the last word on what is damaged.
    bool stopped_early = false;
  };
  ReadEnd read_end() const;

  // Control core: counters in the shape of a port's.
  NicSnapshot snapshot(uint16_t port) const;
  const std::string& name() const { return name_; }

 private:
  FileSource() = default;
  // The next record's data and timestamp; false at the end of the records.
  bool next_record(const std::byte*& data, uint32_t& caplen, uint64_t& ts_us);
  // Classic pcap's record header, inlined into rx_burst (the usual file: ~55 -> ~20 instructions).
  bool next_classic(const std::byte*& data, uint32_t& caplen, uint64_t& ts_us);
  bool parse_pcapng_block();
  template <bool kPinned>
  uint16_t fill(rte_mempool* pool, rte_mbuf** pkts, uint16_t n, int ts_offset);

  Options opt_;
  std::string name_;
  const std::byte* map_ = nullptr;
  size_t size_ = 0;
  size_t pos_ = 0;          // next block or record
  size_t first_ = 0;        // first record (infinite: where a pass starts)
  size_t released_ = 0;     // finite files: pages before this are unmapped from RSS
  size_t populated_ = 0;    // finite files: pages before this are mapped in (MADV_POPULATE_READ)
  bool populate_ = true;    // the kernel takes MADV_POPULATE_READ (Linux 5.14+)
  uint64_t in_pass_ = 0;    // records read in this pass
  bool pcapng_ = false;
  bool swapped_ = false;    // file byte order differs from ours
  bool nanos_ = false;      // classic pcap with nanosecond timestamps
  bool ended_ = false;      // the records ran out before the count said (RX lcore only)
  bool pinned_ = false;     // pin_pool ran: the pool's mbufs keep their shared info
  uint64_t truncated_ = 0;  // classic pcap: records read with caplen < wire length
  // pcapng: the current section's interfaces (timestamp resolution, offset)
  static constexpr unsigned kMaxInterfaces = 64;
  struct Interface {
    uint64_t ticks_per_s = 1'000'000;
    int64_t offset_s = 0;
    uint32_t snaplen = 0;
  };
  Interface ifaces_[kMaxInterfaces];
  unsigned nifaces_ = 0;
  // Written by the RX lcore, read by the control core.
  std::atomic<uint64_t> delivered_{0}, bytes_{0}, nombuf_{0}, offset_{0};
};

}  // namespace spanfeed::dpdk
