#include "redis/worker_registry.h"

#include <gtest/gtest.h>

#include <thread>

#include "redis/redis_test_fixture.h"

namespace sluice::redis {
namespace {

using std::chrono::milliseconds;
using SteadyTime = std::chrono::steady_clock;

WorkerHeartbeat Beat(const std::string& id, uint32_t slots, double rps) {
  WorkerHeartbeat b;
  b.worker_id = id;
  b.model = "llama";
  b.endpoint = "http://gpu-" + id + ":8000";
  b.utilisation = 0.5;
  b.throughput_rps = rps;
  b.healthy_slots = slots;
  return b;
}

class RedisRegistryTest : public RedisTest {
 protected:
  std::unique_ptr<RedisWorkerRegistry> NewRegistry(int64_t ttl_ms) {
    RedisWorkerRegistry::Options o;
    o.connection = connection_.get();
    o.heartbeat_ttl_ms = ttl_ms;
    return std::move(RedisWorkerRegistry::Create(o)).value();
  }
};

TEST_F(RedisRegistryTest, SumsHealthyWorkersPerModel) {
  auto registry = NewRegistry(5'000);
  ASSERT_TRUE(registry->Heartbeat(Beat("w1", 2, 600)).ok());
  ASSERT_TRUE(registry->Heartbeat(Beat("w2", 1, 300)).ok());
  ASSERT_TRUE(registry->Heartbeat(Beat("w3", 0, 999)).ok());  // no healthy slot
  WorkerHeartbeat other = Beat("w4", 4, 100);
  other.model = "other";
  ASSERT_TRUE(registry->Heartbeat(other).ok());
  Result<ModelCapacity> c = registry->ReadModel("llama");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->healthy_workers, 2u);
  EXPECT_EQ(c->healthy_slots, 3u);
  EXPECT_DOUBLE_EQ(c->throughput_rps, 900);
  EXPECT_EQ(c->workers.size(), 3u);
  // A heartbeat replaces the previous one.
  ASSERT_TRUE(registry->Heartbeat(Beat("w2", 1, 100)).ok());
  EXPECT_DOUBLE_EQ(registry->ReadModel("llama")->throughput_rps, 700);
  ASSERT_TRUE(registry->Deregister("llama", "w1").ok());
  EXPECT_EQ(registry->ReadModel("llama")->healthy_workers, 1u);
}

TEST_F(RedisRegistryTest, SilentWorkerDisappearsAfterItsTtl) {
  auto registry = NewRegistry(300);
  const auto beat_at = SteadyTime::now();
  ASSERT_TRUE(registry->Heartbeat(Beat("dies", 1, 100)).ok());
  EXPECT_EQ(registry->ReadModel("llama")->healthy_workers, 1u);
  // The live worker keeps beating; the other stays silent.
  std::optional<SteadyTime::duration> gone_after;
  for (int i = 0; i < 300 && !gone_after; ++i) {
    ASSERT_TRUE(registry->Heartbeat(Beat("lives", 1, 50)).ok());
    Result<ModelCapacity> c = registry->ReadModel("llama");
    ASSERT_TRUE(c.ok());
    if (c->workers.size() == 1) {
      gone_after = SteadyTime::now() - beat_at;
      EXPECT_EQ(c->workers[0].worker_id, "lives");
      EXPECT_DOUBLE_EQ(c->throughput_rps, 50);
    } else {
      std::this_thread::sleep_for(milliseconds(10));
    }
  }
  ASSERT_TRUE(gone_after.has_value()) << "the silent worker never expired";
  EXPECT_GE(*gone_after, milliseconds(290));
  EXPECT_LT(*gone_after, milliseconds(1'500));
}

}  // namespace
}  // namespace sluice::redis
