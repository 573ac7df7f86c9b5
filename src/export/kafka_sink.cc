// Kafka sink over librdkafka (the only file that includes it): one message
// per record, keyed by connection, delivery reports counted. Runs on the
// exporter thread; librdkafka copies each message (RD_KAFKA_MSG_F_COPY).
// Header lists are recycled (taken back at delivery), so after warm-up a
// record costs librdkafka's one message allocation instead of six.
#include <librdkafka/rdkafka.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "export/export.h"
#include "spanfeed/record.h"

namespace spanfeed {
namespace {

constexpr int kWaitPollMs = 10;  // offline: how long to serve reports before retrying a full queue
constexpr int kFlushStepMs = 100;  // offline close: flush in steps, to see stop requests
constexpr std::string_view kContentType = "application/json";
// Offline, messages held by librdkafka at once (its queue.buffering.max.messages,
// 100,000 by default). A full queue only means waiting there, so a deep one buys
// nothing but memory: 100,000 queued records (~70 MB) fall out of the CPU's
// caches, and every record then costs ~1.6x the CPU (bench_export on 2 cores:
// 0.95 M -> 1.53 M records/s). 16,384 still keeps a loopback broker busy
// (5,000 starved it: linger.ms plus a round trip of records must fit).
constexpr std::string_view kLosslessQueuedMessages = "16384";

// The sink's defaults; the config's kafka.* properties come after them and win.
std::vector<std::pair<std::string, std::string>> default_properties(const std::string& brokers) {
  return {
      {"bootstrap.servers", brokers},
      {"enable.idempotence", "true"},  // no duplicates on retry, order kept per partition
      {"linger.ms", "5"},              // batch messages for up to 5 ms
      {"compression.type", "lz4"},
      {"client.id", "spanfeed"},
  };
}

// Sets every property on `conf`; "" or the first one librdkafka refuses.
std::string set_properties(rd_kafka_conf_t* conf,
                           const std::vector<std::pair<std::string, std::string>>& all) {
  char err[512];
  for (const auto& [k, v] : all) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      return "kafka property " + k + "=" + v + ": " + err;
    }
  }
  return "";
}

class KafkaSink final : public Sink {
 public:
  ~KafkaSink() override { destroy(); }

