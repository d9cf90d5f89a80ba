// ModelServersTest: the fixture of the integration tests that put real
// `sluice model-server` processes behind the gateway (backend_failures_test,
// reload_test): start them, a config whose model they serve over the
// generic HTTP protocol, their faults, and what the gateway says of them
// (breakers, counters).
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "modelserver/model_server_process.h"
#include "tests/integration/prometheus_text.h"
#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {

using modelserver::testing::ModelServerProcess;

struct ServerSpec {
  int devices = 2;
  int64_t fixed_latency_us = 20'000;
  int64_t per_item_latency_us = 500;
  std::vector<std::string> extra_args;  // faults, e.g. "--hang"
};

struct GatewaySpec {
  int connections_per_endpoint = 2;
  int64_t request_timeout_ms = 2'000;
  int max_retries = 2;
  int consecutive_failures = 3;
  int64_t cooldown_ms = 300;
  int64_t max_cooldown_ms = 0;  // 0: cooldown_ms * 4
};

class ModelServersTest : public SluiceTest {
 protected:
  // Starts one model-server serving kModel; a fatal failure if it does not.
  ModelServerProcess& StartModelServer(const ServerSpec& spec) {
    std::vector<std::string> args = {"--model",
                                     std::string(kModel),
                                     "--model-version",
                                     std::string(kModelVersion),
                                     "--devices",
                                     std::to_string(spec.devices),
                                     "--fixed-latency-us",
                                     std::to_string(spec.fixed_latency_us),
                                     "--per-item-latency-us",
                                     std::to_string(spec.per_item_latency_us),
                                     "--seed",
                                     std::to_string(servers_.size() + 1)};
    args.insert(args.end(), spec.extra_args.begin(), spec.extra_args.end());
    servers_.push_back(std::make_unique<ModelServerProcess>(SLUICE_BINARY, args));
    Status s = servers_.back()->Start();
    EXPECT_TRUE(s.ok()) << s.ToString();
    return *servers_.back();
  }

  // A config whose model is served over the generic HTTP protocol by the
  // model-servers `only` (indexes in start order; empty: every one started
  // so far).
  TestConfig HttpConfig(const GatewaySpec& g, const std::vector<size_t>& only = {}) {
    TestConfig config;
    config.max_batch_size = 32;
    config.max_batch_delay_us = 5'000;
    std::string y = "    backend:\n      kind: http\n      endpoints:\n";
    for (size_t i = 0; i < servers_.size(); ++i) {
      if (only.empty() || std::find(only.begin(), only.end(), i) != only.end()) {
        y += "        - " + Endpoint(i) + "\n";
      }
    }
    y += "      connections_per_endpoint: " + std::to_string(g.connections_per_endpoint) + "\n";
    y += "      connect_timeout_ms: 500\n";
    y += "      request_timeout_ms: " + std::to_string(g.request_timeout_ms) + "\n";
    y += "    retry:\n      max_retries: " + std::to_string(g.max_retries) +
         "\n      initial_backoff_ms: 10\n      max_backoff_ms: 100\n";
    y += "    circuit_breaker:\n      consecutive_failures: " +
         std::to_string(g.consecutive_failures) +
         "\n      cooldown_ms: " + std::to_string(g.cooldown_ms) + "\n      max_cooldown_ms: " +
         std::to_string(g.max_cooldown_ms > 0 ? g.max_cooldown_ms : g.cooldown_ms * 4) + "\n";
    config.backend_yaml = y;
    return config;
  }

  // The gateway's endpoint URL of model-server `index`.
  std::string Endpoint(size_t index) const { return servers_[index]->url() + "/v1/batch"; }

  // POST /admin/faults on model-server `index`.
  void SetFaults(size_t index, const std::string& json) {
    HttpClient admin(servers_[index]->port());
    auto r = admin.Post("/admin/faults", json, {{"Content-Type", "application/json"}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->status, 200) << r->body;
  }

  std::vector<MetricSample> Samples(HttpClient& client) {
    std::optional<std::string> text = Metrics(client);
    EXPECT_TRUE(text.has_value());
    return ParsePrometheusText(text.value_or("")).value_or(std::vector<MetricSample>{});
  }

  double Counter(HttpClient& client, std::string_view name,
                 std::map<std::string, std::string> match = {}) {
    match.emplace("model", std::string(kModel));
    return SumSamples(Samples(client), name, match).value_or(0);
  }

  // The breaker state of `endpoint` (a URL) in /internal/health, or "".
  std::string BreakerOf(HttpClient& client, const std::string& endpoint) {
    boost::json::value m = ModelHealth(Health(client));
    if (!m.is_object()) return "";
    const boost::json::value* list = m.as_object().if_contains("endpoints");
    if (list == nullptr || !list->is_array()) return "";
    for (const auto& e : list->as_array()) {
      if (StringField(e, "name") == endpoint) return StringField(e, "breaker").value_or("");
    }
    return "";
  }

  // How many of `results` (answers to Requests(n, prefix)) are their
  // request's completion; a test failure for each that is not (the first
  // few only: one message is enough when everything fails).
  size_t Completions(const std::vector<LoadResult>& results, const std::string& prefix) {
    size_t ok = 0;
    for (size_t i = 0; i < results.size(); ++i) {
      EXPECT_TRUE(IsCompletion(results[i].status, results[i].body, prefix + std::to_string(i),
                               kDefaultMaxTokens))
          << "request " << i << ": " << results[i].status << " " << results[i].body
          << results[i].error;
      ok += results[i].status == 200;
      if (ok + 5 < i) break;
    }
    return ok;
  }

  std::vector<LoadRequest> Requests(size_t n, const std::string& prefix) {
    std::vector<LoadRequest> requests;
    for (size_t i = 0; i < n; ++i) {
      requests.push_back(InferenceRequest(kPaidKey, prefix + std::to_string(i)));
    }
    return requests;
  }

  std::vector<std::unique_ptr<ModelServerProcess>> servers_;
};

}  // namespace sluice::testing
