#include "core/memory_result_cache.h"

#include <gtest/gtest.h>

#include "testing/fake_executor.h"

namespace sluice {
namespace {

using testing::FakeClock;

CachedAnswer Answer(const std::string& output) { return CachedAnswer{output, 7, "m-v1"}; }

// An entry's size as the budget counts it.
uint64_t Bytes(const std::string& key, const std::string& output) {
  return key.size() + output.size() + 4 + MemoryResultCache::kEntryOverheadBytes;
}

std::unique_ptr<MemoryResultCache> Cache(FakeClock* clock, uint64_t max_bytes,
                                         int64_t ttl_ms = 1'000) {
  MemoryResultCache::Options o;
  o.max_bytes = max_bytes;
  o.ttl_ms = ttl_ms;
  o.clock = clock;
  return std::move(MemoryResultCache::Create(o)).value();
}

TEST(MemoryResultCacheTest, FindsWhatWasStoredAndCountsHitsAndMisses) {
  FakeClock clock;
  auto cache = Cache(&clock, 1 << 20);
  EXPECT_FALSE(cache->Lookup("k1").has_value());
  cache->Store("k1", Answer("out-1"));
  std::optional<CachedAnswer> hit = cache->Lookup("k1");
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->output, "out-1");
  EXPECT_EQ(hit->tokens_used, 7u);
  EXPECT_EQ(hit->model_version, "m-v1");
  ResultCache::Stats s = cache->stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.stores, 1u);
  EXPECT_EQ(s.entries, 1u);
  EXPECT_EQ(s.bytes, Bytes("k1", "out-1"));
}

TEST(MemoryResultCacheTest, AnEntryLivesTtlAfterItWasStored) {
  FakeClock clock;
  auto cache = Cache(&clock, 1 << 20, /*ttl_ms=*/1'000);
  cache->Store("k", Answer("o"));
  clock.Set(clock.Now() + Millis(999));
  EXPECT_TRUE(cache->Lookup("k").has_value());  // a hit does not extend its life
  clock.Set(clock.Now() + Millis(1));
  EXPECT_FALSE(cache->Lookup("k").has_value());
  ResultCache::Stats s = cache->stats();
  EXPECT_EQ(s.expired, 1u);
  EXPECT_EQ(s.entries, 0u);
  EXPECT_EQ(s.bytes, 0u);
}

TEST(MemoryResultCacheTest, TheLeastRecentlyUsedGoFirstWithinTheByteBudget) {
  FakeClock clock;
  // Room for exactly three entries of this size.
  auto cache = Cache(&clock, 3 * Bytes("k1", "out"));
  cache->Store("k1", Answer("out"));
  cache->Store("k2", Answer("out"));
  cache->Store("k3", Answer("out"));
  ASSERT_TRUE(cache->Lookup("k1").has_value());  // k2 is now the least recently used
  cache->Store("k4", Answer("out"));
  EXPECT_FALSE(cache->Lookup("k2").has_value());
  EXPECT_TRUE(cache->Lookup("k1").has_value());
  EXPECT_TRUE(cache->Lookup("k3").has_value());
  EXPECT_TRUE(cache->Lookup("k4").has_value());
  ResultCache::Stats s = cache->stats();
  EXPECT_EQ(s.evictions, 1u);
  EXPECT_EQ(s.entries, 3u);
  EXPECT_EQ(s.bytes, 3 * Bytes("k1", "out"));

  // A bigger answer evicts as many as it needs, least recently used first:
  // after the lookups above the order is k4, k3, k1.
  const std::string big(100, 'x');
  cache->Store("k5", Answer(big));
  EXPECT_EQ(cache->stats().evictions, 3u);
  EXPECT_FALSE(cache->Lookup("k1").has_value());
  EXPECT_FALSE(cache->Lookup("k3").has_value());
  EXPECT_TRUE(cache->Lookup("k4").has_value());
  EXPECT_TRUE(cache->Lookup("k5").has_value());
  EXPECT_EQ(cache->stats().bytes, Bytes("k4", "out") + Bytes("k5", big));
}

TEST(MemoryResultCacheTest, AnAnswerLargerThanTheBudgetIsNotKept) {
  FakeClock clock;
  auto cache = Cache(&clock, 1'000);
  cache->Store("small", Answer("o"));
  cache->Store("huge", Answer(std::string(2'000, 'x')));
  EXPECT_FALSE(cache->Lookup("huge").has_value());
  EXPECT_TRUE(cache->Lookup("small").has_value());  // nothing was evicted for it
  EXPECT_EQ(cache->stats().evictions, 0u);
}

TEST(MemoryResultCacheTest, StoringAgainReplacesAndRestartsTheEntrysLife) {
  FakeClock clock;
  auto cache = Cache(&clock, 1 << 20, /*ttl_ms=*/1'000);
  cache->Store("k", Answer("first"));
  clock.Set(clock.Now() + Millis(800));
  cache->Store("k", Answer("second"));
  clock.Set(clock.Now() + Millis(800));
  std::optional<CachedAnswer> hit = cache->Lookup("k");
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->output, "second");
  EXPECT_EQ(cache->stats().entries, 1u);
  EXPECT_EQ(cache->stats().bytes, Bytes("k", "second"));
}

TEST(MemoryResultCacheTest, CreateNamesABadField) {
  MemoryResultCache::Options o;
  o.max_bytes = 0;
  EXPECT_EQ(MemoryResultCache::Create(o).status().message(),
            "result cache: max_bytes must be at least 1");
  o.max_bytes = 1;
  o.ttl_ms = 0;
  EXPECT_EQ(MemoryResultCache::Create(o).status().message(),
            "result cache: ttl_ms must be between 1 and 30 days");
}

InferenceParams Params(int max_tokens, std::optional<double> temperature = std::nullopt,
                       std::string json = "") {
  InferenceParams p;
  p.max_tokens = max_tokens;
  p.temperature = temperature;
  p.json = std::move(json);
  return p;
}

TEST(ResultCacheKeyTest, EveryFieldThatShapesTheOutputChangesTheKey) {
  const std::string base = ResultCacheKey("m", "v1", "hello", Params(16));
  EXPECT_EQ(base.size(), 64u);
  EXPECT_EQ(base, ResultCacheKey("m", "v1", "hello", Params(16)));
  EXPECT_NE(base, ResultCacheKey("m2", "v1", "hello", Params(16)));
  EXPECT_NE(base, ResultCacheKey("m", "v2", "hello", Params(16)));
  EXPECT_NE(base, ResultCacheKey("m", "v1", "hello!", Params(16)));
  EXPECT_NE(base, ResultCacheKey("m", "v1", "hello", Params(17)));
  EXPECT_NE(base, ResultCacheKey("m", "v1", "hello", Params(16, 0.0)));
  EXPECT_NE(ResultCacheKey("m", "v1", "hello", Params(16, 0.5)),
            ResultCacheKey("m", "v1", "hello", Params(16, 0.5000001)));
  EXPECT_EQ(ResultCacheKey("m", "v1", "hello", Params(16, 0.0)),
            ResultCacheKey("m", "v1", "hello", Params(16, -0.0)));
  EXPECT_NE(base, ResultCacheKey("m", "v1", "hello", Params(16, std::nullopt, R"({"top_p":1})")));
  // Fields are delimited: moving a byte from one field to the next is a
  // different request.
  EXPECT_NE(ResultCacheKey("ab", "c", "x", Params(16)), ResultCacheKey("a", "bc", "x", Params(16)));
}

}  // namespace
}  // namespace sluice
