// ScaleOutTest: a real redis-server per test, and helpers to start
// `sluice worker` / `sluice gateway` processes on loopback and read their
// metrics (scale_out_test.cc, scale_out_parity_test.cc).
#pragma once

#include <csignal>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include "modelserver/model_server_process.h"
#include "redis/connection.h"
#include "testing/postgres_server.h"
#include "testing/redis_server.h"
#include "tests/integration/sluice_fixture.h"

namespace sluice::testing::scale_out {

namespace asio = boost::asio;
namespace json = boost::json;
using std::chrono::milliseconds;

inline const Headers kServiceAuth = {{"Authorization", "Bearer " + std::string(kServiceToken)}};

class ScaleOutTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(redis_.Start().ok()) << "redis-server did not start"; }

  // The test config plus the `redis:` section for this test's server.
  std::string Yaml(const TestConfig& c, int64_t lease_ms = 2'000) const {
    std::ostringstream y;
    y << c.Yaml() << "redis:\n"
      << "  host: 127.0.0.1\n"
      << "  port: " << redis_.port() << "\n"
      << "  key_prefix: it\n"
      << "  command_timeout_ms: 500\n"
      << "  lease_ms: " << lease_ms << "\n"
      << "  heartbeat_ttl_ms: 1500\n";
    return y.str();
  }

  // Starts `sluice <role>`; a fatal failure when it does not come up.
  SluiceProcess* Start(const std::string& role, const std::string& yaml) {
    SluiceProcessOptions o;
    o.binary_path = SLUICE_BINARY;
    o.subcommand = role;
    o.config_yaml = yaml;
    procs_.push_back(std::make_unique<SluiceProcess>(o));
    Status s = procs_.back()->Start();
    EXPECT_TRUE(s.ok()) << role << ": " << s.message();
    return s.ok() ? procs_.back().get() : nullptr;
  }

  // Starts `workers` workers and `gateways` gateways; returns the gateways'
  // ports once each sees every worker in the registry.
  std::vector<uint16_t> StartCluster(const std::string& yaml, int workers, int gateways) {
    for (int i = 0; i < workers; ++i) {
      if (Start("worker", yaml) == nullptr) return {};
    }
    std::vector<uint16_t> ports;
    for (int i = 0; i < gateways; ++i) {
      SluiceProcess* g = Start("gateway", yaml);
      if (g == nullptr) return {};
      ports.push_back(g->port());
      EXPECT_TRUE(PollUntil([&] { return HealthyWorkers(g->port()) == workers; },
                            milliseconds(10'000), milliseconds(50)))
          << "gateway never saw " << workers << " workers";
    }
    return ports;
  }

  static int64_t HealthyWorkers(uint16_t port) {
    HttpClient client(port, milliseconds(2'000));
    Result<Response> r = client.Get("/internal/health", kServiceAuth);
    if (!r.ok()) return -1;
    boost::system::error_code ec;
    json::value v = json::parse(r->body, ec);
    if (ec || !v.is_object() || !v.as_object().contains("healthy_workers")) return -1;
    return v.as_object().at("healthy_workers").to_number<int64_t>();
  }

  // Redis's INFO commandstats as name -> calls.
  std::map<std::string, int64_t> CommandStats() {
    redis::RedisConnection::Options o;
    o.port = redis_.port();
    auto c = redis::RedisConnection::Create(o);
    std::map<std::string, int64_t> out;
    if (!c.ok()) return out;
    redis::ReplyResult r = (*c)->Call({"INFO", "commandstats"});
    if (!r.ok()) return out;
    std::istringstream in(r->str);
    std::string line;
    while (std::getline(in, line)) {
      // cmdstat_evalsha:calls=123,usec=...
      if (line.rfind("cmdstat_", 0) != 0) continue;
      size_t colon = line.find(':'), calls = line.find("calls=");
      if (colon == std::string::npos || calls == std::string::npos) continue;
      out[line.substr(8, colon - 8)] = std::stoll(line.substr(calls + 6));
    }
    return out;
  }
  // Runs `command` on the test's Redis; false on any error.
  bool RedisDo(std::vector<std::string> command) {
    redis::RedisConnection::Options o;
    o.port = redis_.port();
    auto c = redis::RedisConnection::Create(o);
    if (!c.ok()) return false;
    redis::ReplyResult r = (*c)->Call(std::move(command));
    return r.ok() && !r->is_error();
  }
  void ResetCommandStats() {
    redis::RedisConnection::Options o;
    o.port = redis_.port();
    auto c = redis::RedisConnection::Create(o);
    if (c.ok()) (void)(*c)->Call({"CONFIG", "RESETSTAT"});
  }

  RedisServer redis_;
  std::vector<std::unique_ptr<SluiceProcess>> procs_;
};

// A fast simulated accelerator: 2 devices per worker, 5 ms + 0.1 ms/item.
inline TestConfig FastSim() {
  TestConfig c;
  c.devices = 2;
  c.fixed_latency_us = 5'000;
  c.per_item_latency_us = 100;
  c.max_batch_delay_us = 5'000;
  return c;
}

inline std::vector<LoadRequest> Requests(const std::string& prefix, size_t n,
                                         std::string_view key = kEnterpriseKey) {
  std::vector<LoadRequest> out;
  for (size_t i = 0; i < n; ++i) out.push_back(InferenceRequest(key, prefix + std::to_string(i)));
  return out;
}

// 100 free-key requests through each of two gateways at once; every 429 is
// checked (body, Retry-After, the limit's header). Returns {200s, 429s}.
inline std::pair<int, int> FreeKeyBurstOverTwoGateways(const std::vector<uint16_t>& gw,
                                                       int64_t requests_per_minute) {
  LoadClient a({gw[0], 4, milliseconds(30'000)}, Requests("r-", 100, kFreeKey));
  LoadClient b({gw[1], 4, milliseconds(30'000)}, Requests("r-", 100, kFreeKey));
  a.Start();
  b.Start();
  std::vector<LoadResult> ra = a.Wait(), rb = b.Wait();
  int ok = 0, limited = 0;
  for (const auto* results : {&ra, &rb}) {
    for (const LoadResult& r : *results) {
      if (r.status == 200) ++ok;
      if (r.status == 429) {
        ++limited;
        EXPECT_TRUE(IsError(r.status, r.body, 429, "rate_limited")) << r.body;
        EXPECT_TRUE(r.headers.count("retry-after")) << "429 without Retry-After";
        EXPECT_EQ(r.headers.count("x-ratelimit-limit") ? r.headers.at("x-ratelimit-limit") : "",
                  std::to_string(requests_per_minute));
      }
    }
  }
  return {ok, limited};
}

// Sum of `name` over /metrics of a gateway (or a worker).
inline double GatewayMetric(uint16_t port, const std::string& name) {
  HttpClient client(port, milliseconds(2'000));
  Result<Response> r = client.Get("/metrics", kServiceAuth);
  if (!r.ok()) return -1;
  double sum = 0;
  std::istringstream in(r->body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) == 0 && line.size() > name.size() &&
        (line[name.size()] == '{' || line[name.size()] == ' ')) {
      sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return sum;
}

}  // namespace sluice::testing::scale_out
