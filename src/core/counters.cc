// RX outcome names and the parse outcome each one stands for. Any thread; no
// allocation.
#include "spanfeed/counters.h"

namespace spanfeed {

std::string_view to_string(RxOutcome o) {
  switch (o) {
    case RxOutcome::kDelivered: return "delivered";
    case RxOutcome::kNonIp: return "non_ip";
    case RxOutcome::kTruncated: return "truncated";
    case RxOutcome::kMalformed: return "malformed";
    case RxOutcome::kRingFull: return "ring_full";
    case RxOutcome::kFiltered: return "filtered";
    case RxOutcome::kTunnelTooDeep: return "tunnel_too_deep";
    case RxOutcome::kTunnelMalformed: return "tunnel_malformed";
    case RxOutcome::kCount: break;
  }
  return "unknown";
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
