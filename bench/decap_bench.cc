// Micro-benchmark: the cost of decapsulation on the RX lcore (parse_packet of
// a bare frame and of each tunnel kind, plus the flow hash) and of IP fragment
// reassembly on the worker (rte_ip_frag: 3 fragments in, one chained datagram
// out, linearised). Runs under a real EAL (--no-huge) for the mbufs.
#include <benchmark/benchmark.h>
#include <rte_eal.h>
#include <rte_ip.h>
#include <rte_ip_frag.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <cstring>
#include <vector>

#include "spanfeed/flow_hash.h"
#include "spanfeed/packet.h"

namespace {

using spanfeed::DecapConfig;
using spanfeed::LinkType;
using spanfeed::ParsedPacket;

using Bytes = std::vector<uint8_t>;

void put16(Bytes& b, uint16_t v) { b.push_back(uint8_t(v >> 8)); b.push_back(uint8_t(v)); }
void put32(Bytes& b, uint32_t v) { put16(b, uint16_t(v >> 16)); put16(b, uint16_t(v)); }
void eth(Bytes& b, uint16_t et) { b.insert(b.end(), 12, 0x02); put16(b, et); }
void ipv4(Bytes& b, uint8_t proto, size_t payload, uint32_t src, uint32_t dst, uint16_t frag = 0x4000) {
  b.push_back(0x45); b.push_back(0); put16(b, uint16_t(20 + payload)); put16(b, 1); put16(b, frag);
  b.push_back(64); b.push_back(proto); put16(b, 0); put32(b, src); put32(b, dst);
}

// Ethernet/IPv4/TCP 40000 -> 80 with 100 payload bytes: what the tunnels carry.
Bytes inner() {
  Bytes b;
  eth(b, 0x0800);
  ipv4(b, 6, 120, 0x0a000001, 0x0a000002);
  put16(b, 40000); put16(b, 80); put32(b, 1); put32(b, 0); b.push_back(0x50); b.push_back(0x18);
  put16(b, 65535); put32(b, 0);
  b.insert(b.end(), 100, 'x');
  return b;
}

Bytes outer(uint8_t proto, const Bytes& body) {
  Bytes b;
  eth(b, 0x0800);
  ipv4(b, proto, body.size(), 0xc0000201, 0xc0000202);
  b.insert(b.end(), body.begin(), body.end());
  return b;
}

Bytes udp(uint16_t dport, const Bytes& body) {
  Bytes u;
  put16(u, 49152); put16(u, dport); put16(u, uint16_t(8 + body.size())); put16(u, 0);
  u.insert(u.end(), body.begin(), body.end());
  return outer(17, u);
}

Bytes vxlan(const Bytes& in) {
  Bytes h = {0x08, 0, 0, 0};
  put32(h, 5001u << 8);
  h.insert(h.end(), in.begin(), in.end());
  return udp(4789, h);
}

Bytes frame_for(int kind) {
  const Bytes in = inner();
  switch (kind) {
    case 0: return in;
    case 1: return vxlan(in);
    case 2: {  // ERSPAN II: GRE with sequence, 8-byte header
      Bytes g;
      put16(g, 0x1000); put16(g, 0x88BE); put32(g, 1);
      put16(g, 0x1000 | 100); put16(g, 7); put32(g, 0);
      g.insert(g.end(), in.begin(), in.end());
      return outer(47, g);
    }
    case 3: {  // Geneve with one 8-byte option
      Bytes g = {2, 0};
      put16(g, 0x6558); put32(g, 77u << 8); put32(g, 0x01028001); put32(g, 0);
      g.insert(g.end(), in.begin(), in.end());
      return udp(6081, g);
    }
    default: {  // depth 3: VXLAN in GRE-TEB in ERSPAN I
      Bytes v = vxlan(in);
      Bytes teb;
      put16(teb, 0); put16(teb, 0x6558);
      teb.insert(teb.end(), v.begin(), v.end());
      Bytes t = outer(47, teb);
      Bytes e;
      put16(e, 0); put16(e, 0x88BE);
      e.insert(e.end(), t.begin(), t.end());
      return outer(47, e);
    }
  }
}

const char* kKindNames[] = {"bare", "vxlan", "erspan2", "geneve", "nested3"};

void BM_ParseHash(benchmark::State& state) {
  const Bytes f = frame_for(static_cast<int>(state.range(0)));
  const std::span<const std::byte> span(reinterpret_cast<const std::byte*>(f.data()), f.size());
  const DecapConfig cfg;
  ParsedPacket p;
  for (auto _ : state) {
    if (spanfeed::parse_packet(span, LinkType::kEthernet, p, cfg) != spanfeed::ParseOutcome::kOk) {
      state.SkipWithError("did not parse");
      break;
    }
    benchmark::DoNotOptimize(spanfeed::symmetric_flow_hash(p, true));
  }
  state.SetLabel(kKindNames[state.range(0)]);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseHash)->DenseRange(0, 4);

// One 2400-byte UDP datagram in 3 IPv4 fragments of 800 bytes, reassembled
// and linearised as the worker does. Items = datagrams.
void BM_Reassemble3Fragments(benchmark::State& state) {
  rte_mempool* pool = rte_pktmbuf_pool_create("b_frag", 1024, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  rte_ip_frag_tbl* tbl = rte_ip_frag_table_create(256, 4, 1024, 5'000'000, SOCKET_ID_ANY);
  rte_ip_frag_death_row dr{};
  std::vector<Bytes> frags;
  const size_t kPiece = 800;
  for (size_t i = 0; i < 3; ++i) {
    Bytes b;
    eth(b, 0x0800);
    uint16_t fo = uint16_t((i * kPiece) / 8) | (i < 2 ? 0x2000 : 0);
    ipv4(b, 17, kPiece, 0x0a000002, 0x0a000001, fo);
    b.insert(b.end(), kPiece, uint8_t('a' + i));
    frags.push_back(b);
  }
  std::vector<std::byte> scratch(256 * 1024);
  uint64_t t = 1;
  for (auto _ : state) {
    rte_mbuf* whole = nullptr;
    for (const Bytes& b : frags) {
      rte_mbuf* m = rte_pktmbuf_alloc(pool);
      std::memcpy(rte_pktmbuf_append(m, uint16_t(b.size())), b.data(), b.size());
      m->l2_len = 14;
      m->l3_len = 20;
      whole = rte_ipv4_frag_reassemble_packet(tbl, &dr, m, ++t,
                                              rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, 14));
    }
    if (whole == nullptr) {
      state.SkipWithError("not reassembled");
      break;
    }
    benchmark::DoNotOptimize(rte_pktmbuf_read(whole, 0, rte_pktmbuf_pkt_len(whole), scratch.data()));
    rte_pktmbuf_free(whole);
    rte_ip_frag_free_death_row(&dr, 0);
  }
  state.SetItemsProcessed(state.iterations());
  rte_ip_frag_table_destroy(tbl);
  rte_mempool_free(pool);
}
BENCHMARK(BM_Reassemble3Fragments);

}  // namespace

int main(int argc, char** argv) {
  char a0[] = "bench_decap", a1[] = "--no-huge", a2[] = "-m", a3[] = "256", a4[] = "--no-pci",
       a5[] = "--no-shconf", a6[] = "-l", a7[] = "0", a8[] = "--log-level=error";
  char* eal[] = {a0, a1, a2, a3, a4, a5, a6, a7, a8};
  if (rte_eal_init(9, eal) < 0) return 1;
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  rte_eal_cleanup();
  return 0;
}
