// The RX and worker lcore loops: RX polls, filters, parses, hashes and hands
// packets to workers over SPSC rings; workers drive their PacketHandler. Run
// on their own lcores; never allocate after launch.
#include "dpdk/lcore_loops.h"

#include "dpdk/tsan_sync.h"

#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_prefetch.h>
#include <rte_ring.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <span>

#include "dpdk/capture_filter.h"
#include "dpdk/engine.h"
#include "dpdk/file_source.h"
#include "dpdk/handoff.h"
#include "dpdk/ip_defrag.h"
#include "spanfeed/flow_hash.h"

namespace spanfeed::dpdk {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_force_stop{false};

namespace {

// A capture file that returns nothing for this long has stalled (net_pcap
// returns 0 forever at end of file; normally the record count ends the run).
constexpr uint64_t kOfflineIdleEndNs = 2'000'000'000ull;
// Packets between a prefetch and the parse that needs its lines (~250 cycles of work apart).
constexpr unsigned kPrefetchAhead = 4;

inline MbufMeta* meta_of(rte_mbuf* m) { return static_cast<MbufMeta*>(rte_mbuf_to_priv(m)); }

uint64_t wall_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}

// A reassembled datagram: linearise it into `scratch` and parse it again from
// its IP header (the link layer and any tunnel around it are as RX parsed
// them in the first fragment, `first`). False when it does not parse.
bool parse_reassembled(rte_mbuf* m, const ParsedPacket& first, const DecapConfig& decap,
                       std::vector<std::byte>& scratch, std::span<const std::byte>& frame,
                       ParsedPacket& out) {
  uint32_t len = rte_pktmbuf_pkt_len(m);
  if (len > scratch.size() || first.l3_offset >= len) return false;
  const void* p = rte_pktmbuf_read(m, 0, len, scratch.data());
  if (p == nullptr) return false;
  frame = {static_cast<const std::byte*>(p), len};
  const size_t l3 = first.l3_offset;
  DecapConfig inner = decap;  // the layers already removed count against the depth
  inner.max_depth = static_cast<uint8_t>(decap.max_depth > first.tunnel.depth ? decap.max_depth - first.tunnel.depth : 0);
  if (inner.max_depth == 0) inner.enabled = false;
  if (parse_packet(frame.subspan(l3), LinkType::kRaw, out, inner) != ParseOutcome::kOk) return false;
  if (out.flags & packet_flag::kFragment) return false;  // a fragment inside a fragment: hostile
  out.l3_offset = static_cast<uint16_t>(out.l3_offset + l3);
  if (out.l4_offset != 0) out.l4_offset = static_cast<uint16_t>(out.l4_offset + l3);
  if (out.payload_offset != 0) out.payload_offset = static_cast<uint16_t>(out.payload_offset + l3);
  if (out.tunnel.depth == 0) {
    out.tunnel = first.tunnel;
    out.vlan = first.vlan;
  } else {
    // The outer packet was the fragmented one: its tunnel layers come after
    // the ones RX already removed.
    TunnelInfo t = out.tunnel;
    out.tunnel = first.tunnel;
    for (uint8_t i = 0; i < t.depth && out.tunnel.depth < kMaxTunnelDepth; ++i) {
      out.tunnel.layers[out.tunnel.depth++] = t.layers[i];
    }
    out.tunnel.type = t.type;
    out.tunnel.id = t.id;
    out.tunnel.has_id = t.has_id;
    out.tunnel.outer_src = t.outer_src;
    out.tunnel.outer_dst = t.outer_dst;
    out.tunnel.outer_ip_version = t.outer_ip_version;
    out.tunnel.key_type = t.key_type;
    out.tunnel.key_id = t.key_id;
  }
  return true;
}

// This thread's CPU time so far, in seconds (0 when unknown); --log-level info prints it per lcore.
double thread_cpu_s() {
  timespec cpu;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) != 0) return 0;
  return static_cast<double>(cpu.tv_sec) + static_cast<double>(cpu.tv_nsec) * 1e-9;
}

}  // namespace

