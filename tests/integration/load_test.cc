// Many concurrent clients over real HTTP: 2,000 requests on 500 keep-alive
// connections, all in flight together, each must get its own answer; and the
// metrics afterwards must show that the gateway batched them.
#include <chrono>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/prometheus_text.h"
#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

using std::chrono::milliseconds;

constexpr int kRequests = 2'000;
constexpr size_t kConnections = 500;
constexpr std::string_view kKeys[] = {kFreeKey, kPaidKey, kEnterpriseKey};
constexpr std::string_view kTierOfKey[] = {"free", "paid", "enterprise"};

struct Planned {
  std::string input;
  int max_tokens;  // what the server should use (the default when not sent)
};

class LoadTest : public SluiceTest {
 protected:
  void SetUp() override {
    TestConfig config;
    config.devices = 4;
    config.fixed_latency_us = 20'000;
    config.per_item_latency_us = 200;
    config.max_batch_size = 32;
    config.max_batch_delay_us = 10'000;
    config.queue_capacity = 10'000;
    ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  }

  // Distinct inputs of varied length, some with max_tokens, keys in turn.
  void RunLoad() {
    std::vector<LoadRequest> requests;
    for (int i = 0; i < kRequests; ++i) {
      Planned p{"load request " + std::to_string(i) + " " + std::string(i % 37, 'x'),
                kDefaultMaxTokens};
      std::optional<int> sent_max_tokens;
      if (i % 4 == 0) sent_max_tokens = p.max_tokens = 1 + i % 40;
      requests.push_back(InferenceRequest(kKeys[i % 3], p.input, sent_max_tokens));
      planned_.push_back(std::move(p));
    }
    const auto start = std::chrono::steady_clock::now();
    LoadClient load({.port = port(), .connections = kConnections, .timeout = milliseconds(120'000)},
                    std::move(requests));
    load.Start();
    results_ = load.Wait();
    elapsed_ = std::chrono::steady_clock::now() - start;
    ASSERT_EQ(results_.size(), static_cast<size_t>(kRequests));
    // All connections were open before the first request went out.
    EXPECT_EQ(load.connections_open(), kConnections);
  }

  int CountOk() const {
    int ok = 0;
    for (const LoadResult& r : results_) ok += r.status == 200 ? 1 : 0;
    return ok;
  }

  std::vector<Planned> planned_;
  std::vector<LoadResult> results_;
  std::chrono::steady_clock::duration elapsed_{};
};

TEST_F(LoadTest, EveryConcurrentRequestGetsItsOwnAnswer) {
  ASSERT_NO_FATAL_FAILURE(RunLoad());
  int wrong = 0;
  std::set<std::string> ids;
  std::set<std::string> distinct_outputs;
  for (int i = 0; i < kRequests; ++i) {
    const LoadResult& r = results_[i];
    ::testing::AssertionResult ok =
        IsCompletion(r.status, r.body, planned_[i].input, planned_[i].max_tokens);
    if (!ok && ++wrong <= 10) {
      ADD_FAILURE() << "request " << i << ": " << ok.message() << " " << r.error;
    }
    if (ok) {
      boost::json::value v = ParseJsonOrNull(r.body);
      ids.insert(StringField(v, "request_id").value_or(""));
      distinct_outputs.insert(StringField(v, "output").value_or(""));
    }
  }
  EXPECT_EQ(wrong, 0) << "of " << kRequests << " requests";
  EXPECT_EQ(ids.size(), static_cast<size_t>(kRequests - wrong)) << "request ids must be distinct";
  // The check above proves routing only if answers differ from each other.
  EXPECT_GT(distinct_outputs.size(), static_cast<size_t>(kRequests * 9 / 10));
  std::cerr << "[ load ] " << kRequests << " requests on " << kConnections << " connections in "
            << std::chrono::duration_cast<milliseconds>(elapsed_).count() << " ms\n";
}

TEST_F(LoadTest, MetricsShowTheLoadWasBatched) {
  ASSERT_NO_FATAL_FAILURE(RunLoad());
  ASSERT_EQ(CountOk(), kRequests);

  auto client = NewClient();
  Result<Response> r = client->Get("/metrics", {Bearer(kServiceToken)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(r->Header("Content-Type").starts_with("text/plain")) << r->Header("Content-Type");
  std::optional<std::vector<MetricSample>> samples = ParsePrometheusText(r->body);
  ASSERT_TRUE(samples.has_value()) << "not Prometheus text:\n" << r->body;
  const std::map<std::string, std::string> model = {{"model", std::string(kModel)}};

  // Outcomes by tier: exactly what each key sent.
  for (int k = 0; k < 3; ++k) {
    int sent = 0;
    for (int i = k; i < kRequests; i += 3) ++sent;
    std::optional<double> counted = SumSamples(
        *samples, "sluice_requests_total",
        {{"model", std::string(kModel)}, {"tier", std::string(kTierOfKey[k])}, {"status", "200"}});
    EXPECT_EQ(counted, static_cast<double>(sent)) << "tier " << kTierOfKey[k];
  }

  // Batch sizes: every request in exactly one batch, batches larger than 1.
  std::optional<double> sum = SumSamples(*samples, "sluice_batch_size_sum", model);
  std::optional<double> count = SumSamples(*samples, "sluice_batch_size_count", model);
  ASSERT_TRUE(sum && count) << r->body;
  EXPECT_EQ(*sum, static_cast<double>(kRequests));
  ASSERT_GT(*count, 0);
  EXPECT_GT(*sum / *count, 1.0) << "mean batch size; " << *count << " batches";
  std::cerr << "[ load ] " << *count << " batches, mean size " << *sum / *count << "\n";
  std::map<std::string, std::string> inf = model;
  inf["le"] = "+Inf";
  EXPECT_EQ(SumSamples(*samples, "sluice_batch_size_bucket", inf), count);
  std::map<std::string, std::string> le1 = model;
  le1["le"] = "1";
  std::optional<double> singles = SumSamples(*samples, "sluice_batch_size_bucket", le1);
  if (singles) {
    EXPECT_LT(*singles, *count) << "every batch had one item";
  }

  // Gauges and the latency histograms are there for the model.
  EXPECT_EQ(SumSamples(*samples, "sluice_queue_depth", model), 0.0) << "queue after the load";
  std::optional<double> utilization = SumSamples(*samples, "sluice_accelerator_utilization", model);
  ASSERT_TRUE(utilization.has_value()) << r->body;
  EXPECT_GE(*utilization, 0.0);
  EXPECT_LE(*utilization, 1.0);
  for (const char* name :
       {"sluice_request_duration_seconds_bucket", "sluice_queue_wait_seconds_bucket"}) {
    EXPECT_FALSE(FindSamples(*samples, name).empty()) << name << " missing";
  }
  std::optional<double> durations = SumSamples(*samples, "sluice_request_duration_seconds_count");
  ASSERT_TRUE(durations.has_value()) << r->body;
  EXPECT_GE(*durations, static_cast<double>(kRequests));
}

}  // namespace
}  // namespace sluice::testing
