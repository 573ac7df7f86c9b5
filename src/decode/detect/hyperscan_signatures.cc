// Payload-based protocol detection with Hyperscan: the registry's signatures in one block-mode database.
// The database is compiled once (first use, control core); scans run on the workers without allocating.
#include "hyperscan_signatures.h"

#include <hs.h>

#include "hs_cache.h"

#include <algorithm>
#include <string>
#include <vector>

namespace spanfeed {

namespace {

struct SignatureRef {
  Protocol protocol;
  Transport transport;
};

struct Database {
  hs_database_t* db = nullptr;
  std::vector<SignatureRef> refs;  // by Hyperscan id
  std::string error;
};

const Database& database() {
  static const Database d = [] {
    Database out;
    std::vector<const char*> exprs;
    std::vector<unsigned> flags, ids;
    for (const ProtocolDescriptor* p : protocol_registry()) {
      for (const ProtocolSignature& s : p->signatures) {
        ids.push_back(static_cast<unsigned>(out.refs.size()));
        out.refs.push_back({p->id, s.transport});
        exprs.push_back(s.pattern);
        flags.push_back(HS_FLAG_DOTALL | HS_FLAG_SINGLEMATCH);
      }
    }
    hs_compile_error_t* err = nullptr;
    if (hs_compile_multi_cached(exprs.data(), flags.data(), ids.data(), static_cast<unsigned>(exprs.size()),
                                HS_MODE_BLOCK, &out.db, &err) != HS_SUCCESS) {
      const int at = err != nullptr ? err->expression : -1;
      out.error = std::string("protocol signature does not compile: ") + (err != nullptr ? err->message : "?");
      if (at >= 0 && static_cast<size_t>(at) < out.refs.size())
        out.error += " (" + std::string(to_string(out.refs[at].protocol)) + ": " + exprs[at] + ")";
      hs_free_compile_error(err);
      out.db = nullptr;
    }
    return out;
  }();
  return d;
}

struct ScanCtx {
  const Database* d;
  Transport t;
  uint32_t mask = 0;
};

int on_signature(unsigned id, unsigned long long /*from*/, unsigned long long /*to*/, unsigned /*flags*/, void* c) {
  auto& ctx = *static_cast<ScanCtx*>(c);
  const SignatureRef& r = ctx.d->refs[id];
  if (r.transport == ctx.t) ctx.mask |= protocol_bit(r.protocol);
  return 0;
}

}  // namespace

HyperscanSignatures::HyperscanSignatures() {
  hs_scratch_t* s = nullptr;
  if (database().db != nullptr && hs_alloc_scratch(database().db, &s) == HS_SUCCESS) scratch_ = s;
}

HyperscanSignatures::~HyperscanSignatures() { hs_free_scratch(static_cast<hs_scratch_t*>(scratch_)); }

std::string HyperscanSignatures::compile_error() { return database().error; }

uint32_t HyperscanSignatures::candidates(std::span<const std::byte> chunk, Transport t) {
  if (scratch_ == nullptr || chunk.empty()) return kAllProtocols;  // no database: let every decoder look
  ScanCtx ctx{&database(), t};
  const size_t n = std::min(chunk.size(), kScanBytes);
  hs_scan(database().db, reinterpret_cast<const char*>(chunk.data()), static_cast<unsigned>(n), 0,
          static_cast<hs_scratch_t*>(scratch_), on_signature, &ctx);
  return ctx.mask;
}

}  // namespace spanfeed