WorkerContext::WorkerContext() = default;
WorkerContext::~WorkerContext() = default;

void TscClock::init() {
  hz = rte_get_tsc_hz();
  tsc0 = rte_rdtsc();
  wall0 = wall_ns();
}

uint64_t TscClock::now_ns() const {
  uint64_t d = rte_rdtsc() - tsc0;
  return wall0 + (d / hz) * 1'000'000'000ull + (d % hz) * 1'000'000'000ull / hz;
}

void reset_stop() {
  g_stop = false;
  g_force_stop = false;
}
bool stop_requested() { return g_stop.load(); }
void set_stop() { g_stop.store(true); }

int rx_main(void* arg) {
  auto& ctx = *static_cast<RxContext*>(arg);
  LoopShared& sh = *ctx.sh;
  RxCounters& c = *ctx.counters;
  const unsigned nw = static_cast<unsigned>(ctx.rings.size());
  const unsigned burst = sh.burst;
  const bool hash_vlan = sh.hash_vlan;
  rte_mbuf* pkts[kMaxBurst];
  rte_mbuf* drop[kMaxBurst];
  // Per-worker staging: nw x burst pointers, preallocated before launch.
  std::vector<rte_mbuf*> staging(size_t{nw} * burst);
  std::vector<unsigned> staged(nw);
  // What the per-packet loop reads, in locals: parse_packet is a call the
  // compiler cannot see through, so members of `sh` would be read again for
  // every packet.
  rte_mbuf** const stage = staging.data();
  unsigned* const nstaged = staged.data();
  const LinkType link = sh.link;
  const DecapConfig& decap_cfg = sh.decap;
  FragmentSteer* const steer = ctx.frag_steer.get();
  const bool filter_inner = sh.filter_inner;
  const int ts_offset = sh.ts_offset;
  const uint64_t ts_flag = sh.ts_flag;
  const bool ts_is_us = sh.ts_is_us;
  // A mapped file writes each record's time straight into MbufMeta::ts_ns
  // (FileSource::rx_burst); PMDs use the timestamp dynfield.
  const int file_ts_offset = ts_offset >= 0 ? static_cast<int>(sizeof(rte_mbuf) + offsetof(MbufMeta, ts_ns)) : -1;
  uint64_t seq = 0;
  unsigned empty = 0;
  IdleWait idle(sh.policy, sh.yield_when_idle);  // an empty source
  IdleWait ring_idle(sh.policy, sh.yield_when_idle);  // a full worker ring (offline)
  uint64_t last_packet_ns = sh.clock.now_ns();
  size_t qi = 0;
  uint64_t waits = 0;
  // Only a PMD loses the record it read when it finds no mbuf; a mapped file waits for one.
  // (rte_mempool_avail_count walks every lcore's cache: ~650 instructions a burst.)
  bool pmd_queues = false;
  for (const RxQueueRef& q : ctx.queues) pmd_queues |= q.file == nullptr;
  const bool guard_pool = sh.policy.keep_mbufs_in_reserve() && pmd_queues;

  while (!g_stop.load(std::memory_order_relaxed)) {
    if (sh.finite_file && sh.count_known && c.received.get() >= sh.expected_packets) break;
    if (guard_pool) {
      // net_pcap loses the packet it has read when it finds no mbuf: never
      // let it get there in a lossless run.
      if (rte_mempool_avail_count(sh.pool) < sh.pool_reserve + burst) {
        ++empty;
        idle.wait();
        continue;
      }
    }
    const RxQueueRef q = ctx.queues[qi];
    qi = qi + 1 == ctx.queues.size() ? 0 : qi + 1;
    uint16_t n = q.file != nullptr
        ? q.file->rx_burst(sh.pool, pkts, static_cast<uint16_t>(burst), file_ts_offset)
        : rte_eth_rx_burst(q.port, q.queue, pkts, static_cast<uint16_t>(burst));
    if (n == 0) {
      c.empty_polls.add(1);
      if (sh.finite_file && q.file != nullptr && q.file->finished()) break;  // every record read or lost
      // Every 1024 empty polls, or every one once they sleep (offline).
      const bool check_end = (empty & 1023u) == 1023u ||
                             (sh.policy.sleep_when_idle() && empty >= IdleWait::kPausesBeforeSleep);
      if (sh.finite_file && q.file == nullptr && check_end) {
        // A finite file: it has ended once every record was either received
        // or lost inside the PMD (live mode: no mbuf; read errors).
        rte_eth_stats st{};
        rte_eth_stats_get(q.port, &st);
        if (st.ipackets + st.rx_nombuf + st.ierrors >= sh.expected_packets) break;
        if (sh.clock.now_ns() - last_packet_ns > kOfflineIdleEndNs) break;  // stalled source
      }
      ++empty;
      idle.wait();
      continue;
    }
    empty = 0;
    idle.reset();
    if (unlikely(ctx.first_packet_tsc == 0)) ctx.first_packet_tsc = rte_rdtsc();
    tsan_acquire(sh.pool);  // these mbufs' last users freed them to the pool (tsan_release)
    c.bursts.add(1);
    const uint64_t now = sh.clock.now_ns();
    last_packet_ns = now;
    uint64_t bytes = 0;
    unsigned ndrop = 0;
    std::array<uint64_t, static_cast<size_t>(RxOutcome::kCount)> out{};
    const uint16_t received = n;
    for (uint16_t i = 0; i < n; ++i) bytes += rte_pktmbuf_pkt_len(pkts[i]);
    const bool stamped = q.file != nullptr && file_ts_offset >= 0 && q.file->stamps();  // MbufMeta::ts_ns set
    if (sh.filter != nullptr && !sh.filter_inner) {
      n = static_cast<uint16_t>(sh.filter->apply(pkts, n, drop, ndrop));
      out[static_cast<size_t>(RxOutcome::kFiltered)] += ndrop;
    }
    uint64_t frags = 0, l4t = 0, snapt = 0;
    std::array<uint64_t, kTunnelTypeCount> decap{};
    for (uint16_t i = 0; i < n; ++i) {
      rte_mbuf* m = pkts[i];
      // The mbuf lines parse_packet writes (MbufMeta) and the frame it reads,
      // a few packets ahead: they come from another core's cache (the worker
      // freed the mbuf) and from the mapping.
      if (i + kPrefetchAhead < n) {
        rte_mbuf* a = pkts[i + kPrefetchAhead];
        rte_prefetch0_write(meta_of(a));
        rte_prefetch0_write(reinterpret_cast<char*>(meta_of(a)) + RTE_CACHE_LINE_SIZE);
        rte_prefetch0(rte_pktmbuf_mtod(a, const void*));
      }
      MbufMeta* meta = meta_of(m);
      std::span<const std::byte> frame(rte_pktmbuf_mtod(m, const std::byte*), rte_pktmbuf_data_len(m));
      ParseOutcome po = parse_packet(frame, link, meta->parsed, decap_cfg);
      if (unlikely(po != ParseOutcome::kOk)) {
        ++out[static_cast<size_t>(rx_outcome_for(po))];
        drop[ndrop++] = m;
        continue;
      }
      const ParsedPacket& p = meta->parsed;
      if (unlikely(filter_inner) && m->nb_segs == 1 && !sh.filter->match_from(m, p.l3_offset)) {
        ++out[static_cast<size_t>(RxOutcome::kFiltered)];
        drop[ndrop++] = m;
        continue;
      }
      constexpr uint8_t kCounted = packet_flag::kFragment | packet_flag::kL4Truncated | packet_flag::kPayloadTruncated;
      if (unlikely(p.flags & kCounted)) {
        frags += (p.flags & packet_flag::kFragment) != 0;
        l4t += (p.flags & packet_flag::kL4Truncated) != 0;
        snapt += (p.flags & packet_flag::kPayloadTruncated) != 0;
      }
      for (uint8_t l = 0; l < p.tunnel.depth; ++l) ++decap[static_cast<size_t>(p.tunnel.layers[l])];
      if (stamped) {
        // the file source wrote meta->ts_ns
      } else if (ts_offset >= 0 && (m->ol_flags & ts_flag)) {
        uint64_t ts = *RTE_MBUF_DYNFIELD(m, ts_offset, rte_mbuf_timestamp_t*);
        meta->ts_ns = ts_is_us ? ts * 1000 : ts;
      } else {
        meta->ts_ns = now;
      }
      meta->seq = seq++;
      const uint32_t hash = symmetric_flow_hash(p, hash_vlan);
      meta->hash = hash;
      unsigned w = worker_for_hash(hash, nw);
      if (unlikely(p.flags & packet_flag::kFragment) && steer != nullptr) {
        w = worker_for_hash(steer->hash_for(p, frame, meta->ts_ns, hash_vlan, hash), nw);
      }
      stage[size_t{w} * burst + nstaged[w]++] = m;
    }
    if (ndrop != 0) {
      tsan_release(sh.pool);
      rte_pktmbuf_free_bulk(drop, ndrop);
    }
    for (unsigned w = 0; w < nw; ++w) {
      unsigned k = staged[w];
      if (k == 0) continue;
      staged[w] = 0;
      rte_mbuf** batch = &staging[size_t{w} * burst];
      unsigned lost = sh.policy.wait_for_ring_space()
          ? enqueue_or_wait(ctx.rings[w], batch, k, ring_idle, g_force_stop, waits)
          : enqueue_or_drop(ctx.rings[w], batch, k);
      out[static_cast<size_t>(RxOutcome::kDelivered)] += k - lost;
      out[static_cast<size_t>(RxOutcome::kRingFull)] += lost;
    }
    // Publish after the hand-off so that a reader never sees received ahead
    // of the outcomes by more than one burst.
    for (size_t i = 0; i < out.size(); ++i) {
      if (out[i] != 0) c.outcome[i].add(out[i]);
    }
    c.received.add(received);
    c.bytes.add(bytes);
    if (frags) c.ip_fragments.add(frags);
    if (l4t) c.l4_truncated.add(l4t);
    if (snapt) c.snaplen_truncated.add(snapt);
    for (size_t t = 1; t < kTunnelTypeCount; ++t) {
      if (decap[t] != 0) c.decapsulated[t].add(decap[t]);
    }
    if (waits) { c.ring_wait_spins.add(waits); waits = 0; }
  }
  ctx.cpu_s = thread_cpu_s();
  sh.rx_done.fetch_add(1, std::memory_order_release);
  tsan_release(&sh);  // the control core's rte_eal_mp_wait_lcore (DPDK, unseen by TSan) acquires it
  return 0;
}

