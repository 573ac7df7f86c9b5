// RX outcome names and the parse outcome each one stands for. Any thread; no
// allocation.
#include "spanfeed/counters.h"

namespace spanfeed {

std::string_view to_string(RxOutcome o) {
  const auto i = static_cast<size_t>(o);
  return i < kRxOutcomeCount ? kRxOutcomeNames[i] : "unknown";
}

RxOutcome rx_outcome_for(ParseOutcome p) {
  switch (p) {
    case ParseOutcome::kOk: return RxOutcome::kDelivered;
    case ParseOutcome::kNonIp: return RxOutcome::kNonIp;
    case ParseOutcome::kTruncatedL2:
    case ParseOutcome::kTruncatedL3: return RxOutcome::kTruncated;
    case ParseOutcome::kTunnelTooDeep: return RxOutcome::kTunnelTooDeep;
    case ParseOutcome::kTunnelMalformed: return RxOutcome::kTunnelMalformed;
    case ParseOutcome::kMalformedL3:
    case ParseOutcome::kCount: break;
  }
  return RxOutcome::kMalformed;
}

}  // namespace spanfeed
