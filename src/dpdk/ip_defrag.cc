// Per-worker IP fragment reassembly over rte_ip_frag. Runs on one worker
// lcore; the table is allocated at construction (control core), never after.
#include "dpdk/ip_defrag.h"

#include <rte_ip.h>
#include <rte_ip_frag.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>

#include "dpdk/handoff.h"
#include "dpdk/tsan_sync.h"

namespace spanfeed::dpdk {
namespace {

constexpr uint32_t kBucketEntries = 4;  // associativity: a bucket's entries are searched linearly
constexpr uint32_t kDeathRowHeadroom = RTE_LIBRTE_IP_FRAG_MAX_FRAG + 1;

}  // namespace

Defragmenter::Defragmenter(uint32_t max_datagrams, uint64_t timeout_ns, int socket, const void* pool,
                           rte_mempool* hdr_pool, uint64_t dedup_window_ns, uint64_t seed)
    : timeout_us_(timeout_ns / 1000 == 0 ? 1 : timeout_ns / 1000),
      pool_(pool),
      hdr_pool_(hdr_pool),
      dedup_window_ns_(dedup_window_ns),
      seed_(seed | 1) {
  // Mirror copies arrive within microseconds of the original: a few
  // fragments per datagram held at once is plenty.
  if (dedup_window_ns_ != 0) seen_.resize(rte_align32pow2(std::max<uint32_t>(max_datagrams * 8, 1024)));
  // Time is passed in microseconds of packet time, so "cycles" are microseconds.
  uint32_t buckets = rte_align32pow2((max_datagrams + kBucketEntries - 1) / kBucketEntries);
  table_ = rte_ip_frag_table_create(buckets, kBucketEntries, max_datagrams, timeout_us_, socket);
}

Defragmenter::~Defragmenter() {
  if (table_ != nullptr) rte_ip_frag_table_destroy(table_);  // frees what is left
}

// A fragment's identity: addresses, IP version and protocol, the IPv4 id and
// flags/offset word or the IPv6 fragment header, the IP length and the first
// 8 bytes of fragment data. TTL, checksum and layer 2 are left out (a router
// between the two mirror points changes them).
bool Defragmenter::mirror_copy(const uint8_t* l3, size_t ip_len, uint16_t l3_len, const ParsedPacket& p,
                               uint64_t ts_ns) {
  auto mix = [](uint64_t h, uint64_t v) {
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 32);
  };
  uint64_t w[2];
  uint64_t h = seed_;
  std::memcpy(w, p.src.bytes, 16);
  h = mix(mix(h, w[0]), w[1]);
  std::memcpy(w, p.dst.bytes, 16);
  h = mix(mix(h, w[0]), w[1]);
  uint64_t ident = 0;
  if (p.ip_version == 4) {
    std::memcpy(&ident, l3 + 4, 4);  // id, flags and offset
  } else {
    std::memcpy(&ident, l3 + sizeof(rte_ipv6_hdr), 8);  // the fragment header
  }
  h = mix(h, ident);
  h = mix(h, uint64_t{p.ip_version} << 56 | uint64_t{p.l4_proto} << 48 | ip_len);
  uint64_t data = 0;
  std::memcpy(&data, l3 + l3_len, std::min<size_t>(8, ip_len - l3_len));
  h = mix(h, data);
  if (h == 0) h = 1;
  Seen& e = seen_[h & (seen_.size() - 1)];
  const uint64_t age = ts_ns > e.ts_ns ? ts_ns - e.ts_ns : e.ts_ns - ts_ns;  // two RX queues may step back
  const bool copy = e.fp == h && age < dedup_window_ns_;
  e.fp = h;
  e.ts_ns = ts_ns;
  return copy;
}

void Defragmenter::free_death_row() {
  if (dr_.cnt == 0) return;
  tsan_release(pool_);
  rte_ip_frag_free_death_row(&dr_, 3);
}

