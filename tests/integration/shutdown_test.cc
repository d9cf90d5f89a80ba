// Graceful shutdown of the real process: SIGTERM stops accepting, the queued
// requests are finished within server.drain_timeout_ms, the rest answered 503,
// and the process exits 0.
#include <chrono>
#include <csignal>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

using std::chrono::milliseconds;

constexpr int kRequests = 12;
constexpr int kBatch = 4;

// One device, batches of exactly 4 (the batcher may wait up to 1 s to fill
// one, far longer than 12 requests take to arrive), 400 ms per batch: the 12
// requests take three batches, about 1.2 s.
TestConfig SlowBatches(int64_t drain_timeout_ms) {
  TestConfig config;
  config.devices = 1;
  config.max_batch_size = kBatch;
  config.max_batch_delay_us = 1'000'000;
  config.fixed_latency_us = 400'000;
  config.per_item_latency_us = 0;
  config.drain_timeout_ms = drain_timeout_ms;
  return config;
}

std::string InputOf(int i) { return "drain me #" + std::to_string(i); }

class ShutdownTest : public SluiceTest {
 protected:
  // Starts kRequests requests on their own connections and returns once the
  // server holds all of them: while the first batch of 4 runs (400 ms), a
  // queue depth of 8 means all 12 have arrived.
  void StartBacklog() {
    std::vector<LoadRequest> requests;
    for (int i = 0; i < kRequests; ++i) {
      requests.push_back(InferenceRequest(kKeysInTurn[i % 3], InputOf(i)));
    }
    load_ = std::make_unique<LoadClient>(
        LoadOptions{.port = port(), .connections = kRequests, .timeout = milliseconds(30'000)},
        std::move(requests));
    load_->Start();
    auto client = NewClient();
    int64_t depth = -1;
    bool queued = PollUntil(
        [&] {
          depth = QueueDepth(*client);
          return depth >= kRequests - kBatch;
        },
        milliseconds(5'000), milliseconds(2));
    ASSERT_TRUE(queued) << "queue depth " << depth << "; expected " << kRequests - kBatch
                        << " requests waiting behind the first batch";
    ASSERT_EQ(load_->responses_received(), 0u) << "the first batch finished before SIGTERM";
  }

  static constexpr std::string_view kKeysInTurn[] = {kFreeKey, kPaidKey, kEnterpriseKey};
  std::unique_ptr<LoadClient> load_;
};

TEST_F(ShutdownTest, SigtermDrainsQueuedRequestsAndRefusesNewOnes) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(SlowBatches(/*drain_timeout_ms=*/10'000)));
  ASSERT_NO_FATAL_FAILURE(StartBacklog());
  ASSERT_TRUE(process().Terminate(SIGTERM));

  // New connections are refused (or answered 503) while the backlog drains.
  std::string last_probe;
  bool refused_while_draining = false;
  bool turned_away = PollUntil(
      [&] {
        HttpClient probe(port(), milliseconds(1'000));
        Result<Response> r = probe.Get("/internal/health", {Bearer(kServiceToken)});
        bool away = (!r.ok() && r.status().code() == ErrorCode::kUnavailable) ||
                    (r.ok() && r->status == 503);
        last_probe = r.ok() ? std::to_string(r->status) + " " + r->body : r.status().ToString();
        if (away) refused_while_draining = load_->responses_received() < kRequests;
        return away;
      },
      milliseconds(3'000));
  EXPECT_TRUE(turned_away) << "a new connection after SIGTERM was still served: " << last_probe;
  EXPECT_TRUE(refused_while_draining)
      << "new connections were turned away only after the drain had finished";
  {
    HttpClient late(port(), milliseconds(2'000));
    Result<Response> r =
        late.Post("/v1/inference", InferenceBody(kModel, "too late"), {Bearer(kPaidKey)});
    if (r.ok()) {
      EXPECT_TRUE(IsError(*r, 503, "unavailable")) << "request on a new connection after SIGTERM";
    } else {
      EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable) << r.status().ToString();
    }
  }

  // Everything sent before SIGTERM is answered, correctly.
  std::vector<LoadResult> results = load_->Wait();
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_TRUE(IsCompletion(results[i].status, results[i].body, InputOf(i), kDefaultMaxTokens))
        << "request " << i << " " << results[i].error;
  }
  EXPECT_EQ(process().WaitExit(milliseconds(10'000)), 0) << "exit code after a graceful drain";
}

TEST_F(ShutdownTest, RequestsLeftAfterTheDrainTimeoutGet503) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(SlowBatches(/*drain_timeout_ms=*/50)));
  ASSERT_NO_FATAL_FAILURE(StartBacklog());
  const auto signalled = std::chrono::steady_clock::now();
  ASSERT_TRUE(process().Terminate(SIGTERM));

  std::vector<LoadResult> results = load_->Wait();
  int ok = 0;
  int unavailable = 0;
  for (int i = 0; i < kRequests; ++i) {
    const LoadResult& r = results[i];
    SCOPED_TRACE("request " + std::to_string(i));
    if (r.status == 200) {
      ++ok;
      EXPECT_TRUE(IsCompletion(r.status, r.body, InputOf(i), kDefaultMaxTokens));
    } else {
      ++unavailable;
      EXPECT_TRUE(IsError(r.status, r.body, 503, "unavailable")) << r.error;
    }
  }
  // The last batch cannot even start within 50 ms of the signal.
  EXPECT_GE(unavailable, kBatch) << ok << " completed";
  std::optional<int> code = process().WaitExit(milliseconds(10'000));
  auto took = std::chrono::steady_clock::now() - signalled;
  EXPECT_EQ(code, 0);
  // 50 ms drain plus at most the batch already on the device, with margin.
  EXPECT_LT(took, milliseconds(3'000)) << "shutdown took too long";
}

TEST_F(ShutdownTest, IdleServerExitsZeroOnSigtermAndSigint) {
  for (int sig : {SIGTERM, SIGINT}) {
    SCOPED_TRACE(sig == SIGTERM ? "SIGTERM" : "SIGINT");
    ASSERT_NO_FATAL_FAILURE(StartSluice(TestConfig{}));
    auto client = NewClient();
    Result<Response> r = client->Get("/internal/health", {Bearer(kServiceToken)});
    ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
    // The idle keep-alive connection stays open: it must not hold up the exit.
    ASSERT_TRUE(process().Terminate(sig));
    EXPECT_EQ(process().WaitExit(milliseconds(5'000)), 0)
        << "exit within 5 s with an idle keep-alive connection open";
  }
}

}  // namespace
}  // namespace sluice::testing
