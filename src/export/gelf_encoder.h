// GelfEncoder: one GELF 1.1 document per record, built from the record itself (no JSON parsed
// back). Runs on a worker lcore beside the JSON-lines encoder; allocates only until its scratch
// and the output buffer have grown to the largest record.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "spanfeed/record.h"

namespace spanfeed {

class GelfEncoder {
 public:
  explicit GelfEncoder(std::string host);
  // Appends the document of `r` (no framing) to `out`. Fields: version, host,
  // short_message ("protocol status" + the request's summary field),
  // timestamp, level (6 ok, 3 error, 4 otherwise) and every record field
  // flattened with '_' ("_request_method"; "_record_id" for the record id;
  // arrays as JSON text). Keys in byte order, as the exporter wrote them
  // when it re-parsed the JSON line.
  void append(const Record& r, std::string& out);

 private:
  struct Entry {
    uint32_t key_off, key_len, val_off, val_len;
  };
  void begin(std::string_view a, std::string_view b = {});
  void end();
  void add_fields(std::string_view side, const Message& m);

  std::string host_;
  std::string keys_;   // entry keys, back to back
  std::string vals_;   // entry values (JSON), back to back
  std::string tmp_;    // short message, array text
  std::string dec_;    // a JSON string of embedded JSON, decoded
  std::vector<Entry> entries_;
};

// The host name GELF documents carry ("spanfeed" when it cannot be read).
std::string gelf_hostname();

}  // namespace spanfeed
