// Scale-out on a real Redis Cluster (3 masters + 3 replicas started by the
// test): traffic through two gateways and two workers while the master
// holding the model's queue crashes. The fixture: scale_out_fixture.h.
#include <algorithm>
#include <cstdio>
#include <set>

#include "redis/cluster_client.h"
#include "redis/connection.h"
#include "redis/hash_slot.h"
#include "redis/keys.h"
#include "testing/redis_cluster.h"
#include "tests/scale_out/scale_out_fixture.h"

namespace sluice::testing {
namespace {

using namespace scale_out;  // NOLINT(google-build-using-namespace): test helpers
using std::chrono::milliseconds;
using SteadyTime = std::chrono::steady_clock;

class ScaleOutClusterTest : public ScaleOutTest {
 protected:
  void SetUp() override { ASSERT_TRUE(cluster_.Start().ok()) << "redis cluster did not start"; }

  // The test config plus a `redis:` section naming every cluster node.
  std::string ClusterYaml(const TestConfig& c, int64_t lease_ms = 1'000,
                          int queue_shards = 1) const {
    std::ostringstream y;
    y << c.Yaml() << "redis:\n  cluster_nodes:\n";
    for (const std::string& a : cluster_.Addresses()) y << "    - \"" << a << "\"\n";
    y << "  key_prefix: it\n"
      << "  command_timeout_ms: 500\n"
      << "  lease_ms: " << lease_ms << "\n"
      << "  queue_shards: " << queue_shards << "\n"
      << "  heartbeat_ttl_ms: 1500\n";
    return y.str();
  }