// rte_ip_frag rewrites the first fragment's headers in place when it
// completes a datagram (IPv4 length and offset; IPv6 moves the headers over
// the fragment header). A fragment attached to a mapped capture file must not
// be written: the mapping is read-only, and an infinite replay reads the same
// bytes again. Its headers go into an mbuf of our own, chained before the
// rest, which stays in the mapping (no payload copy). Null: no mbuf free.
rte_mbuf* Defragmenter::own_headers(rte_mbuf* m, uint16_t header_len) {
  // Every worker frees these (chained to a datagram) after tsan_release(pool_): the same sync.
  rte_mbuf* h = nullptr;
  if (alloc_bulk_synced(hdr_pool_, &h, 1, pool_) != 0) return nullptr;
  std::memcpy(rte_pktmbuf_mtod(h, void*), rte_pktmbuf_mtod(m, const void*), header_len);
  h->data_len = header_len;
  h->pkt_len = header_len;
  std::memcpy(rte_mbuf_to_priv(h), rte_mbuf_to_priv(m),
              std::min(rte_pktmbuf_priv_size(h->pool), rte_pktmbuf_priv_size(m->pool)));  // MbufMeta
  h->l2_len = m->l2_len;
  h->l3_len = m->l3_len;
  rte_pktmbuf_adj(m, header_len);
  if (rte_pktmbuf_chain(h, m) != 0) {  // cannot fail with two segments; be safe
    rte_pktmbuf_prepend(m, header_len);
    tsan_release(pool_);
    rte_pktmbuf_free(h);
    return nullptr;
  }
  return h;
}

