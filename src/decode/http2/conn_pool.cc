// HTTP/2 connection pool: the per-connection HPACK budget allocator and the lease / release of contexts.
// Pool arrays are allocated at start-up; nghttp2 allocates inside the per-connection budget (malloc).
#include "conn_pool.h"

#include <cstdlib>
#include <cstring>

namespace spanfeed::http2 {
namespace {

// Each block carries its size in front (16 bytes keep malloc's alignment), so free and realloc can account.
constexpr size_t kHead = 16;

void* budget_malloc(size_t size, void* ud) {
  auto* b = static_cast<HpackBudget*>(ud);
  if (size > b->cap || b->used + size > b->cap) {
    b->hit = true;
    return nullptr;
  }
  auto* p = static_cast<unsigned char*>(std::malloc(size + kHead));
  if (p == nullptr) return nullptr;
  std::memcpy(p, &size, sizeof(size));
  b->used += size;
  return p + kHead;
}

void budget_free(void* ptr, void* ud) {
  if (ptr == nullptr) return;
  auto* b = static_cast<HpackBudget*>(ud);
  auto* p = static_cast<unsigned char*>(ptr) - kHead;
  size_t size = 0;
  std::memcpy(&size, p, sizeof(size));
  b->used -= size;
  std::free(p);
}

void* budget_calloc(size_t n, size_t size, void* ud) {
  if (size != 0 && n > SIZE_MAX / size) return nullptr;
  void* p = budget_malloc(n * size, ud);
  if (p != nullptr) std::memset(p, 0, n * size);
  return p;
}

void* budget_realloc(void* ptr, size_t size, void* ud) {
  if (ptr == nullptr) return budget_malloc(size, ud);
  auto* b = static_cast<HpackBudget*>(ud);
  auto* p = static_cast<unsigned char*>(ptr) - kHead;
  size_t old = 0;
  std::memcpy(&old, p, sizeof(old));
  if (size > old && (size > b->cap || b->used + (size - old) > b->cap)) {
    b->hit = true;
    return nullptr;
  }
  auto* q = static_cast<unsigned char*>(std::realloc(p, size + kHead));
  if (q == nullptr) return nullptr;
  std::memcpy(q, &size, sizeof(size));
  b->used = b->used - old + size;
  return q + kHead;
}

}  // namespace

ConnPool::ConnPool(uint32_t connections, uint32_t max_streams, size_t memory_cap)
    : size_(connections),
      max_streams_(max_streams),
      cap_(memory_cap),
      conns_(std::make_unique<Connection[]>(connections)),
      streams_(connections) {
  free_.reserve(connections);
  for (uint32_t i = connections; i-- > 0;) free_.push_back(i);
  for (uint32_t i = 0; i < connections; ++i) {
    Connection& c = conns_[i];
    c.mem = nghttp2_mem{&c.budget, budget_malloc, budget_free, budget_calloc, budget_realloc};
  }
}

ConnPool::~ConnPool() {
  for (uint32_t i = 0; i < size_; ++i) {
    for (nghttp2_hd_inflater*& h : conns_[i].hd) {
      if (h != nullptr) nghttp2_hd_inflate_del(h);
      h = nullptr;
    }
  }
}

uint32_t ConnPool::lease() {
  if (free_.empty()) return kNone;
  const uint32_t i = free_.back();
  Connection& c = conns_[i];
  c.budget = HpackBudget{0, cap_, false};
  c.next_order = 0;
  c.used = 0;  // open_stream resets each slot it takes
  for (nghttp2_hd_inflater*& h : c.hd) {
    if (nghttp2_hd_inflate_new2(&h, &c.mem) != 0) h = nullptr;
  }
  if (c.hd[0] == nullptr || c.hd[1] == nullptr) {
    for (nghttp2_hd_inflater*& h : c.hd) {
      if (h != nullptr) nghttp2_hd_inflate_del(h);
      h = nullptr;
    }
    return kNone;
  }
  free_.pop_back();
  // A context's stream table is made on its first lease: a run that meets a
  // few HTTP/2 connections does not make tables for 256.
  if (streams_[i] == nullptr) streams_[i] = std::make_unique<Stream[]>(max_streams_);
  ++leased_;
  return i;
}

void ConnPool::release(uint32_t i) {
  if (i >= size_) return;
  Connection& c = conns_[i];
  for (nghttp2_hd_inflater*& h : c.hd) {
    if (h != nullptr) nghttp2_hd_inflate_del(h);
    h = nullptr;
  }
  free_.push_back(i);
  --leased_;
}

}  // namespace spanfeed::http2
