// spanfeed-protocols: prints what the protocol registry declares (docs/records.md tables, the record JSON Schema).
// A start-up tool: single thread, allocates freely. docs/records.md and docs/record.schema.json are its output
// (tests/decode/test_registry_docs.py fails when they drift).
#include <cstdio>
#include <string>
#include <string_view>

#include "spanfeed/protocol.h"
#include "spanfeed/record.h"

namespace {

using spanfeed::ProtocolDescriptor;

std::string ports(std::span<const uint16_t> p) {
  std::string out;
  for (uint16_t v : p) out += (out.empty() ? "" : ", ") + std::to_string(v);
  return out.empty() ? "-" : out;
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Markdown: one table of protocols, then one table of fields per protocol.
void markdown() {
  std::printf("| protocol | name | TCP ports | UDP ports | signatures | options |\n|---|---|---|---|---|---|\n");
  for (const ProtocolDescriptor* d : spanfeed::protocol_registry()) {
    std::string opts;
    for (const auto& o : d->options)
      opts += (opts.empty() ? "" : ", ") + ("`decode." + std::string(d->name) + "." + o.name + "` (" +
                                            std::to_string(o.default_value) + ")");
    std::printf("| %.*s | `%.*s` | %s | %s | %zu | %s |\n", int(d->title.size()), d->title.data(), int(d->name.size()),
                d->name.data(), ports(d->tcp_ports).c_str(), ports(d->udp_ports).c_str(), d->signatures.size(),
                opts.empty() ? "-" : opts.c_str());
  }
  for (const ProtocolDescriptor* d : spanfeed::protocol_registry()) {
    std::printf("\n#### %.*s fields (`%.*s`)\n\n| side | field | type | meaning |\n|---|---|---|---|\n",
                int(d->title.size()), d->title.data(), int(d->name.size()), d->name.data());
    for (const auto& f : d->fields) std::printf("| %s | `%s` | %s | %s |\n", f.side, f.name, f.type, f.meaning);
    for (const auto& o : d->options)
      std::printf("\nOption `decode.%.*s.%s`: %s (default %llu, %llu..%llu).\n", int(d->name.size()), d->name.data(),
                  o.name, o.meaning, static_cast<unsigned long long>(o.default_value),
                  static_cast<unsigned long long>(o.min), static_cast<unsigned long long>(o.max));
  }
}

std::string json_types(std::string_view t) {
  std::string out = "[";
  size_t start = 0;
  while (start <= t.size()) {
    size_t bar = t.find('|', start);
    if (bar == std::string_view::npos) bar = t.size();
    out += (out.size() > 1 ? ", " : "") + json_string(t.substr(start, bar - start));
    start = bar + 1;
  }
  return out + "]";
}

// JSON Schema (draft 2020-12) of one record: the common fields, and per
// protocol the request / response objects with exactly the declared fields.
void schema() {
  std::printf(
      "{\n  \"$schema\": \"https://json-schema.org/draft/2020-12/schema\",\n"
      "  \"title\": \"spanfeed record\",\n  \"type\": \"object\",\n"
      "  \"required\": [\"schema_version\", \"ts\", \"id\", \"protocol\", \"client\", \"server\", \"latency_us\", \"status\", "
      "\"request\", \"response\", \"tags\", \"flags\"],\n"
      "  \"properties\": {\n");
  // Any minor version of this major validates: within a major version fields are only added.
  const std::string_view v = spanfeed::kRecordSchemaVersion;
  std::printf("    \"schema_version\": {\"type\": \"string\", \"pattern\": \"^%.*s\\\\.[0-9]+$\",\n"
              "      \"description\": \"record format version (major.minor); this schema: %.*s\"},\n",
              static_cast<int>(v.find('.')), v.data(), static_cast<int>(v.size()), v.data());
  std::printf(
      "    \"ts\": {\"type\": \"string\"},\n    \"id\": {\"type\": \"string\"},\n"
      "    \"protocol\": {\"enum\": [");
  bool first = true;
  for (const ProtocolDescriptor* d : spanfeed::protocol_registry()) {
    std::printf("%s%s", first ? "" : ", ", json_string(d->name).c_str());
    first = false;
  }
  std::printf(
      "]},\n"
      "    \"client\": {\"$ref\": \"#/$defs/endpoint\"},\n    \"server\": {\"$ref\": \"#/$defs/endpoint\"},\n"
      "    \"latency_us\": {\"type\": [\"integer\", \"null\"]},\n"
      "    \"status\": {\"enum\": [\"ok\", \"error\", \"timeout\", \"unmatched\"]},\n"
      "    \"request\": {\"type\": [\"object\", \"null\"]},\n    \"response\": {\"type\": [\"object\", \"null\"]},\n"
      "    \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}},\n"
      "    \"flags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}},\n"
      "    \"recording_id\": {\"type\": \"string\"},\n"
      "    \"tunnel\": {\"type\": \"object\", \"required\": [\"type\", \"depth\", \"outer_src\", \"outer_dst\"],\n"
      "      \"properties\": {\"type\": {\"enum\": [\"erspan1\", \"erspan2\", \"erspan3\", \"gre\", \"vxlan\", "
      "\"vxlan_gpe\", \"geneve\", \"ipip\"]},\n"
      "        \"depth\": {\"type\": \"integer\"}, \"id\": {\"type\": \"integer\"},\n"
      "        \"outer_src\": {\"type\": \"string\"}, \"outer_dst\": {\"type\": \"string\"}}}\n"
      "  },\n  \"allOf\": [\n");
  first = true;
  for (const ProtocolDescriptor* d : spanfeed::protocol_registry()) {
    std::printf("%s    {\"if\": {\"properties\": {\"protocol\": {\"const\": %s}}},\n     \"then\": {\"properties\": {",
                first ? "" : ",\n", json_string(d->name).c_str());
    first = false;
    for (const char* side : {"request", "response"}) {
      std::printf("%s\n       \"%s\": {\"anyOf\": [{\"type\": \"null\"}, {\"type\": \"object\", "
                  "\"additionalProperties\": false, \"properties\": {\"bytes\": {\"type\": \"integer\"}",
                  std::string_view(side) == "request" ? "" : ",", side);
      for (const auto& f : d->fields) {
        if (std::string_view(f.side) != side) continue;
        std::printf(",\n         %s: {\"type\": %s, \"description\": %s}", json_string(f.name).c_str(),
                    json_types(f.type).c_str(), json_string(f.meaning).c_str());
      }
      std::printf("}}]}");
    }
    std::printf("}}}");
  }
  std::printf(
      "\n  ],\n  \"$defs\": {\"endpoint\": {\"type\": \"object\", \"required\": [\"ip\", \"port\"], "
      "\"properties\": {\"ip\": {\"type\": \"string\"}, \"port\": {\"type\": \"integer\"}}}}\n}\n");
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view what = argc > 1 ? argv[1] : "";
  if (what == "--markdown") {
    markdown();
  } else if (what == "--schema") {
    schema();
  } else if (what == "--names") {
    std::printf("%s\n", spanfeed::protocol_names().c_str());
  } else {
    std::fprintf(stderr, "usage: spanfeed-protocols --markdown | --schema | --names\n");
    return 2;
  }
  return 0;
}
