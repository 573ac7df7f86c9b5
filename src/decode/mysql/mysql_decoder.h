// The MySQL decoder class, internal to src/decode/mysql/: one worker's decoder, its members defined across
// mysql.cc (entry points, detection, resync), handshake.cc, compression.cc, commands.cc and responses.cc.
// Runs on a worker lcore; allocates only in the constructor (statement table, inflate contexts, their windows).
#pragma once

#include <zlib.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "mysql_wire.h"
#include "statement_cache.h"
#include "text_memo.h"

#include "spanfeed/decoder.h"
#include "decode/inflate.h"

namespace spanfeed::mysql {

class MysqlDecoder final : public Decoder {
 public:
  explicit MysqlDecoder(const DecodeConfig& cfg);
  ~MysqlDecoder() override;

  Protocol protocol() const override { return Protocol::kMysql; }
  static SniffResult sniff(std::span<const std::byte> chunk, Transport t);

  void open(FlowContext& ctx, uint64_t ts) override;
  void data(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts) override;
  void gap(FlowContext& ctx, Direction dir, uint64_t missing, uint64_t ts) override;
  void fin(FlowContext& ctx, Direction dir, uint64_t ts) override;
  void close(FlowContext& ctx, uint64_t ts) override;

 private:
  // mysql.cc: side bookkeeping, detection (Mode::kUnknown) and resync (framing lost).
  static void reset_side(Side& sd);
  void release_z(Side& sd);
  bool detect(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes);
  bool resync(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes);

  // handshake.cc: the connection phase, whole packets.
  bool handshake(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes, uint64_t ts);
  void close_request(FlowContext& ctx, State& st, uint64_t ts);
  void lost_handshake(FlowContext& ctx, State& st, std::span<const std::byte>& bytes);
  void server_handshake_packet(FlowContext& ctx, State& st, const uint8_t* p, size_t n, uint64_t end, uint64_t ts);
  void login_packet(FlowContext& ctx, State& st, const uint8_t* p, size_t n, uint64_t end, uint64_t ts);

  // compression.cc: the compressed protocol.
  void compressed(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes, uint64_t ts);
  void lose_sync(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes);

  // commands.cc: the packet layer (command phase) and client commands.
  void feed(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte> bytes, uint64_t ts, uint64_t off0,
            bool exact, uint64_t off_end);
  void stream_text(Side& sd, const uint8_t* q, size_t k);
  void end_physical(FlowContext& ctx, State& st, Direction dir, uint64_t end, uint64_t ts);
  void first_byte(FlowContext& ctx, State& st, Direction dir, uint8_t b, uint64_t ts);
  uint8_t pending_command(FlowContext& ctx);
  void end_request_packet(FlowContext& ctx, State& st, uint64_t end, uint64_t ts);
  void add_normalized(FieldList& f, std::string_view text);

  // responses.cc: server responses and prepared-statement answers.
  static void ok_fields(FieldList& f, const uint8_t* p, size_t n);
  static uint16_t ok_status(const uint8_t* p, size_t n);
  static void err_fields(FieldList& f, const uint8_t* p, size_t n);
  void end_response_packet(FlowContext& ctx, State& st, uint64_t end, uint64_t ts);
  void end_rows(FlowContext& ctx, State& st, uint64_t ts);
  void finish_response(FlowContext& ctx, State& st, uint64_t ts, RecordStatus status);
  void finish_lazy(FlowContext& ctx, State& st);
  void end_response(FlowContext& ctx, State& st, uint64_t ts);
  void cut_response(FlowContext& ctx, State& st);
  void drop_response(FlowContext& ctx, State& st);
  void remember_stmt(FlowContext& ctx, uint32_t gen, uint32_t id);

  bool redact_;
  uint32_t gen_ = 0;
  db::StatementCache stmts_;  // statement id -> normalized SQL, per flow generation
  TextMemo normalized_{kNormalizedMemo};  // statement text -> normalized text (db::normalize_sql)
  InflatePool inflaters_;  // compressed packets being inflated (compression.cc)
};

}  // namespace spanfeed::mysql