int worker_main(void* arg) {
  auto& ctx = *static_cast<WorkerContext*>(arg);
  LoopShared& sh = *ctx.sh;
  WorkerCounters& c = *ctx.counters;
  const unsigned nrx = static_cast<unsigned>(ctx.rings.size());
  const unsigned burst = sh.burst;
  rte_mbuf* pkts[kMaxBurst];
  PacketView views[kMaxBurst];
  bool plain[kMaxBurst];
  std::vector<uint64_t> next_seq(nrx, 0);
  unsigned empty = 0;
  IdleWait idle(sh.policy, sh.yield_when_idle);
  uint64_t newest_ns = 0;
  PacketHandler& handler = *ctx.handler;
  Defragmenter* const defrag = ctx.defrag.get();
  const unsigned nworkers = static_cast<unsigned>(sh.workers.size());
  // A busy worker publishes its counters every 10 ms (the control core reads
  // them every second; /metrics and the status line are that fresh).
  const uint64_t publish_every = rte_get_tsc_hz() / 100;
  uint64_t last_publish = rte_rdtsc();

  while (true) {
    // Read the RX-done count before polling: if all RX lcores had finished
    // before this poll and the poll finds nothing, nothing more can come.
    bool rx_finished = sh.rx_done.load(std::memory_order_acquire) == sh.rx.size();
    unsigned got = 0;
    for (unsigned r = 0; r < nrx; ++r) {
      unsigned n = rte_ring_sc_dequeue_burst(ctx.rings[r], reinterpret_cast<void**>(pkts), burst,
                                             nullptr);
      if (n == 0) continue;
      tsan_acquire(ctx.rings[r]);  // RX's enqueue released: its MbufMeta writes are visible
      got += n;
      const uint64_t t_start = rte_rdtsc();
      uint64_t violations = 0, multiseg = 0;
      // The packets handed over as they are (one segment, not a fragment to
      // reassemble) get their views first, each linked to the next such one
      // so the handler can fetch that one's lines ahead. Reading RX's
      // metadata for the whole burst here also overlaps its cache misses:
      // RX wrote those lines on another core. First the lines read right
      // below (the mbuf's first, MbufMeta's first and last) for the whole
      // burst, then, packet by packet, those the handler and the final free
      // read (the frame's headers, MbufMeta's middle line, the mbuf's second).
      for (unsigned i = 0; i < n; ++i) {
        const char* meta = reinterpret_cast<const char*>(meta_of(pkts[i]));
        rte_prefetch0(pkts[i]);
        rte_prefetch0(meta);
        rte_prefetch0(meta + sizeof(MbufMeta) - 1);
      }
      // (The ring's expected sequence and the previous plain view in locals:
      // the stores into views[] would make the compiler reload them.)
      uint64_t expect_seq = next_seq[r];
      PacketView* prev = nullptr;  // the view just before, when that packet is plain
      for (unsigned i = 0; i < n; ++i) {
        rte_mbuf* m = pkts[i];
        const MbufMeta* meta = meta_of(m);
        rte_prefetch0(reinterpret_cast<const char*>(meta) + RTE_CACHE_LINE_SIZE);
        rte_prefetch0(reinterpret_cast<const char*>(m) + RTE_CACHE_LINE_SIZE);
        if (unlikely(meta->seq < expect_seq)) ++violations;
        expect_seq = meta->seq + 1;
        newest_ns = std::max(newest_ns, meta->ts_ns);
        plain[i] = likely(m->nb_segs == 1) &&
                   !(defrag != nullptr && (meta->parsed.flags & packet_flag::kFragment));
        if (!plain[i]) {
          prev = nullptr;
          continue;
        }
        const auto* data = rte_pktmbuf_mtod(m, const std::byte*);
        rte_prefetch0(data);
        views[i] = PacketView{{data, rte_pktmbuf_data_len(m)}, &meta->parsed, meta->ts_ns, meta->hash, nullptr};
        if (prev != nullptr) prev->next = &views[i];
        prev = &views[i];
      }
      next_seq[r] = expect_seq;
      for (unsigned i = 0; i < n; ++i) {
        if (likely(plain[i])) {
          handler.on_packet(views[i]);
          continue;
        }
        rte_mbuf* m = pkts[i];
        const MbufMeta* meta = meta_of(m);
        if (unlikely(defrag != nullptr && (meta->parsed.flags & packet_flag::kFragment))) {
          rte_mbuf* whole = nullptr;
          const Defragmenter::Result res = defrag->add(m, meta->parsed, meta->ts_ns, &whole);
          if (res != Defragmenter::Result::kPassThrough) {
            pkts[i] = nullptr;  // the table owns it (FileSource::free_bulk skips nulls)
            if (res == Defragmenter::Result::kHeld) continue;
            pkts[i] = whole;    // freed with the burst, all its segments
            const MbufMeta* first = meta_of(whole);
            std::span<const std::byte> frame;
            ParsedPacket dg;
            if (!parse_reassembled(whole, first->parsed, sh.decap, ctx.scratch, frame, dg)) {
              ++defrag->counters().unparsed;
              continue;
            }
            const uint32_t hash = symmetric_flow_hash(dg, sh.hash_vlan);
            if (worker_for_hash(hash, nworkers) != ctx.index) {
              ++defrag->counters().other_worker;
            }
            handler.on_packet(PacketView{frame, &dg, meta->ts_ns, hash});
            continue;
          }
        }
        if (likely(m->nb_segs == 1)) {
          std::span<const std::byte> frame(rte_pktmbuf_mtod(m, const std::byte*),
                                           rte_pktmbuf_data_len(m));
          handler.on_packet(PacketView{frame, &meta->parsed, meta->ts_ns, meta->hash});
        } else {
          // A frame chained over several mbufs: RX parsed the first segment
          // only, so its payload bounds stop there. Linearise and parse the
          // whole frame again (rare: jumbo/TSO captures).
          ++multiseg;
          uint32_t len = std::min<uint32_t>(rte_pktmbuf_pkt_len(m), kScratchBytes);
          const void* p = rte_pktmbuf_read(m, 0, len, ctx.scratch.data());
          std::span<const std::byte> frame(static_cast<const std::byte*>(p), len);
          ParsedPacket whole;
          if (parse_packet(frame, sh.link, whole, sh.decap) != ParseOutcome::kOk) whole = meta->parsed;
          handler.on_packet(PacketView{frame, &whole, meta->ts_ns, meta->hash});
        }
      }
      tsan_release(sh.pool);  // RX reuses these mbufs after the pool hands them out again
      FileSource::free_bulk(pkts, n);
      const uint64_t t_end = rte_rdtsc();
      c.busy_cycles.add(t_end - t_start);
      if (t_end - last_publish >= publish_every) {
        handler.publish(false);
        last_publish = t_end;
      }
      c.received.add(n);
      if (defrag != nullptr) defrag->publish(c.defrag);
      if (violations) c.order_violations.add(violations);
      if (multiseg) c.multi_segment.add(multiseg);
    }
    if (got != 0) {
      empty = 0;
      idle.reset();
      continue;
    }
    if (rx_finished) break;
    if ((empty & 255u) == 0) {
      if (defrag != nullptr) {
        defrag->expire(sh.packet_time ? newest_ns : sh.clock.now_ns());
        defrag->publish(c.defrag);
      }
      handler.on_idle(sh.packet_time ? newest_ns : sh.clock.now_ns());
      handler.publish(false);
      last_publish = rte_rdtsc();
    }
    ++empty;
    idle.wait();
  }
  // Expire what is due at the final time first, so that a flow idle past its
  // timeout at the end is counted as timed out, not as shut down.
  const uint64_t end_ns = sh.packet_time ? newest_ns : sh.clock.now_ns();
  if (defrag != nullptr) {
    defrag->flush();  // what never completed timed out
    defrag->publish(c.defrag);
  }
  handler.on_idle(end_ns);
  handler.finish(end_ns);
  handler.publish(true);  // the final counters, exact
  ctx.cpu_s = thread_cpu_s();
  ctx.done.store(true, std::memory_order_release);
  sh.workers_done.ring();
  tsan_release(&sh);  // the control core's rte_eal_mp_wait_lcore (DPDK, unseen by TSan) acquires it
  return 0;
}

}  // namespace spanfeed::dpdk

namespace spanfeed {

void request_stop() {
  if (dpdk::g_stop.exchange(true)) dpdk::g_force_stop.store(true);
}

const std::atomic<bool>& stop_flag() { return dpdk::g_stop; }
const std::atomic<bool>& abandon_flag() { return dpdk::g_force_stop; }

}  // namespace spanfeed
