// spanfeed-kafka-mock: an embedded Kafka broker for demos and tests, built on
// librdkafka's mock cluster (rdkafka_mock.h), which speaks the real Kafka
// protocol on loopback ports. Prints the bootstrap address, then serves until
// SIGINT/SIGTERM. SIGUSR1 takes every broker down, SIGUSR2 brings them back
// (for outage tests). Single process, allocates freely.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {
std::atomic<int> g_signal{0};
void on_signal(int sig) { g_signal.store(sig); }
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"spanfeed-kafka-mock: a Kafka broker on loopback (librdkafka mock cluster) for "
               "demos and tests. Prints bootstrap=HOST:PORT,... and serves until SIGINT/SIGTERM; "
               "SIGUSR1 = all brokers down, SIGUSR2 = back up.",
               "spanfeed-kafka-mock"};
  int brokers = 1;
  std::vector<std::string> topics;
  int partitions = 4;
  std::string bootstrap_file;
  app.add_option("--brokers", brokers, "Brokers in the cluster (default 1)")->check(CLI::Range(1, 9));
  app.add_option("--topic", topics, "Create this topic up front (repeatable)");
  app.add_option("--partitions", partitions, "Partitions per created topic (default 4)")
      ->check(CLI::Range(1, 64));
  app.add_option("--bootstrap-file", bootstrap_file, "Also write the bootstrap address here");
  CLI11_PARSE(app, argc, argv);

  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (rk == nullptr) {
    std::fprintf(stderr, "spanfeed-kafka-mock: %s\n", err);
    return 1;
  }
  rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (mc == nullptr) {
    std::fprintf(stderr, "spanfeed-kafka-mock: cannot create the mock cluster\n");
    return 1;
  }
  for (const auto& t : topics) {
    if (rd_kafka_mock_topic_create(mc, t.c_str(), partitions, 1) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::fprintf(stderr, "spanfeed-kafka-mock: cannot create topic %s\n", t.c_str());
      return 1;
    }
  }
  std::string bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
  std::printf("bootstrap=%s\n", bootstrap.c_str());
  std::fflush(stdout);
  if (!bootstrap_file.empty()) {
    std::ofstream(bootstrap_file + ".tmp") << bootstrap << "\n";
    std::rename((bootstrap_file + ".tmp").c_str(), bootstrap_file.c_str());
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGUSR1, on_signal);
  std::signal(SIGUSR2, on_signal);
  while (true) {
    int sig = g_signal.exchange(0);
    if (sig == SIGINT || sig == SIGTERM) break;
    if (sig == SIGUSR1 || sig == SIGUSR2) {
      for (int b = 1; b <= brokers; ++b) {
        if (sig == SIGUSR1) rd_kafka_mock_broker_set_down(mc, b);
        else rd_kafka_mock_broker_set_up(mc, b);
      }
      std::fprintf(stderr, "spanfeed-kafka-mock: brokers %s\n", sig == SIGUSR1 ? "down" : "up");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}
