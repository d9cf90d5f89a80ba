// The scheduler's rules together, over real HTTP against the real binary
// on the bundled model's cost (4 simulated devices, 34 ms + 0.5 ms/item):
// one client's deadline never changes another's outcome or the devices'
// health, and a lone request is not held back for company.
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json/serialize.hpp>

#include "tests/integration/paced_load.h"
#include "tests/integration/prometheus_text.h"
#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

using std::chrono::milliseconds;

// The bundled config's scheduling: tier budgets 400 / 800 / 1500 ms,
// admission on, adaptive batching with a 20 ms upper bound.
TestConfig BundledLike() {
  TestConfig config;
  config.admission = true;
  config.max_queue_age_ms = 2'000;
  config.total_timeout_ms = 4'000;
  config.enterprise_tier = {.latency_budget_ms = 400, .max_queue_depth = 0};
  config.paid_tier = {.latency_budget_ms = 800, .max_queue_depth = 500};
  config.free_tier = {.latency_budget_ms = 1'500, .max_queue_depth = 100};
  return config;
}

class SchedulerRulesTest : public SluiceTest {};

TEST_F(SchedulerRulesTest, AClientDeadlineShorterThanAnyBatchIsRefusedAndHarmsNobody) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(BundledLike()));
  auto client = NewClient();
  // The refusal names the header and the fastest batch; nothing is queued.
  Result<Response> r = client->Post("/v1/inference", InferenceBody(kModel, "too hurried"),
                                    {Bearer(kFreeKey), {"X-Request-Timeout-Ms", "5"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(IsError(*r, 400, "invalid_request"));
  EXPECT_EQ(ErrorMessage(r->body),
            "X-Request-Timeout-Ms: 5 ms is shorter than the fastest batch of model '" +
                std::string(kModel) + "' (34 ms)");

  // A free client sending 5 ms and 40 ms deadlines all along, while an
  // enterprise client sends normal traffic: every enterprise request is
  // served, and no breaker opens (the issue measured 40 of 5,575 before).
  PacedLoadOptions load;
  load.port = port();
  load.rate_rps = 400;
  load.duration = milliseconds(3'000);
  std::vector<PacedResult> results = RunPacedLoad(load, [](size_t i) {
    if (i % 4 == 0) {
      return InferenceRequest(kEnterpriseKey, "enterprise #" + std::to_string(i));
    }
    const char* deadline = i % 2 == 0 ? "5" : "40";  // shorter than any batch / than a full one
    return InferenceRequest(kFreeKey, "hostile #" + std::to_string(i), std::nullopt,
                            {{"X-Request-Timeout-Ms", deadline}});
  });
  size_t enterprise = 0, enterprise_ok = 0, hostile_400 = 0, hostile_5ms = 0, hostile_other = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    const LoadResult& res = results[i].result;
    if (i % 4 == 0) {
      ++enterprise;
      enterprise_ok += res.status == 200;
      EXPECT_TRUE(
          IsCompletion(res.status, res.body, "enterprise #" + std::to_string(i), kDefaultMaxTokens))
          << res.status << " " << res.body << res.error;
    } else if (i % 2 == 0) {
      ++hostile_5ms;
      hostile_400 += res.status == 400;
    } else {
      // 40 ms: shorter than a full batch: refused at once, served, or 504 alone.
      hostile_other += res.status != 200 && res.status != 503 && res.status != 504;
    }
  }
  std::cerr << "[ hostile ] enterprise " << enterprise_ok << "/" << enterprise << " ok; 5 ms "
            << hostile_400 << "/" << hostile_5ms << " refused 400\n";
  ASSERT_GT(enterprise, 200u);
  EXPECT_EQ(enterprise_ok, enterprise);
  EXPECT_EQ(hostile_400, hostile_5ms);
  EXPECT_EQ(hostile_other, 0u);

  std::optional<std::string> text = Metrics(*client);
  ASSERT_TRUE(text.has_value());
  std::vector<MetricSample> samples =
      ParsePrometheusText(*text).value_or(std::vector<MetricSample>{});
  EXPECT_EQ(
      SumSamples(samples, "sluice_circuit_breaker_opened_total", {{"model", std::string(kModel)}})
          .value_or(0),
      0.0);
  EXPECT_EQ(SumSamples(samples, "sluice_batches_total",
                       {{"model", std::string(kModel)}, {"outcome", "failed"}})
                .value_or(0),
            0.0);
  boost::json::value m = ModelHealth(Health(*client));
  EXPECT_EQ(NumberField(m, "healthy_devices"), 4.0) << boost::json::serialize(m);
}

TEST_F(SchedulerRulesTest, ALoneRequestIsDispatchedWithoutWaitingForCompany) {
  TestConfig config = BundledLike();
  config.max_batch_delay_us = 200'000;  // static batching would hold each request 200 ms
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  auto client = NewClient();
  // One request at a time: each is a batch of one (adaptive batching), so
  // it does not wait in the queue for the 200 ms bound.
  for (int i = 0; i < 10; ++i) {
    Result<Response> r = client->Post(
        "/v1/inference", InferenceBody(kModel, "alone #" + std::to_string(i)), {Bearer(kPaidKey)});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->status, 200) << r->body;
    // Server-Timing: queue;dur=Q, ...: the queue wait is far below the bound.
    const std::string timing = r->Header("Server-Timing");
    const size_t at = timing.find("queue;dur=");
    ASSERT_NE(at, std::string::npos) << timing;
    const double queue_ms = std::stod(timing.substr(at + 10));
    EXPECT_LT(queue_ms, 100.0) << "a lone request waited for company: " << timing;
  }
  std::optional<std::string> text = Metrics(*client);
  ASSERT_TRUE(text.has_value());
  std::vector<MetricSample> samples =
      ParsePrometheusText(*text).value_or(std::vector<MetricSample>{});
  // Ten batches of one.
  EXPECT_EQ(SumSamples(samples, "sluice_batch_size_count", {{"model", std::string(kModel)}}), 10.0);
  EXPECT_EQ(SumSamples(samples, "sluice_batch_size_sum", {{"model", std::string(kModel)}}), 10.0);
}

}  // namespace
}  // namespace sluice::testing
