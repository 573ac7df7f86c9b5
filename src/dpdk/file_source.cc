// Zero-copy capture-file source: pcap/pcapng records from one mapping,
// attached to mbufs as external buffers. open() on the control core
// (allocates); rx_burst on one RX lcore (no allocation, no copy).
#include "dpdk/file_source.h"

#include <fcntl.h>
#include <rte_branch_prediction.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_prefetch.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "dpdk/handoff.h"

namespace spanfeed::dpdk {
namespace {

constexpr uint32_t kPcapngShb = 0x0A0D0D0A, kPcapngIdb = 1, kPcapngOpb = 2, kPcapngSpb = 3,
                   kPcapngEpb = 6, kPcapngByteOrder = 0x1A2B3C4D;
// An mbuf's data_len and buf_len are 16-bit: longer records are chained.
constexpr uint32_t kMaxSegment = UINT16_MAX;
// A finite file's pages this far behind the reader leave the resident set
// (in steps of as much): resident memory stays flat whatever the file size.
// Mbufs still in flight there stay valid: a file mapping faults back in.
constexpr size_t kResidentWindow = 16u << 20;
// The classic-pcap loop prefetches the mapping this far ahead of the reader
// (one line a record; a few percent faster in wall time at 8 KiB than without,
// and than at 1 KiB). Prefetching the next mbufs for writing was slower.
constexpr size_t kPrefetchBytes = 8192;
// Finite files: pages mapped in ahead of the reader, in steps of half as much.
constexpr size_t kPopulateAhead = 4u << 20;
// libpcap refuses a record longer than this for every link type spanfeed
// reads ("invalid packet capture length"): the file is damaged there.
constexpr uint32_t kMaxRecord = 262144;

// The mbuf's own (tiny) data room holds the shared info of the external
// buffer it is attached to: one per mbuf, reference count 1, so freeing it
// costs no atomic and no shared cache line. The mapping outlives every mbuf
// (the engine frees the pool first): nothing to do when the count drops.
void no_free(void*, void*) {}

inline rte_mbuf_ext_shared_info* own_shinfo(rte_mbuf* m) {
  return reinterpret_cast<rte_mbuf_ext_shared_info*>(
      static_cast<char*>(static_cast<void*>(m)) + sizeof(rte_mbuf) + rte_pktmbuf_priv_size(m->pool));
}

inline void attach(rte_mbuf* m, const std::byte* data, uint32_t len) {
  rte_mbuf_ext_shared_info* sh = own_shinfo(m);
  sh->free_cb = no_free;
  sh->fcb_opaque = nullptr;
  rte_mbuf_ext_refcnt_set(sh, 1);
  void* addr = const_cast<std::byte*>(data);
  rte_pktmbuf_attach_extbuf(m, addr, static_cast<rte_iova_t>(reinterpret_cast<uintptr_t>(addr)),
                            static_cast<uint16_t>(len), sh);
  m->data_len = static_cast<uint16_t>(len);
}

// A pinned mbuf (pin_pool) back from the pool is as rte_pktmbuf_free left it:
// its shared info set, reference counts 1, next NULL (a pool's invariant),
// one segment, ol_flags RTE_MBUF_F_EXTERNAL. Point it at the record and write
// the first cache line's fields rte_pktmbuf_reset and
// rte_pktmbuf_attach_extbuf would (the adjacent stores merge): ~15
// instructions instead of ~60. Like a PMD's receive path it leaves the second
// line alone: `next` is already NULL and `tx_offload` is nobody's input here
// (the defragmenter sets l2_len/l3_len itself).
[[gnu::always_inline]] inline void attach_pinned(rte_mbuf* m, const std::byte* data, uint32_t len,
                                                 uint64_t ol_flags) {
  void* addr = const_cast<std::byte*>(data);
  m->buf_addr = addr;
  rte_mbuf_iova_set(m, static_cast<rte_iova_t>(reinterpret_cast<uintptr_t>(addr)));
  m->data_off = 0;
  m->nb_segs = 1;
  m->port = 0;
  m->ol_flags = ol_flags;
  m->packet_type = 0;
  m->pkt_len = len;
  m->data_len = static_cast<uint16_t>(len);
  m->vlan_tci = 0;
  m->vlan_tci_outer = 0;
  m->buf_len = static_cast<uint16_t>(len);
}

void pin_mbuf(rte_mempool*, void*, void* obj, unsigned) {
  auto* m = static_cast<rte_mbuf*>(obj);
  rte_mbuf_ext_shared_info* sh = own_shinfo(m);
  sh->free_cb = no_free;
  sh->fcb_opaque = nullptr;
  rte_mbuf_ext_refcnt_set(sh, 1);
  m->shinfo = sh;
  m->ol_flags = RTE_MBUF_F_EXTERNAL;
}

}  // namespace

void FileSource::pin_pool(rte_mempool* pool) {
  rte_mempool_obj_iter(pool, pin_mbuf, nullptr);
  static_cast<rte_pktmbuf_pool_private*>(rte_mempool_get_priv(pool))->flags |= RTE_PKTMBUF_POOL_F_PINNED_EXT_BUF;
  pinned_ = true;
}

void FileSource::free_bulk(rte_mbuf** pkts, unsigned n) {
  // What rte_pktmbuf_prefree_seg does for such an mbuf, without its branches:
  // a pinned buffer is not detached, and its shared info's count stays 1
  // (pin_pool set it; nothing here clones or attaches these mbufs). Nothing
  // is written: rx_burst rewrites the flags with the rest of the first line,
  // so the worker only reads the lines the RX lcore writes.
  rte_mempool* pinned = nullptr;
  unsigned first = 0;  // pkts[first..] not looked at yet
  while (first < n && pkts[first] == nullptr) ++first;
  if (first == n) return;
  if ((rte_pktmbuf_priv_flags(pkts[first]->pool) & RTE_PKTMBUF_POOL_F_PINNED_EXT_BUF) != 0) {
    pinned = pkts[first]->pool;
  }
  if (pinned == nullptr) {
    rte_pktmbuf_free_bulk(pkts + first, n - first);
    return;
  }
  // Partition in place: the fast ones to the front, the rest after them.
  unsigned fast = first, slow = n;
  for (unsigned i = first; i < slow;) {
    rte_mbuf* m = pkts[i];
    if (m != nullptr && m->pool == pinned && rte_mbuf_refcnt_read(m) == 1 && m->nb_segs == 1 &&
        m->next == nullptr && (m->ol_flags & RTE_MBUF_F_EXTERNAL) != 0) [[likely]] {
      RTE_ASSERT(rte_mbuf_ext_refcnt_read(m->shinfo) == 1);
      pkts[fast++] = m;
      ++i;
    } else {
      pkts[i] = pkts[--slow];
      pkts[slow] = m;
    }
  }
  if (fast != first) rte_mempool_put_bulk(pinned, reinterpret_cast<void**>(pkts + first), fast - first);
  if (slow != n) rte_pktmbuf_free_bulk(pkts + slow, n - slow);
}

std::unique_ptr<FileSource> FileSource::open(const Options& opt, std::string& error) {
  static_assert(sizeof(rte_mbuf_ext_shared_info) <= kFileMbufDataRoom);
  std::unique_ptr<FileSource> s(new FileSource());
  s->opt_ = opt;
  s->name_ = "file:" + opt.path;
  int fd = ::open(opt.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = "cannot open capture file '" + opt.path + "': " + std::strerror(errno);
    return nullptr;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size < 24) {
    ::close(fd);
    error = "capture file '" + opt.path + "' is too short for a capture header";
    return nullptr;
  }
  s->size_ = static_cast<size_t>(st.st_size);
  // An infinite replay reads the file again and again: fault it in now.
  // Read-only: nothing writes into a record (the defragmenter copies a first
  // fragment's headers before rte_ip_frag rewrites them, ip_defrag.cc), so
  // every replay loop reads the bytes the file holds.
  void* p = mmap(nullptr, s->size_, PROT_READ, MAP_PRIVATE | (opt.infinite ? MAP_POPULATE : 0), fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) {
    error = "cannot map capture file '" + opt.path + "': " + std::strerror(errno);
    return nullptr;
  }
  madvise(p, s->size_, MADV_SEQUENTIAL | MADV_WILLNEED);
  s->map_ = static_cast<const std::byte*>(p);
  uint32_t magic;
  std::memcpy(&magic, s->map_, 4);
  switch (magic) {
    case 0xa1b2c3d4: break;
    case 0xd4c3b2a1: s->swapped_ = true; break;
    case 0xa1b23c4d: s->nanos_ = true; break;
    case 0x4d3cb2a1: s->nanos_ = s->swapped_ = true; break;
    case kPcapngShb: s->pcapng_ = true; break;
    default:
      error = "capture file '" + opt.path + "': not a pcap or pcapng file";
      return nullptr;
  }
  s->first_ = s->pos_ = s->pcapng_ ? 0 : 24;
  return s;
}

FileSource::~FileSource() {
  if (map_ != nullptr) munmap(const_cast<std::byte*>(map_), size_);
}

[[gnu::always_inline]] inline bool FileSource::next_classic(const std::byte*& data, uint32_t& caplen,
                                                            uint64_t& ts_us) {
  if (pos_ + 16 > size_) return false;
  uint32_t hdr[4];
  std::memcpy(hdr, map_ + pos_, 16);
  if (swapped_) {
    for (uint32_t& v : hdr) v = __builtin_bswap32(v);
  }
  const uint32_t sec = hdr[0], frac = hdr[1], incl = hdr[2];
  if (incl > size_ - pos_ - 16 || incl > kMaxRecord) return false;
  truncated_ += incl < hdr[3];
  data = map_ + pos_ + 16;
  caplen = opt_.snaplen != 0 ? std::min(incl, opt_.snaplen) : incl;  // as libpcap cuts it
  ts_us = uint64_t{sec} * 1'000'000 + (nanos_ ? frac / 1000 : frac);
  pos_ += 16 + size_t{incl};
  return true;
}

bool FileSource::next_record(const std::byte*& data, uint32_t& caplen, uint64_t& ts_us) {
  auto rd32 = [&](size_t at) {
    uint32_t v;
    std::memcpy(&v, map_ + at, 4);
    return swapped_ ? __builtin_bswap32(v) : v;
  };
  auto rd16 = [&](size_t at) {
    uint16_t v;
    std::memcpy(&v, map_ + at, 2);
    return swapped_ ? __builtin_bswap16(v) : v;
  };
  if (!pcapng_) return next_classic(data, caplen, ts_us);
  while (pos_ + 12 <= size_) {
    uint32_t type;
    std::memcpy(&type, map_ + pos_, 4);  // the section header's type reads the same both ways
    if (type == kPcapngShb) {
      uint32_t bom;
      std::memcpy(&bom, map_ + pos_ + 8, 4);
      if (bom == kPcapngByteOrder) swapped_ = false;
      else if (bom == __builtin_bswap32(kPcapngByteOrder)) swapped_ = true;
      else return false;
      nifaces_ = 0;
    } else {
      type = rd32(pos_);
    }
    const uint32_t len = rd32(pos_ + 4);
    if (len < 12 || len % 4 != 0 || len > size_ - pos_) return false;
    const size_t body = pos_ + 8, body_len = len - 12;
    pos_ += len;
    switch (type) {
      case kPcapngIdb: {
        if (body_len < 8 || nifaces_ == kMaxInterfaces) break;
        Interface& i = ifaces_[nifaces_++];
        i = Interface{};
        i.snaplen = rd32(body + 4);
        for (size_t o = body + 8; o + 4 <= body + body_len;) {
          uint16_t code = rd16(o), olen = rd16(o + 2);
          if (code == 0 || o + 4 + olen > body + body_len) break;
          if (code == 9 && olen >= 1) {  // if_tsresol
            auto v = static_cast<uint8_t>(map_[o + 4]);
            uint64_t tps = 1;
            if (v & 0x80) {
              tps = (v & 0x7f) < 63 ? uint64_t{1} << (v & 0x7f) : 1;
            } else {
              for (unsigned k = 0; k < v && k < 19; ++k) tps *= 10;
            }
            i.ticks_per_s = tps;
          } else if (code == 14 && olen == 8) {  // if_tsoffset
            uint64_t lo = rd32(o + 4), hi = rd32(o + 8);
            i.offset_s = static_cast<int64_t>(swapped_ ? (lo << 32 | hi) : (hi << 32 | lo));
          }
          o += 4 + ((olen + 3u) & ~3u);
        }
        break;
      }
      case kPcapngEpb:
      case kPcapngOpb: {
        const bool epb = type == kPcapngEpb;
        const size_t hdr = 20;
        if (body_len < hdr) return false;
        uint32_t ifc = epb ? rd32(body) : rd16(body);
        uint64_t t = uint64_t{rd32(body + 4)} << 32 | rd32(body + 8);
        uint32_t incl = rd32(body + 12);
        if (incl > body_len - hdr) return false;
        const Interface def{};
        const Interface& i = ifc < nifaces_ ? ifaces_[ifc] : def;
        data = map_ + body + hdr;
        caplen = opt_.snaplen != 0 ? std::min(incl, opt_.snaplen) : incl;
        const uint64_t tps = i.ticks_per_s;
        const uint64_t frac = t % tps;
        ts_us = static_cast<uint64_t>(static_cast<int64_t>(t / tps) + i.offset_s) * 1'000'000 +
                static_cast<uint64_t>((static_cast<unsigned __int128>(frac) * 1'000'000) / tps);
        return true;
      }
      case kPcapngSpb: {
        if (body_len < 4) return false;
        uint32_t orig = rd32(body);
        uint32_t incl = static_cast<uint32_t>(std::min<size_t>(orig, body_len - 4));
        if (nifaces_ > 0 && ifaces_[0].snaplen != 0) incl = std::min(incl, ifaces_[0].snaplen);
        data = map_ + body + 4;
        caplen = opt_.snaplen != 0 ? std::min(incl, opt_.snaplen) : incl;
        ts_us = 0;  // simple packet blocks carry no time
        return true;
      }
      default:
        break;  // statistics, name resolution, custom blocks...
    }
  }
  return false;
}

uint16_t FileSource::rx_burst(rte_mempool* pool, rte_mbuf** pkts, uint16_t n, int ts_offset) {
  if (opt_.records == 0 || ended_) return 0;
  if (!opt_.infinite) {
    uint64_t left = opt_.records - delivered_.load(std::memory_order_relaxed) -
                    nombuf_.load(std::memory_order_relaxed);
    if (left == 0) return 0;
    n = static_cast<uint16_t>(std::min<uint64_t>(n, left));
  }
  return pinned_ ? fill<true>(pool, pkts, n, ts_offset) : fill<false>(pool, pkts, n, ts_offset);
}

template <bool kPinned>
uint16_t FileSource::fill(rte_mempool* pool, rte_mbuf** pkts, uint16_t n, int ts_offset) {
  auto next = [&](const std::byte*& data, uint32_t& caplen, uint64_t& ts) {
    if (opt_.infinite && in_pass_ == opt_.records) {
      pos_ = first_;
      in_pass_ = 0;
    }
    if (!(pcapng_ ? next_record(data, caplen, ts) : next_classic(data, caplen, ts))) {
      if (!opt_.infinite) return false;
      pos_ = first_;  // the parser found the end before libpcap did: start over
      in_pass_ = 0;
      if (!next_record(data, caplen, ts)) return false;
    }
    ++in_pass_;
    return true;
  };
  // A pinned mbuf needs no reset: attach_pinned writes what it would.
  auto get = [&](rte_mbuf** m, unsigned k) {
    if constexpr (kPinned) {
      if (rte_mempool_get_bulk(pool, reinterpret_cast<void**>(m), k) != 0) return -1;
      tsan_acquire(pool);  // as alloc_bulk_synced: the last users freed them after tsan_release
      return 0;
    } else {
      return alloc_bulk_synced(pool, m, k, pool);
    }
  };
  if (unlikely(get(pkts, n) != 0)) {
    if (opt_.drop_without_mbuf) {
      // Live: like a NIC (and net_pcap), the record read finds no mbuf and is lost.
      const std::byte* d;
      uint32_t len;
      uint64_t ts;
      if (next(d, len, ts)) nombuf_.fetch_add(1, std::memory_order_relaxed);
      else ended_ = true;
    }
    return 0;
  }
  const bool stamp = ts_offset >= 0 && stamps();
  const uint64_t ol_flags = RTE_MBUF_F_EXTERNAL;
  auto stamp_at = [ts_offset](rte_mbuf* m) {
    return reinterpret_cast<uint64_t*>(reinterpret_cast<char*>(m) + ts_offset);
  };
  uint64_t bytes = 0;
  uint16_t i = 0;
  if (kPinned && !pcapng_ && !opt_.infinite) {
    // The usual run: a finite classic pcap file. The reader's state in
    // registers (the mbuf stores could alias the members), one loop per
    // timestamp kind: ~40 instructions a record instead of ~90. Records over
    // 64 KiB leave it for the loop below.
    const std::byte* const map = map_;
    const size_t size = size_;
    const uint32_t snaplen = opt_.snaplen != 0 ? opt_.snaplen : UINT32_MAX;
    const bool swapped = swapped_;
    size_t pos = pos_;
    uint64_t truncated = 0;
    auto loop = [&]<bool kStamp, bool kNanos>() {
      for (; i < n; ++i) {
        if (unlikely(pos + 16 > size)) break;
        uint32_t hdr[4];
        std::memcpy(hdr, map + pos, 16);
        if (unlikely(swapped)) {
          for (uint32_t& v : hdr) v = __builtin_bswap32(v);
        }
        const uint32_t incl = hdr[2];
        if (unlikely(incl > size - pos - 16 || incl > kMaxRecord)) break;
        truncated += incl < hdr[3];
        const uint32_t caplen = std::min(incl, snaplen);  // as libpcap cuts it
        if (unlikely(caplen > kMaxSegment)) break;
        rte_mbuf* m = pkts[i];
        rte_prefetch0(map + pos + kPrefetchBytes);  // a dozen records ahead: their headers
        attach_pinned(m, map + pos + 16, caplen, ol_flags);
        if constexpr (kStamp) {  // microseconds, as libpcap and net_pcap give them, in ns
          *stamp_at(m) = (uint64_t{hdr[0]} * 1'000'000 + (kNanos ? hdr[1] / 1000 : hdr[1])) * 1000;
        }
        pos += 16 + size_t{incl};
        bytes += caplen;
      }
    };
    if (!stamp) {
      loop.template operator()<false, false>();
    } else if (nanos_) {
      loop.template operator()<true, true>();
    } else {
      loop.template operator()<true, false>();
    }
    in_pass_ += i;
    pos_ = pos;
    truncated_ += truncated;
  }
  for (; i < n; ++i) {
    const std::byte* data;
    uint32_t caplen;
    uint64_t ts;
    if (unlikely(!next(data, caplen, ts))) {
      ended_ = true;
      break;
    }
    rte_mbuf* m = pkts[i];
    const uint32_t first = std::min(caplen, kMaxSegment);
    if constexpr (kPinned) {
      attach_pinned(m, data, first, ol_flags);
    } else {
      attach(m, data, first);
      m->pkt_len = first;
      m->port = 0;
    }
    if (stamp) *stamp_at(m) = ts * 1000;
    // Records over 64 KiB (jumbo/TSO captures): chain more attached mbufs. If
    // the pool runs dry here, the frame is cut where the chain stops.
    if (unlikely(first < caplen)) {
      rte_mbuf* tail = m;
      for (uint32_t off = first; off < caplen;) {
        rte_mbuf* seg = nullptr;
        if (get(&seg, 1) != 0) break;
        const uint32_t len = std::min(caplen - off, kMaxSegment);
        if constexpr (kPinned) {
          attach_pinned(seg, data + off, len, RTE_MBUF_F_EXTERNAL);
        } else {
          attach(seg, data + off, len);
        }
        tail->next = seg;
        tail = seg;
        m->nb_segs++;
        m->pkt_len += len;
        off += len;
      }
    }
    bytes += m->pkt_len;
  }
  if (i < n) {
    tsan_release(pool);  // whichever lcore takes them from the pool next
    rte_pktmbuf_free_bulk(pkts + i, n - i);
  }
  if (!opt_.infinite && populate_ && pos_ + kPopulateAhead / 2 > populated_ && populated_ < size_) {
    // Map the pages ahead of the reader in one call per step instead of a
    // fault every 16 pages (with faults, a quarter of the RX lcore's time
    // went to the kernel).
    const size_t from = std::max(populated_, pos_ & ~size_t{4095});
    const size_t upto = std::min(size_, from + kPopulateAhead);
    if (madvise(const_cast<std::byte*>(map_) + from, upto - from, MADV_POPULATE_READ) != 0) populate_ = false;
    populated_ = upto;
  }
  if (!opt_.infinite && pos_ > released_ + 2 * kResidentWindow) {
    const size_t upto = (pos_ - kResidentWindow) & ~size_t{4095};
    madvise(const_cast<std::byte*>(map_) + released_, upto - released_, MADV_DONTNEED);
    released_ = upto;
  }
  delivered_.store(delivered_.load(std::memory_order_relaxed) + i, std::memory_order_relaxed);
  bytes_.store(bytes_.load(std::memory_order_relaxed) + bytes, std::memory_order_relaxed);
  offset_.store(pos_, std::memory_order_relaxed);
  return i;
}

FileSource::ReadEnd FileSource::read_end() const {
  ReadEnd e;
  e.offset = offset_.load(std::memory_order_relaxed);
  e.size = size_;
  e.records = delivered_.load(std::memory_order_relaxed) + nombuf_.load(std::memory_order_relaxed);
  e.truncated_by_snaplen = truncated_;
  e.ended = ended_;
  e.stopped_early = ended_ && !pcapng_ && pos_ < size_;
  return e;
}

NicSnapshot FileSource::snapshot(uint16_t port) const {
  NicSnapshot ns;
  ns.port = port;
  ns.name = name_;
  ns.ipackets = delivered_.load(std::memory_order_relaxed);
  ns.ibytes = bytes_.load(std::memory_order_relaxed);
  ns.rx_nombuf = nombuf_.load(std::memory_order_relaxed);
  ns.xstats = {{"rx_good_packets", ns.ipackets}, {"rx_good_bytes", ns.ibytes},
               {"rx_mbuf_allocation_errors", ns.rx_nombuf}};
  return ns;
}

}  // namespace spanfeed::dpdk