  bool init(const std::string& target,
            const std::vector<std::pair<std::string, std::string>>& props, double flush_timeout_s,
            CapturePolicy policy, std::string& error) {
    flush_timeout_ms_ = static_cast<int>(flush_timeout_s * 1000);
    auto slash = target.rfind('/');
    std::string brokers = target.substr(0, slash);
    std::string topic = target.substr(slash + 1);
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    auto all = default_properties(brokers);
    // A lossless run gives up on no message: no per-message timeout, and a
    // queue no deeper than keeps the broker busy (the config's kafka.*
    // properties, inserted after, may still set either).
    if (policy.deliver_without_timeout()) {
      all.push_back({"message.timeout.ms", "0"});
      all.push_back({"queue.buffering.max.messages", std::string(kLosslessQueuedMessages)});
    }
    all.insert(all.end(), props.begin(), props.end());
    error = set_properties(conf, all);
    if (!error.empty()) {
      rd_kafka_conf_destroy(conf);
      return false;
    }
    // Spare header lists: never more than the messages librdkafka may hold
    // (~350 bytes each, next to each message's own ~650).
    char max_msgs[32];
    size_t max_msgs_size = sizeof(max_msgs);
    if (rd_kafka_conf_get(conf, "queue.buffering.max.messages", max_msgs, &max_msgs_size) == RD_KAFKA_CONF_OK) {
      max_spare_headers_ = std::strtoull(max_msgs, nullptr, 10);
    }
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_dr_msg_cb(conf, &KafkaSink::on_delivery);
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk_ == nullptr) {  // on failure the conf is still ours
      error = std::string("kafka producer: ") + err;
      rd_kafka_conf_destroy(conf);
      return false;
    }
    // One topic, or one per protocol when the name has {protocol}.
    const std::string tag = "{protocol}";
    auto pos = topic.find(tag);
    for (size_t p = 0; p < kProtocolCount; ++p) {
      std::string name = topic;
      if (pos != std::string::npos) {
        name.replace(pos, tag.size(), std::string(to_string(static_cast<Protocol>(p))));
      } else if (p > 0) {
        topics_[p] = topics_[0];
        continue;
      }
      topics_[p] = rd_kafka_topic_new(rk_, name.c_str(), nullptr);
      if (topics_[p] == nullptr) {
        error = "kafka topic '" + name + "': " + rd_kafka_err2str(rd_kafka_last_error());
        return false;
      }
    }
    per_protocol_ = pos != std::string::npos;
    return true;
  }

  void write(const RecordBatch& b, SinkCounters& c, bool wait) override {
    c_ = &c;
    size_t start = 0;
    for (const RecordRef& r : b.refs) {
      const char* value = b.data.data() + start;
      size_t len = r.end - start;
      if (len > 0 && value[len - 1] == '\n') --len;  // a Kafka message is the object itself
      start = r.end;
      rd_kafka_topic_t* t = topics_[per_protocol_ ? r.protocol : 0];
      char key[8];  // the connection key as 8 hex digits: readable, same partition per connection
      static constexpr char kHex[] = "0123456789abcdef";
      for (int i = 0; i < 8; ++i) key[i] = kHex[(r.key >> (28 - 4 * i)) & 0xF];
      // Headers let a consumer route and validate without parsing the value.
      rd_kafka_headers_t* h = take_headers(r.protocol);
      // One call with an argument array (rd_kafka_produceva): what producev
      // does without walking a va_list per record.
      rd_kafka_vu_t vu[7];
      vu[0].vtype = RD_KAFKA_VTYPE_RKT;
      vu[0].u.rkt = t;
      vu[1].vtype = RD_KAFKA_VTYPE_PARTITION;
      vu[1].u.i32 = RD_KAFKA_PARTITION_UA;
      vu[2].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
      vu[2].u.i = RD_KAFKA_MSG_F_COPY;
      vu[3].vtype = RD_KAFKA_VTYPE_VALUE;
      vu[3].u.mem = {const_cast<char*>(value), len};
      vu[4].vtype = RD_KAFKA_VTYPE_KEY;
      vu[4].u.mem = {key, sizeof(key)};
      vu[5].vtype = RD_KAFKA_VTYPE_HEADERS;
      vu[5].u.headers = h;
      // The opaque is the protocol: the delivery report returns the header
      // list to that protocol's spares.
      vu[6].vtype = RD_KAFKA_VTYPE_OPAQUE;
      vu[6].u.ptr = reinterpret_cast<void*>(uintptr_t{r.protocol});
      while (true) {
        rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (rd_kafka_error_t* error = rd_kafka_produceva(rk_, vu, std::size(vu))) {
          e = rd_kafka_error_code(error);
          rd_kafka_error_destroy(error);
        }
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {  // the message owns h now
          c.queued.add(1);
          break;
        }
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL && wait && !policy_.abandoned()) {
          // Broker slow or down: wait, lose nothing (until a second signal).
          waited(c, [&] { rd_kafka_poll(rk_, kWaitPollMs); });
          continue;
        }
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL && wait) {
          c.failed.add(1);  // offline, a second signal ended the wait
          ++reasons_["abandoned"];
        } else if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
          c.dropped.add(1);  // live: the producer's buffer bound is reached
        } else {
          c.failed.add(1);
          ++reasons_[rd_kafka_err2name(e)];
        }
        give_back_headers(r.protocol, h);  // a failed produceva leaves h with us
        break;
      }
    }
    c.waiting_for_broker = 0;
    rd_kafka_poll(rk_, 0);
  }

  void poll(SinkCounters& c) override {
    c_ = &c;
    rd_kafka_poll(rk_, 0);
  }

  void close(SinkCounters& c) override {
    c_ = &c;
    if (rk_ == nullptr) return;
    if (!policy_.capture.wait_for_sinks()) {
      rd_kafka_flush(rk_, flush_timeout_ms_);
    } else {
      // Offline loses nothing: wait as long as the broker is away. A stop
      // request (first signal) leaves flush_timeout_s more; a second signal
      // ends the wait now.
      bool deadline_set = false;
      std::chrono::steady_clock::time_point deadline;
      while (rd_kafka_outq_len(rk_) > 0 && !policy_.abandoned()) {
        if (policy_.stop_requested()) {
          auto now = std::chrono::steady_clock::now();
          if (!deadline_set) {
            deadline = now + std::chrono::milliseconds(flush_timeout_ms_);
            deadline_set = true;
          } else if (now >= deadline) {
            break;
          }
        }
        waited(c, [&] { rd_kafka_flush(rk_, kFlushStepMs); });
      }
      c.waiting_for_broker = 0;
    }
    // Whatever is still queued after the wait: purge it, and its delivery
    // reports (counted as failed, reason _PURGE_*) say so.
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    for (int i = 0; i < 50 && c.queued.get() > 0; ++i) rd_kafka_poll(rk_, 20);
    destroy();
  }

  std::vector<std::pair<std::string, uint64_t>> failure_reasons() const override {
    return {reasons_.begin(), reasons_.end()};
  }

 private:
  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<KafkaSink*>(opaque);
    SinkCounters& c = *self->c_;
    --c.queued;
    // Delivered or failed, librdkafka is done with the message: its header
    // list goes back to the spares instead of being freed with it.
    rd_kafka_headers_t* h = nullptr;
    const auto protocol = static_cast<uint8_t>(reinterpret_cast<uintptr_t>(m->_private));
    if (protocol < kProtocolCount &&
        rd_kafka_message_detach_headers(const_cast<rd_kafka_message_t*>(m), &h) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      self->give_back_headers(protocol, h);
    }
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      c.delivered.add(1);
    } else {
      c.failed.add(1);
      ++self->reasons_[rd_kafka_err2name(m->err)];
    }
  }

  // A header list for a record of `protocol`: a spare one, or a new one
  // (protocol, content-type, schema_version).
  rd_kafka_headers_t* take_headers(uint8_t protocol) {
    auto& spares = spare_headers_[protocol];
    if (!spares.empty()) {
      rd_kafka_headers_t* h = spares.back();
      spares.pop_back();
      --spare_count_;
      return h;
    }
    const std::string_view proto = to_string(static_cast<Protocol>(protocol));
    rd_kafka_headers_t* h = rd_kafka_headers_new(3);
    rd_kafka_header_add(h, "protocol", 8, proto.data(), ssize_t(proto.size()));
    rd_kafka_header_add(h, "content-type", 12, kContentType.data(), ssize_t(kContentType.size()));
    rd_kafka_header_add(h, "schema_version", 14, kRecordSchemaVersion.data(),
                        ssize_t(kRecordSchemaVersion.size()));
    return h;
  }

  void give_back_headers(uint8_t protocol, rd_kafka_headers_t* h) {
    if (spare_count_ >= max_spare_headers_) {
      rd_kafka_headers_destroy(h);
      return;
    }
    spare_headers_[protocol].push_back(h);
    ++spare_count_;
  }

  // Runs `step` (a poll or flush that waits on the broker) and accounts the
  // time as waiting for the broker.
  template <typename Step>
  void waited(SinkCounters& c, Step step) {
    c.waiting_for_broker = 1;
    auto t0 = std::chrono::steady_clock::now();
    step();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - t0);
    c.broker_wait_ms.add(static_cast<uint64_t>(ms.count()));
  }

  void destroy() {
    if (rk_ == nullptr) return;
    rd_kafka_topic_t* shared = topics_[0];
    for (size_t p = 0; p < kProtocolCount; ++p) {
      // Without {protocol} every entry aliases the first handle: destroy it once.
      if (topics_[p] != nullptr && (p == 0 || topics_[p] != shared)) {
        rd_kafka_topic_destroy(topics_[p]);
      }
      topics_[p] = nullptr;
    }
    rd_kafka_destroy(rk_);
    rk_ = nullptr;
    for (auto& spares : spare_headers_) {
      for (rd_kafka_headers_t* h : spares) rd_kafka_headers_destroy(h);
      spares.clear();
    }
    spare_count_ = 0;
  }

  rd_kafka_t* rk_ = nullptr;
  std::array<rd_kafka_topic_t*, kProtocolCount> topics_{};
  bool per_protocol_ = false;
  int flush_timeout_ms_ = 10000;
  SinkCounters* c_ = nullptr;
  std::map<std::string, uint64_t> reasons_;
  // Header lists back from delivery reports, per protocol (the protocol
  // header's value differs), at most max_spare_headers_ in all.
  std::array<std::vector<rd_kafka_headers_t*>, kProtocolCount> spare_headers_;
  size_t spare_count_ = 0;
  size_t max_spare_headers_ = 100000;  // queue.buffering.max.messages
};

}  // namespace

std::string validate_kafka_properties(
    const std::vector<std::pair<std::string, std::string>>& props) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // Without brokers: the producer built below must not connect anywhere.
  auto all = default_properties("");
  all.erase(all.begin());
  all.insert(all.end(), props.begin(), props.end());
  std::string error = set_properties(conf, all);
  if (!error.empty()) {
    rd_kafka_conf_destroy(conf);
    return error;
  }
  // Some rules only hold between properties (acks with idempotence, ...):
  // librdkafka checks those when the producer is created.
  rd_kafka_conf_set_log_cb(conf, [](const rd_kafka_t*, int, const char*, const char*) {});
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return std::string("kafka properties: ") + err;
  }
  rd_kafka_destroy(rk);
  return "";
}

std::unique_ptr<Sink> make_kafka_sink(const std::string& target,
                                      const std::vector<std::pair<std::string, std::string>>& props,
                                      double flush_timeout_s, CapturePolicy policy,
                                      std::string& error) {
  auto s = std::make_unique<KafkaSink>();
  if (!s->init(target, props, flush_timeout_s, policy, error)) return nullptr;
  return s;
}

}  // namespace spanfeed