Defragmenter::Result Defragmenter::add(rte_mbuf* m, const ParsedPacket& p, uint64_t ts_ns,
                                       rte_mbuf** whole) {
  if (m->nb_segs != 1 || (p.flags & packet_flag::kPayloadTruncated)) {
    ++c_.unsupported;
    return Result::kPassThrough;
  }
  uint8_t* l3 = rte_pktmbuf_mtod_offset(m, uint8_t*, p.l3_offset);
  size_t ip_len;  // the whole fragment, header included, per its IP header
  uint16_t l3_len;
  rte_ipv6_fragment_ext* frag6 = nullptr;
  if (p.ip_version == 4) {
    l3_len = static_cast<uint16_t>((l3[0] & 0x0F) * 4);
    ip_len = size_t{l3[2]} << 8 | l3[3];
  } else {
    // rte_ip_frag handles a fragment header right after the fixed header only.
    frag6 = rte_ipv6_frag_get_ipv6_fragment_header(reinterpret_cast<rte_ipv6_hdr*>(l3));
    if (frag6 == nullptr) {
      ++c_.unsupported;
      return Result::kPassThrough;
    }
    l3_len = sizeof(rte_ipv6_hdr) + sizeof(rte_ipv6_fragment_ext);
    ip_len = sizeof(rte_ipv6_hdr) + (size_t{l3[4]} << 8 | l3[5]);
  }
  if (ip_len <= l3_len) {  // an empty fragment adds nothing and confuses the size checks
    ++c_.unsupported;
    return Result::kPassThrough;
  }
  // Ethernet padding after a short fragment would end up inside the datagram.
  const size_t have = rte_pktmbuf_data_len(m);
  if (have > p.l3_offset + ip_len) rte_pktmbuf_trim(m, static_cast<uint16_t>(have - p.l3_offset - ip_len));
  if (dedup_window_ns_ != 0 && rte_pktmbuf_data_len(m) >= p.l3_offset + ip_len &&
      mirror_copy(l3, ip_len, l3_len, p, ts_ns)) {
    ++c_.duplicate;
    tsan_release(pool_);
    rte_pktmbuf_free(m);
    return Result::kHeld;  // taken (and freed)
  }
  m->l2_len = p.l3_offset;
  m->l3_len = l3_len;
  if (RTE_MBUF_HAS_EXTBUF(m) && hdr_pool_ != nullptr) {
    const bool first = p.ip_version == 4 ? (size_t{l3[6] & 0x1F} << 8 | l3[7]) == 0
                                         : (rte_be_to_cpu_16(frag6->frag_data) & 0xFFF8) == 0;
    if (first) {
      const uint32_t header_len = uint32_t{p.l3_offset} + l3_len;
      rte_mbuf* h = header_len <= kFragHeaderRoom ? own_headers(m, static_cast<uint16_t>(header_len)) : nullptr;
      if (h == nullptr) {
        ++c_.unsupported;
        return Result::kPassThrough;
      }
      m = h;
      l3 = rte_pktmbuf_mtod_offset(m, uint8_t*, p.l3_offset);
      if (frag6 != nullptr) frag6 = reinterpret_cast<rte_ipv6_fragment_ext*>(l3 + sizeof(rte_ipv6_hdr));
    }
  }
  ++c_.fragments;
  if (dr_.cnt + kDeathRowHeadroom > RTE_IP_FRAG_DEATH_ROW_MBUF_LEN) free_death_row();
  const uint32_t before = dr_.cnt;
  const uint64_t tms = ts_ns / 1000;
  rte_mbuf* out = p.ip_version == 4
      ? rte_ipv4_frag_reassemble_packet(table_, &dr_, m, tms, reinterpret_cast<rte_ipv4_hdr*>(l3))
      : rte_ipv6_frag_reassemble_packet(table_, &dr_, m, tms, reinterpret_cast<rte_ipv6_hdr*>(l3), frag6);
  const uint32_t dropped = dr_.cnt - before;
  if (out != nullptr) {
    ++c_.reassembled;
    // One segment per fragment, and one more where a first fragment's headers were copied.
    c_.reassembled_fragments += out->nb_segs - (out->pool == hdr_pool_ && hdr_pool_ != nullptr ? 1 : 0);
    // An expired entry it reused on the way: those fragments timed out.
    c_.timed_out += dropped;
  } else if (dropped != 0) {
    bool mine = false;
    for (uint32_t i = before; i < dr_.cnt; ++i) mine |= dr_.row[i] == m;
    if (!mine) {
      c_.timed_out += dropped;  // a stale entry made way for this fragment
    } else if (dropped == 1) {
      c_.table_full += 1;       // no entry for it: only the new fragment goes
    } else {
      c_.overlap += dropped;    // the datagram was inconsistent: all its fragments go
    }
  }
  c_.pending = c_.fragments - c_.reassembled_fragments - c_.overlap - c_.table_full - c_.timed_out;
  if (dr_.cnt != 0) free_death_row();
  if (out == nullptr) return Result::kHeld;
  *whole = out;
  return Result::kComplete;
}

void Defragmenter::count_expired(uint32_t before) {
  c_.timed_out += dr_.cnt - before;
  c_.pending = c_.fragments - c_.reassembled_fragments - c_.overlap - c_.table_full - c_.timed_out;
}

void Defragmenter::expire(uint64_t now_ns) {
  if (c_.pending == 0) return;
  // The death row holds a bounded number of mbufs: expire in rounds.
  for (;;) {
    free_death_row();
    const uint32_t before = dr_.cnt;
    rte_ip_frag_table_del_expired_entries(table_, &dr_, now_ns / 1000);
    count_expired(before);
    if (dr_.cnt == before) break;
  }
  free_death_row();
}

void Defragmenter::flush() {
  // Everything still waiting is older than "the end of time".
  for (;;) {
    free_death_row();
    const uint32_t before = dr_.cnt;
    rte_ip_frag_table_del_expired_entries(table_, &dr_, UINT64_MAX - timeout_us_ - 1);
    count_expired(before);
    if (dr_.cnt == before) break;
  }
  free_death_row();
}

void Defragmenter::publish(std::array<Counter, kDefragCounterCount>& out) const {
  for (size_t i = 0; i < kDefragCounterCount; ++i) {
    out[i] = c_.*(kDefragCounterFields[i].member);
  }
}

}  // namespace spanfeed::dpdk
