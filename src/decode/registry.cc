// The protocol registry: the descriptors listed in protocols.def, and what is derived from them.
// Read from any thread (constant data); allocates only in the string-building helpers (start-up, messages).
#include "spanfeed/decoder.h"
#include "spanfeed/protocol.h"

namespace spanfeed {

#define SPANFEED_PROTOCOL(id, folder) \
  namespace folder {                  \
  extern const ProtocolDescriptor kDescriptor;   \
  }
#include "spanfeed/protocols.def"
#undef SPANFEED_PROTOCOL

namespace {

constexpr const ProtocolDescriptor* kRegistry[] = {
#define SPANFEED_PROTOCOL(id, folder) &folder::kDescriptor,
#include "spanfeed/protocols.def"
#undef SPANFEED_PROTOCOL
};
static_assert(std::size(kRegistry) + 1 == kProtocolCount);

}  // namespace

std::span<const ProtocolDescriptor* const> protocol_registry() { return kRegistry; }

const ProtocolDescriptor* protocol_descriptor(Protocol p) {
  const auto i = static_cast<size_t>(p);
  if (i == 0 || i >= kProtocolCount) return nullptr;
  return kRegistry[i - 1];
}

const ProtocolDescriptor* protocol_descriptor(std::string_view name) {
  for (const ProtocolDescriptor* d : kRegistry) {
    if (d->name == name) return d;
  }
  return nullptr;
}

void prepare_decoders() {
  for (const ProtocolDescriptor* d : kRegistry) {
    if (d->prepare != nullptr) d->prepare();
  }
}

std::string protocol_names(std::string_view sep) {
  std::string out;
  for (const ProtocolDescriptor* d : kRegistry) {
    if (!out.empty()) out += sep;
    out += d->name;
  }
  return out;
}

std::vector<PortBinding> default_port_bindings() {
  std::vector<PortBinding> out;
  for (const ProtocolDescriptor* d : kRegistry) {
    for (uint16_t port : d->tcp_ports) out.push_back({d->id, Transport::kTcp, port});
    for (uint16_t port : d->udp_ports) out.push_back({d->id, Transport::kUdp, port});
  }
  return out;
}

std::string check_protocol_option(Protocol p, std::string_view name, uint64_t v) {
  const ProtocolDescriptor* d = protocol_descriptor(p);
  if (d == nullptr) return "unknown protocol";
  std::string known;
  for (const ProtocolOption& o : d->options) {
    if (o.name == name) {
      if (v < o.min || v > o.max)
        return "must be in [" + std::to_string(o.min) + ", " + std::to_string(o.max) + "] (" + o.meaning + ")";
      return {};
    }
    known += (known.empty() ? "" : ", ") + std::string(o.name);
  }
  if (known.empty()) known = "none; the shared keys are response_timeout_s, redact_secrets, ports";
  return "unknown " + std::string(d->name) + " option (known: " + known + ")";
}

uint64_t protocol_option(std::span<const ProtocolOptionSetting> settings, Protocol p, std::string_view name) {
  for (size_t i = settings.size(); i-- > 0;) {
    if (settings[i].protocol == p && settings[i].name == name) return settings[i].value;
  }
  if (const ProtocolDescriptor* d = protocol_descriptor(p)) {
    for (const ProtocolOption& o : d->options) {
      if (o.name == name) return o.default_value;
    }
  }
  return 0;
}

}  // namespace spanfeed
