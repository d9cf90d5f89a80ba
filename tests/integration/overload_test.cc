// Overload over real HTTP: a full queue answers 503 at once with Retry-After;
// requests whose deadline passes in the queue get 504; a client deadline can
// shorten the tier's budget but never lengthen it.
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json/serialize.hpp>

#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

using std::chrono::milliseconds;

// One simulated device that takes `latency_ms` per single-item batch.
TestConfig SlowSingleDevice(int64_t latency_ms) {
  TestConfig config;
  config.devices = 1;
  config.max_batch_size = 1;
  config.max_batch_delay_us = 1'000;
  config.fixed_latency_us = latency_ms * 1'000;
  config.per_item_latency_us = 0;
  return config;
}

std::vector<LoadRequest> DistinctRequests(int n, std::string_view key, Headers extra = {}) {
  std::vector<LoadRequest> requests;
  for (int i = 0; i < n; ++i) {
    requests.push_back(
        InferenceRequest(key, "overload #" + std::to_string(i), std::nullopt, extra));
  }
  return requests;
}

class OverloadTest : public SluiceTest {};

TEST_F(OverloadTest, FullQueueAnswers503WithRetryAfterAtOnce) {
  constexpr int64_t kLatencyMs = 300;
  TestConfig config = SlowSingleDevice(kLatencyMs);
  config.queue_capacity = 2;
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));

  constexpr int kRequests = 20;
  std::vector<LoadRequest> requests = DistinctRequests(kRequests, kPaidKey);
  std::vector<LoadResult> results = LoadClient::Run(
      {.port = port(), .connections = kRequests, .timeout = milliseconds(30'000)}, requests);
  ASSERT_EQ(results.size(), static_cast<size_t>(kRequests));

  int ok = 0;
  std::vector<int64_t> rejected_latency_ms;
  for (int i = 0; i < kRequests; ++i) {
    const LoadResult& r = results[i];
    SCOPED_TRACE("request " + std::to_string(i));
    if (r.status == 200) {
      ++ok;
      EXPECT_TRUE(
          IsCompletion(r.status, r.body, "overload #" + std::to_string(i), kDefaultMaxTokens));
    } else {
      EXPECT_TRUE(IsError(r.status, r.body, 503, "unavailable")) << r.error;
      auto retry_after = r.headers.find("retry-after");
      ASSERT_NE(retry_after, r.headers.end()) << "503 without Retry-After";
      int seconds = -1;
      try {
        seconds = std::stoi(retry_after->second);
      } catch (...) {
      }
      EXPECT_GE(seconds, 1) << "Retry-After: " << retry_after->second;
      rejected_latency_ms.push_back(std::chrono::duration_cast<milliseconds>(r.latency).count());
    }
  }
  // One on the device plus two queued fit at once; allow a little slack for
  // arrivals spread over time, but most of the burst must be shed.
  EXPECT_GE(ok, 1);
  EXPECT_GE(static_cast<int>(rejected_latency_ms.size()), kRequests / 2) << ok << " got 200";
  // "At once": a shed request does not wait for the device.
  if (!rejected_latency_ms.empty()) {
    std::sort(rejected_latency_ms.begin(), rejected_latency_ms.end());
    EXPECT_LT(rejected_latency_ms[rejected_latency_ms.size() / 2], kLatencyMs)
        << "median 503 latency in ms";
  }

  // Once the queue has drained the model serves again.
  auto client = NewClient();
  int64_t depth = -1;
  PollUntil([&] { return (depth = QueueDepth(*client)) == 0; }, milliseconds(10'000));
  ASSERT_EQ(depth, 0) << "queue did not drain";
  Result<Response> after =
      client->Post("/v1/inference", InferenceBody(kModel, "after the storm"), {Bearer(kPaidKey)});
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_TRUE(IsCompletion(after->status, after->body, "after the storm", kDefaultMaxTokens));
}

TEST_F(OverloadTest, QueuedRequestsWithoutAClientDeadlineAllComplete) {
  // Control for the deadline tests below: the same backlog, the tier budget
  // (8 s) is long enough, so nobody times out.
  ASSERT_NO_FATAL_FAILURE(StartSluice(SlowSingleDevice(300)));
  constexpr int kRequests = 5;
  std::vector<LoadResult> results =
      LoadClient::Run({.port = port(), .connections = kRequests, .timeout = milliseconds(30'000)},
                      DistinctRequests(kRequests, kPaidKey));
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_TRUE(IsCompletion(results[i].status, results[i].body, "overload #" + std::to_string(i),
                             kDefaultMaxTokens))
        << results[i].error;
  }
}

TEST_F(OverloadTest, ClientDeadlineShorterThanTheWaitGets504) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(SlowSingleDevice(300)));
  constexpr int kRequests = 5;
  std::vector<LoadResult> results =
      LoadClient::Run({.port = port(), .connections = kRequests, .timeout = milliseconds(30'000)},
                      DistinctRequests(kRequests, kPaidKey, {{"X-Request-Timeout-Ms", "100"}}));

  // Only one request can reach the device within 100 ms; the rest wait at
  // least 300 ms behind it.
  std::vector<std::string> timed_out_ids;
  for (int i = 0; i < kRequests; ++i) {
    const LoadResult& r = results[i];
    SCOPED_TRACE("request " + std::to_string(i));
    if (r.status == 200) continue;
    EXPECT_TRUE(IsError(r.status, r.body, 504, "deadline_exceeded")) << r.error;
    timed_out_ids.push_back(ErrorRequestId(r.body));
    EXPECT_TRUE(IsRequestId(timed_out_ids.back())) << "a queued request's 504 names its id";
  }
  EXPECT_GE(timed_out_ids.size(), static_cast<size_t>(kRequests - 1));

  // The request log shows a timed-out request as failed, with an error.
  ASSERT_FALSE(timed_out_ids.empty());
  auto client = NewClient();
  boost::json::value record = WaitForFinalRecord(*client, timed_out_ids.front());
  std::string text = boost::json::serialize(record);
  EXPECT_EQ(StringField(record, "status"), "failed") << text;
  EXPECT_FALSE(StringField(record, "error").value_or("").empty()) << text;
}

TEST_F(OverloadTest, ClientDeadlineCannotLengthenTheTierBudget) {
  TestConfig config = SlowSingleDevice(300);
  config.latency_budget_ms = 100;  // every tier must be dispatched within 100 ms
  config.max_queue_age_ms = 150;
  config.total_timeout_ms = 2'000;
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  constexpr int kRequests = 5;
  std::vector<LoadResult> results = LoadClient::Run(
      {.port = port(), .connections = kRequests, .timeout = milliseconds(30'000)},
      DistinctRequests(kRequests, kEnterpriseKey, {{"X-Request-Timeout-Ms", "60000"}}));
  int timed_out = 0;
  for (int i = 0; i < kRequests; ++i) {
    const LoadResult& r = results[i];
    SCOPED_TRACE("request " + std::to_string(i));
    if (r.status == 200) continue;
    EXPECT_TRUE(IsError(r.status, r.body, 504, "deadline_exceeded")) << r.error;
    ++timed_out;
  }
  EXPECT_GE(timed_out, kRequests - 1) << "a 60 s client deadline outlived the 100 ms budget";
}

}  // namespace
}  // namespace sluice::testing
