#include "backends/sim/sim_backend.h"

#include <gtest/gtest.h>

#include "backends/sim/sim_model.h"
#include "testing/fake_executor.h"

namespace sluice {
namespace {

using testing::FakeExecutor;

RequestPtr Req(const std::string& input, int max_tokens) {
  auto r = std::make_shared<InferenceRequest>();
  r->input = input;
  r->params.max_tokens = max_tokens;
  return r;
}

TEST(SimModelTest, DeterministicAndInputDependent) {
  auto a = sim::SimulateCompletion("m", "hello", 16);
  auto b = sim::SimulateCompletion("m", "hello", 16);
  auto c = sim::SimulateCompletion("m", "hellp", 16);
  auto d = sim::SimulateCompletion("other", "hello", 16);
  EXPECT_EQ(a.output, b.output);
  EXPECT_NE(a.output, c.output);
  EXPECT_NE(a.output, d.output);
  EXPECT_GE(a.tokens_used, sim::InputTokens("hello") + 1);
  EXPECT_LE(a.tokens_used, sim::InputTokens("hello") + 16);
}

TEST(SimModelTest, OutputTokensRespectMaxTokens) {
  for (int i = 0; i < 200; ++i) {
    auto c = sim::SimulateCompletion("m", "in" + std::to_string(i), 3);
    EXPECT_LE(c.tokens_used, sim::InputTokens("in" + std::to_string(i)) + 3);
  }
}

TEST(SimModelTest, EmbeddingsAreDeterministicUnitVectors) {
  std::vector<double> a = sim::SimulateEmbedding("m", "x", 16);
  EXPECT_EQ(a, sim::SimulateEmbedding("m", "x", 16));
  EXPECT_NE(a, sim::SimulateEmbedding("m", "y", 16));
  double norm = 0;
  for (double x : a) norm += x * x;
  EXPECT_NEAR(norm, 1.0, 1e-4);
}

TEST(SimModelTest, EmbeddingJsonIsAnArrayOfShortestNumbers) {
  EXPECT_EQ(sim::EmbeddingJson({0.25, -0.5, 1e-06}), "[0.25,-0.5,1e-06]");
  EXPECT_EQ(sim::EmbeddingJson({}), "[]");
}

TEST(SimBackendTest, AnEmbeddingModelAnswersVectorsChargedItsInputTokens) {
  FakeExecutor ex;
  SimBackend::Options o{"m", "v", 0, 1'000, 0, 0.0, 1, &ex};
  o.embedding_dimensions = 12;
  auto b = SimBackend::Create(o);
  ASSERT_TRUE(b.ok());
  BatchResult result;
  (*b)->RunBatch({Req("first text", 4), Req("second", 4)},
                 [&](BatchResult&& r) { result = std::move(r); });
  ex.Advance(Micros(1'000));
  ASSERT_TRUE(result.status.ok());
  ASSERT_EQ(result.items.size(), 2u);
  EXPECT_EQ(result.items[0].output,
            sim::EmbeddingJson(sim::SimulateEmbedding("m", "first text", 12)));
  EXPECT_EQ(result.items[1].output, sim::EmbeddingJson(sim::SimulateEmbedding("m", "second", 12)));
  EXPECT_EQ(result.items[0].tokens_used, sim::InputTokens("first text"));
}

TEST(SimBackendTest, BatchTakesFixedPlusPerItemLatency) {
  FakeExecutor ex;
  auto b = SimBackend::Create({"m", "m-v1", 0, 34'000, 500, 0.0, 1, &ex});
  ASSERT_TRUE(b.ok());
  std::vector<RequestPtr> batch;
  for (int i = 0; i < 32; ++i) batch.push_back(Req("x" + std::to_string(i), 8));
  bool done = false;
  BatchResult result;
  (*b)->RunBatch(batch, [&](BatchResult&& r) {
    done = true;
    result = std::move(r);
  });
  ex.Advance(Micros(49'999));
  EXPECT_FALSE(done);
  ex.Advance(Micros(1));  // 34 ms + 32 * 0.5 ms = 50 ms
  ASSERT_TRUE(done);
  ASSERT_TRUE(result.status.ok());
  ASSERT_EQ(result.items.size(), 32u);
  EXPECT_EQ(result.model_version, "m-v1");
  EXPECT_EQ(result.items[7].output, sim::SimulateCompletion("m", "x7", 8).output);
}

TEST(SimBackendTest, SecondBatchWhileBusyIsRefused) {
  FakeExecutor ex;
  auto b = SimBackend::Create({"m", "v", 0, 1'000, 0, 0.0, 1, &ex});
  ASSERT_TRUE(b.ok());
  Status second;
  (*b)->RunBatch({Req("a", 1)}, [](BatchResult&&) {});
  (*b)->RunBatch({Req("b", 1)}, [&](BatchResult&& r) { second = r.status; });
  ex.RunPending();
  EXPECT_EQ(second.code(), ErrorCode::kInternal);
}

TEST(SimBackendTest, JitterStaysWithinBounds) {
  FakeExecutor ex;
  auto b = SimBackend::Create({"m", "v", 0, 10'000, 0, 0.5, 7, &ex});
  ASSERT_TRUE(b.ok());
  for (int i = 0; i < 20; ++i) {
    TimePoint start = ex.Now();
    TimePoint finished{};
    (*b)->RunBatch({Req("a", 1)}, [&](BatchResult&&) { finished = ex.Now(); });
    ex.Advance(Micros(15'001));
    ASSERT_NE(finished, TimePoint{});
    EXPECT_GE(finished - start, Micros(5'000));
    EXPECT_LE(finished - start, Micros(15'000));
  }
}

TEST(SimBackendTest, RejectsBadOptions) {
  FakeExecutor ex;
  EXPECT_FALSE(SimBackend::Create({"m", "v", 0, -1, 0, 0.0, 1, &ex}).ok());
  EXPECT_FALSE(SimBackend::Create({"m", "v", 0, 1, 0, 1.5, 1, &ex}).ok());
  EXPECT_FALSE(SimBackend::Create({"m", "v", 0, 1, 0, 0.0, 1, nullptr}).ok());
}

}  // namespace
}  // namespace sluice