  // The index of the node serving `key` now.
  int MasterIndexOf(const std::string& key) {
    redis::RedisClusterClient::Options o;
    o.seeds = cluster_.Addresses();
    auto client = redis::RedisClusterClient::Create(o);
    if (!client.ok() || !(*client)->WaitUntilUp(milliseconds(10'000))) return -1;
    const std::string master = (*client)->MasterOf(redis::KeySlot(key));
    if (master.empty()) return -1;
    return cluster_.IndexOfPort(
        static_cast<uint16_t>(std::stoi(master.substr(master.rfind(':') + 1))));
  }

  RedisCluster cluster_;
};

// Each request is answered exactly once with 200, 503 (its master is down)
// or 504 (admitted, then lost with the master or its result); once the
// replica has taken over, everything is served again without a restart.
TEST_F(ScaleOutClusterTest, MasterCrashUnderLoadThroughTwoGateways) {
  TestConfig c = FastSim();
  c.latency_budget_ms = 2'000;
  c.max_queue_age_ms = 2'000;
  c.total_timeout_ms = 3'000;
  const std::string yaml = ClusterYaml(c);
  std::vector<uint16_t> gw = StartCluster(yaml, 2, 2);
  ASSERT_EQ(gw.size(), 2u);
  // Healthy first: a burst through both gateways is all served.
  for (const uint16_t port : gw) {
    std::vector<LoadResult> warm = LoadClient::Run({port, 16, milliseconds(30'000)},
                                                   Requests("w" + std::to_string(port) + "-", 200));
    for (const LoadResult& r : warm) ASSERT_EQ(r.status, 200) << r.body << r.error;
  }

  const int victim = MasterIndexOf(redis::KeySpace("it").Payloads(kModel));
  ASSERT_GE(victim, 0);
  constexpr size_t kPerGateway = 3'000;
  LoadClient a({gw[0], 16, milliseconds(90'000)}, Requests("a-", kPerGateway));
  LoadClient b({gw[1], 16, milliseconds(90'000)}, Requests("b-", kPerGateway));
  a.Start();
  b.Start();
  ASSERT_TRUE(PollUntil([&] { return a.responses_received() + b.responses_received() >= 600; },
                        milliseconds(30'000)));
  cluster_.Kill(static_cast<size_t>(victim));
  const auto killed = SteadyTime::now();
  // Before the replica can take over (the node timeout is 1 s), a new
  // request is refused at once: its master is down.
  for (const uint16_t port : gw) {
    HttpClient probe(port, milliseconds(5'000));
    Result<Response> r =
        probe.Request("POST", "/v1/inference", InferenceBody(kModel, "during"),
                      {{"Authorization", "Bearer " + std::string(kEnterpriseKey)}});
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_TRUE(IsError(*r, 503, "unavailable")) << r->body;
    EXPECT_NE(r->body.find("redis_unavailable"), std::string::npos) << r->body;
  }
  std::vector<LoadResult> ra = a.Wait(), rb = b.Wait();

  std::map<int, size_t> by_status;
  std::map<std::string, int> per_id;
  for (const auto* results : {&ra, &rb}) {
    for (const LoadResult& r : *results) {
      ++by_status[r.status];
      if (r.headers.count("x-request-id")) ++per_id[r.headers.at("x-request-id")];
      if (r.status == 503) {
        EXPECT_TRUE(IsError(r.status, r.body, 503, "unavailable")) << r.body;
      }
      if (r.status == 504) {
        EXPECT_TRUE(IsError(r.status, r.body, 504, "deadline_exceeded")) << r.body;
      }
    }
  }
  std::string seen;
  for (const auto& [status, n] : by_status) {
    seen += std::to_string(status) + ": " + std::to_string(n) + "  ";
  }
  for (const auto& [status, n] : by_status) {
    EXPECT_TRUE(status == 200 || status == 503 || status == 504) << seen;
  }
  EXPECT_EQ(per_id.size(), 2 * kPerGateway) << "lost or duplicated responses; " << seen;
  for (const auto& [id, n] : per_id) EXPECT_EQ(n, 1) << id;
  EXPECT_GT(by_status[200], 0u) << seen;

  // Healed: a fresh burst through both gateways is all served.
  ASSERT_TRUE(cluster_.WaitUntilOk(milliseconds(30'000)));
  EXPECT_TRUE(PollUntil(
      [&] {
        HttpClient probe(gw[0], milliseconds(5'000));
        auto r = probe.Request("POST", "/v1/inference", InferenceBody(kModel, "up"),
                               {{"Authorization", "Bearer " + std::string(kEnterpriseKey)}});
        return r.ok() && r->status == 200;
      },
      milliseconds(15'000), milliseconds(100)));
  const auto healed = SteadyTime::now();
  for (const uint16_t port : gw) {
    std::vector<LoadResult> after = LoadClient::Run(
        {port, 16, milliseconds(30'000)}, Requests("u" + std::to_string(port) + "-", 500));
    for (size_t i = 0; i < after.size(); ++i) {
      EXPECT_TRUE(IsCompletion(after[i].status, after[i].body,
                               "u" + std::to_string(port) + "-" + std::to_string(i),
                               kDefaultMaxTokens))
          << after[i].body << after[i].error;
    }
  }
  std::printf(
      "[ cluster failover ] %s| served again %lld ms after the crash\n", seen.c_str(),
      static_cast<long long>(std::chrono::duration_cast<milliseconds>(healed - killed).count()));
}

// The model's queue in 3 shards over the masters: when the master of one
// shard crashes, requests that hash to it are refused (503) while those of
// the other shards are still served — the model is not down.
TEST_F(ScaleOutClusterTest, ShardedQueueKeepsServingTheOtherShardsThroughAMasterCrash) {
  TestConfig c = FastSim();
  c.latency_budget_ms = 2'000;
  c.max_queue_age_ms = 2'000;
  c.total_timeout_ms = 3'000;
  std::vector<uint16_t> gw = StartCluster(ClusterYaml(c, 1'000, /*queue_shards=*/3), 3, 1);
  ASSERT_EQ(gw.size(), 1u);
  std::set<int> masters;
  for (size_t shard = 0; shard < 3; ++shard) {
    masters.insert(MasterIndexOf(redis::KeySpace("it").Payloads(redis::QueueShard(kModel, shard))));
  }
  ASSERT_GE(masters.size(), 2u) << "the shards' tags should hash to different masters";
  const int victim = MasterIndexOf(redis::KeySpace("it").Payloads(kModel));
  ASSERT_GE(victim, 0);
  for (const LoadResult& r :
       LoadClient::Run({gw[0], 16, milliseconds(30'000)}, Requests("w-", 300))) {
    ASSERT_EQ(r.status, 200) << r.body << r.error;
  }

  cluster_.Kill(static_cast<size_t>(victim));
  std::map<int, size_t> by_status;
  for (const LoadResult& r :
       LoadClient::Run({gw[0], 8, milliseconds(30'000)}, Requests("d-", 60))) {
    ++by_status[r.status];
    if (r.status == 503) {
      EXPECT_NE(r.body.find("redis_unavailable"), std::string::npos) << r.body;
    }
  }
  std::string seen;
  for (const auto& [status, n] : by_status) {
    seen += std::to_string(status) + ": " + std::to_string(n) + "  ";
    // 504: answered by a worker while the gateway's result subscription
    // (on node 0) moved to another node, if node 0 crashed.
    EXPECT_TRUE(status == 200 || status == 503 || (status == 504 && victim == 0)) << seen;
  }
  EXPECT_GT(by_status[200], 0u) << "the other shards should still be served; " << seen;
  EXPECT_GT(by_status[503], 0u) << "requests of the crashed shard should be refused; " << seen;

  ASSERT_TRUE(cluster_.WaitUntilOk(milliseconds(30'000)));
  EXPECT_TRUE(PollUntil(
      [&] {
        std::vector<LoadResult> probe =
            LoadClient::Run({gw[0], 8, milliseconds(10'000)}, Requests("p-", 16));
        return std::all_of(probe.begin(), probe.end(),
                           [](const LoadResult& r) { return r.status == 200; });
      },
      milliseconds(15'000), milliseconds(100)));
  for (const LoadResult& r :
       LoadClient::Run({gw[0], 16, milliseconds(30'000)}, Requests("u-", 300))) {
    EXPECT_EQ(r.status, 200) << r.body << r.error;
  }
  std::printf("[ sharded failover ] node %d crashed; during the outage: %s\n", victim,
              seen.c_str());
}

// On a cluster a key's limit lives in its own slot, checked in its own
// (batched) call: it is still one limit across both gateways.
TEST_F(ScaleOutClusterTest, RateLimitIsSharedAcrossGatewaysInItsOwnSlot) {
  TestConfig c = FastSim();
  c.free_tier.requests_per_minute = 60;
  std::vector<uint16_t> gw = StartCluster(ClusterYaml(c), 1, 2);
  ASSERT_EQ(gw.size(), 2u);
  const auto [ok, limited] = FreeKeyBurstOverTwoGateways(gw, 60);
  EXPECT_EQ(ok, 60) << "the key's 60/min is not shared by both gateways";
  EXPECT_EQ(limited, 140);
}

// The asynchronous API, Idempotency-Keys, the result cache and collapsing
// on a cluster with a sharded queue: each script touches one slot (the
// owner's, the model's, the request's), so none fails with CROSSSLOT, and
// two gateways share every one of them.
TEST_F(ScaleOutClusterTest, AsyncCacheAndCollapsingWorkAcrossGateways) {
  TestConfig c = FastSim();
  c.devices = 1;
  c.fixed_latency_us = 1'000'000;
  c.per_item_latency_us = 0;
  c.max_batch_delay_us = 0;
  c.accelerator_timeout_ms = 5'000;
  c.cache = true;
  c.collapse = true;
  c.deterministic = true;
  std::vector<uint16_t> gw = StartCluster(ClusterYaml(c, 2'000, /*queue_shards=*/2), 1, 2);
  ASSERT_EQ(gw.size(), 2u);
  auto post = [](uint16_t port, std::string_view input, Headers headers) {
    headers.push_back(Bearer(kPaidKey));
    Result<Response> r = HttpClient(port, milliseconds(20'000))
                             .Post("/v1/inference", InferenceBody(kModel, input), headers);
    return r.ok() ? *r : Response{0, r.status().ToString(), {}};
  };

  // Collapsing: the second gateway's request waits for the first's item.
  LoadClient first({.port = gw[0], .connections = 1}, {InferenceRequest(kPaidKey, "shared")});
  first.Start();
  ASSERT_TRUE(
      PollUntil([&] { return GatewayMetric(gw[0], "sluice_collapse_waiting_requests") == 1; },
                milliseconds(5'000)));
  Response second = post(gw[1], "shared", {});
  std::vector<LoadResult> firsts = first.Wait();
  ASSERT_EQ(firsts.size(), 1u);
  ASSERT_TRUE(IsCompletion(firsts[0].status, firsts[0].body, "shared", kDefaultMaxTokens))
      << firsts[0].body;
  ASSERT_TRUE(IsCompletion(second.status, second.body, "shared", kDefaultMaxTokens)) << second.body;
  EXPECT_EQ(GatewayMetric(gw[1], "sluice_collapse_gateway_waits_total"), 1);
  EXPECT_EQ(GatewayMetric(procs_[0]->port(), "sluice_batch_size_sum"), 1);

  // The cache: that answer is now a hit at either gateway.
  ASSERT_TRUE(PollUntil([&] { return GatewayMetric(gw[0], "sluice_cache_entries") == 1; },
                        milliseconds(5'000)));
  EXPECT_EQ(post(gw[1], "shared", {}).Header("X-Cache"), "hit");
  EXPECT_EQ(GatewayMetric(gw[1], "sluice_cache_failures_total"), 0);

  // An async task taken at one gateway, read at the other.
  Response accepted = post(gw[0], "later", {{"Prefer", "respond-async"}});
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const std::string task(json::parse(accepted.body).at("task_id").as_string());
  HttpClient reader(gw[1], milliseconds(20'000));
  Result<Response> done = reader.Get("/v1/result/" + task + "?wait_ms=15000", {Bearer(kPaidKey)});
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(json::parse(done->body).at("status").as_string(), "SUCCESS") << done->body;

  // An Idempotency-Key repeated at the other gateway.
  Response once = post(gw[0], "once", {{"Idempotency-Key", "k-1"}});
  ASSERT_EQ(once.status, 200) << once.body;
  Response again = post(gw[1], "once", {{"Idempotency-Key", "k-1"}});
  EXPECT_EQ(again.body, once.body);
  EXPECT_EQ(again.Header("Idempotent-Replayed"), "true");
  EXPECT_EQ(GatewayMetric(procs_[0]->port(), "sluice_batch_size_sum"), 3);
}

// A batch finishes while its master is failing over: the worker keeps its
// answers and completes them once the replica has taken over, so the
// clients get 200s — not 504s while the leases (15 s here) wait to be
// reaped and the batch re-run.
TEST_F(ScaleOutClusterTest, AnswersFinishedDuringAFailoverAreDeliveredAfterIt) {
  TestConfig c = FastSim();
  c.devices = 1;
  // The first batch ends 1.2 s after its claim; the replica cannot take
  // over before the 1 s node timeout plus its election delay (>= 0.5 s)
  // after the crash, which comes just after that claim. (Not after a
  // later claim: the one device's next batch is claimed as the first one
  // ends, so the crash could meet the first batch's complete call, whose
  // effects may reach the replica while its messages die with the master:
  // pub/sub is at most once, redis/result_listener.h.) The requests
  // claimed after the failover run then, within the deadline even after
  // a failed first election.
  c.fixed_latency_us = 1'200'000;
  c.accelerator_timeout_ms = 4'000;
  c.latency_budget_ms = 11'000;
  c.max_queue_age_ms = 11'000;
  c.total_timeout_ms = 12'000;
  std::vector<uint16_t> gw = StartCluster(ClusterYaml(c, /*lease_ms=*/15'000), 1, 1);
  ASSERT_EQ(gw.size(), 1u);
  const int victim = MasterIndexOf(redis::KeySpace("it").Payloads(kModel));
  ASSERT_GE(victim, 0);
  const uint16_t worker = procs_[0]->port();
  LoadClient load({gw[0], 4, milliseconds(30'000)}, Requests("f-", 4));
  load.Start();
  // Every request queued (none is refused for want of its master), and a
  // first batch claimed.
  ASSERT_TRUE(PollUntil(
      [&] {
        return GatewayMetric(gw[0], "sluice_redis_enqueued_requests_total") >= 4 &&
               GatewayMetric(worker, "sluice_worker_requests_claimed_total") >= 1;
      },
      milliseconds(10'000), milliseconds(10)));
  // Replication is asynchronous: a write of ours in the same slot, then
  // WAIT for the replica to have it, and so everything written before it
  // (the enqueues and the claim), so that the crash loses none of them.
  {
    redis::RedisConnection::Options o;
    o.port = cluster_.node(static_cast<size_t>(victim)).port();
    auto master = redis::RedisConnection::Create(o);
    ASSERT_TRUE(master.ok() && (*master)->WaitUntilUp(milliseconds(5'000)));
    const std::string mark = redis::KeySpace("it").Payloads(kModel) + ":test-mark";
    ASSERT_TRUE((*master)->Call({"SET", mark, "1"}).ok());
    redis::ReplyResult acked = (*master)->Call({"WAIT", "1", "5000"});
    ASSERT_TRUE(acked.ok() && acked->AsInt() == 1) << (acked.ok() ? acked->DebugString() : "");
  }
  cluster_.Kill(static_cast<size_t>(victim));
  std::vector<LoadResult> results = load.Wait();
  // Where answers went, should one be missing: the worker's complete
  // calls, and the gateway's result channel.
  std::string trail;
  for (const char* name :
       {"sluice_worker_batches_claimed_total", "sluice_worker_complete_calls_total",
        "sluice_worker_complete_errors_total", "sluice_worker_complete_retries_total",
        "sluice_worker_answers_expired_unsent_total", "sluice_worker_undelivered_results_total"}) {
    trail += std::string(name) + " " + std::to_string(GatewayMetric(worker, name)) + "\n";
  }
  for (const char* name : {"sluice_redis_results_total", "sluice_redis_dropped_results_total",
                           "sluice_redis_subscribed"}) {
    trail +=
        std::string("gateway ") + name + " " + std::to_string(GatewayMetric(gw[0], name)) + "\n";
  }
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_TRUE(IsCompletion(results[i].status, results[i].body, "f-" + std::to_string(i),
                             kDefaultMaxTokens))
        << results[i].body << results[i].error << "\n"
        << trail;
  }
  EXPECT_GE(GatewayMetric(worker, "sluice_worker_complete_retries_total"), 1) << trail;
}

}  // namespace
}  // namespace sluice::testing
