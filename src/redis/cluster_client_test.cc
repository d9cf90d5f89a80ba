// RedisClusterClient against a real Redis Cluster (3 masters + 3 replicas,
// testing/redis_cluster.h): slot hashing as the server computes it, routing,
// MOVED and ASK redirects, the queue scripts with rate limits in their own
// calls, and a master's failover.
#include "redis/cluster_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "redis/batch_claimer.h"
#include "redis/hash_slot.h"
#include "redis/keys.h"
#include "redis/queue_client.h"
#include "redis/queue_test_fixture.h"
#include "redis/reaper.h"
#include "redis/redis_rate_limiter.h"
#include "testing/redis_cluster.h"

namespace sluice::redis {
namespace {

using std::chrono::milliseconds;
using SteadyTime = std::chrono::steady_clock;

RedisConnection::Options NodeOptions() {
  RedisConnection::Options o;
  o.connect_timeout_ms = 300;
  o.command_timeout_ms = 1'000;
  o.reconnect_initial_backoff_ms = 10;
  o.reconnect_max_backoff_ms = 100;
  return o;
}

std::unique_ptr<RedisClusterClient> NewClient(const std::vector<std::string>& seeds,
                                              int64_t periodic_refresh_ms = 5'000) {
  RedisClusterClient::Options o;
  o.seeds = seeds;
  o.node = NodeOptions();
  o.refresh_interval_ms = 50;
  o.periodic_refresh_ms = periodic_refresh_ms;
  auto c = RedisClusterClient::Create(o);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  if (!c.ok()) return nullptr;
  EXPECT_TRUE((*c)->WaitUntilUp(milliseconds(10'000)));
  return std::move(c).value();
}

// A direct connection to one node ("host:port").
std::unique_ptr<RedisConnection> Direct(const std::string& address) {
  RedisConnection::Options o = NodeOptions();
  o.host = address.substr(0, address.rfind(':'));
  o.port = std::stoi(address.substr(address.rfind(':') + 1));
  auto c = RedisConnection::Create(o);
  EXPECT_TRUE(c.ok());
  EXPECT_TRUE((*c)->WaitUntilUp(milliseconds(5'000)));
  return std::move(c).value();
}

// The first key `prefix` + n (n = 0, 1, ...) that hashes to `slot`.
std::string KeyInSlot(int slot, const std::string& prefix = "k") {
  for (int n = 0; n < 1'000'000; ++n) {
    std::string k = prefix + std::to_string(n);
    if (KeySlot(k) == slot) return k;
  }
  return {};
}

class ClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new testing::RedisCluster();
    start_ = new Status(cluster_->Start());
  }
  static void TearDownTestSuite() {
    delete cluster_;
    delete start_;
  }
  void SetUp() override {
    ASSERT_TRUE(start_->ok()) << start_->ToString();
    // Each test starts from empty masters (replicas refuse; they follow).
    for (size_t i = 0; i < cluster_->size(); ++i) (void)cluster_->Cli(i, {"FLUSHALL"});
  }

  // The node id (CLUSTER MYID) of the node at `address`.
  static std::string NodeId(const std::string& address) {
    ReplyResult r = Direct(address)->Call({"CLUSTER", "MYID"});
    return r.ok() ? r->str : std::string();
  }

  static testing::RedisCluster* cluster_;
  static Status* start_;
};

testing::RedisCluster* ClusterTest::cluster_ = nullptr;
Status* ClusterTest::start_ = nullptr;

TEST(HashSlotTest, MatchesRedisClusterSpecVectors) {
  EXPECT_EQ(Crc16("123456789"), 0x31C3);  // the spec's check value
  EXPECT_EQ(KeySlot("somekey"), 11058);
  EXPECT_EQ(KeySlot("foo{hash_tag}"), 2515);
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("{user1000}.followers"));
  EXPECT_EQ(KeySlot("foo{}{bar}"), Crc16("foo{}{bar}") % kHashSlots);  // empty tag: whole key
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), Crc16("{bar") % kHashSlots);
  EXPECT_EQ(KeySlot("foo{bar}{zap}"), Crc16("bar") % kHashSlots);
  // One model's keys share a slot; rate-limit shards have their own.
  const KeySpace k;
  const int slot = KeySlot(k.Payloads("llama"));
  for (const std::string& key :
       {k.Queue("llama", 0), k.Queue("llama", 2), k.Leases("llama"), k.Batches("llama"),
        k.Wake("llama"), k.Dead("llama"), k.DeadStats("llama"), k.Workers("llama"),
        k.WorkerExpiry("llama")}) {
    EXPECT_EQ(KeySlot(key), slot) << key;
  }
  EXPECT_EQ(KeySlot(k.RateLimitsInShard(3)), KeySlot("|3"));
  // Shards: shard 0 is the model's own tag; the others get their own slots.
  EXPECT_EQ(QueueShard("llama", 0), "llama");
  EXPECT_EQ(QueueShard("llama", 2), "llama|2");
  EXPECT_NE(KeySlot(k.Payloads(QueueShard("llama", 1))), slot);
  EXPECT_EQ(KeySlot(k.Queue(QueueShard("llama", 1), 2)), KeySlot(k.Leases(QueueShard("llama", 1))));
  EXPECT_EQ(ShardOfRequest("anything", 1), 0u);
  EXPECT_EQ(ShardOfRequest("req-7", 3), Crc16("req-7") % 3);
}

// Queue members sort as strings the way their deadlines sort as numbers
// (the claim script compares members, never scores).
TEST(KeySpaceTest, QueueMembersSortLikeTheirDeadlines) {
  EXPECT_EQ(QueueMember(42, "a"), "0000000000000042|a");
  EXPECT_EQ(QueueMember(-5, "a"), "0000000000000000|a");  // past: clamped to 0
  EXPECT_EQ(QueueMember(20'000'000'000'000'000, "a"), "9999999999999999|a");
  EXPECT_EQ(QueueMember(1'764'893'000'000'000, "req-1"), "1764893000000000|req-1");
  const std::vector<int64_t> deadlines = {
      0, 9, 10, 99, 1'000'000, 1'764'893'000'000'000, 1'764'893'000'000'001, 9'999'999'999'999'999};
  for (size_t i = 1; i < deadlines.size(); ++i) {
    EXPECT_LT(QueueMember(deadlines[i - 1], "z"), QueueMember(deadlines[i], "a")) << deadlines[i];
  }
  EXPECT_LT(QueueMember(7, "a"), QueueMember(7, "b"));  // equal deadlines: by id
}

TEST_F(ClusterTest, KeySlotAgreesWithTheServer) {
  auto client = NewClient(cluster_->Addresses());
  ASSERT_NE(client, nullptr);
  std::mt19937 rng(7);
  std::vector<std::string> keys = {
      "", "{", "}", "{}", "a{b}c", "sluice:{m}:req", "sluice:rl:{key-9}", "ключ", "x{y"};
  for (int i = 0; i < 300; ++i) {
    std::string k;
    const int n = static_cast<int>(rng() % 24);
    for (int j = 0; j < n; ++j) k += "ab{}:|x9"[rng() % 8];
    keys.push_back(k);
  }
  for (const std::string& k : keys) {
    ReplyResult r = client->Call({"CLUSTER", "KEYSLOT", k});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->AsInt().value_or(-1), KeySlot(k)) << "key '" << k << "'";
  }
}

TEST_F(ClusterTest, EveryCommandGoesToItsSlotsMaster) {
  auto client = NewClient(cluster_->Addresses());
  ASSERT_NE(client, nullptr);
  std::map<std::string, int> per_master;
  Latch done;
  std::atomic<int> errors{0};
  for (int i = 0; i < 300; ++i) {
    client->Submit({"SET", "route:" + std::to_string(i), std::to_string(i)}, [&](ReplyResult r) {
      if (!r.ok() || r->is_error()) errors.fetch_add(1);
      done.Signal();
    });
  }
  ASSERT_TRUE(done.WaitFor(300, milliseconds(10'000)));
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(client->stats().redirects, 0u);  // no command went to the wrong node
  // Each key is on the master the client's map names (a direct GET there
  // would answer MOVED otherwise).
  std::map<std::string, std::unique_ptr<RedisConnection>> direct;
  for (int i = 0; i < 300; ++i) {
    const std::string key = "route:" + std::to_string(i);
    const std::string master = client->MasterOf(KeySlot(key));
    ASSERT_FALSE(master.empty());
    if (!direct.count(master)) direct[master] = Direct(master);
    ReplyResult r = direct[master]->Call({"GET", key});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->str, std::to_string(i)) << r->DebugString();
    ++per_master[master];
  }
  EXPECT_EQ(per_master.size(), 3u);  // spread over all three masters
}

// The slot moves to another master while the client's map is stale: the
// MOVED answer is followed, and the map learns the new owner.
TEST_F(ClusterTest, MovedIsFollowedAndTheMapLearnsTheNewOwner) {
  auto client = NewClient(cluster_->Addresses(), /*periodic_refresh_ms=*/600'000);
  ASSERT_NE(client, nullptr);
  const std::string key = KeyInSlot(KeySlot("moved-probe"), "moved-probe");
  const int slot = KeySlot(key);
  const std::string from = client->MasterOf(slot);
  std::string to;
  std::set<std::string> masters;
  for (int s = 0; s < kHashSlots; s += 97) masters.insert(client->MasterOf(s));
  for (const std::string& m : masters) {
    if (m != from) to = m;
  }
  ASSERT_FALSE(to.empty());
  const std::string to_id = NodeId(to);
  // The slot is empty: reassigning it needs no MIGRATE. The new owner first
  // takes a config epoch above every other node's, then the slot, then the
  // old owner lets it go. In any other order the old owner, whose epoch may
  // be higher, can answer the new owner's claim with an UPDATE that hands
  // the slot back before the bump, and the two nodes then redirect to each
  // other.
  ReplyResult bump = Direct(to)->Call({"CLUSTER", "BUMPEPOCH"});
  ASSERT_TRUE(bump.ok() && !bump->is_error())
      << (bump.ok() ? bump->DebugString() : bump.status().ToString());
  for (const std::string& m : {to, from}) {
    ReplyResult r = Direct(m)->Call({"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", to_id});
    ASSERT_TRUE(r.ok() && !r->is_error()) << (r.ok() ? r->DebugString() : r.status().ToString());
  }
  // Every node sends the slot's commands to the new owner before the client
  // acts: a MOVED makes the client refresh its map from some node, and one
  // that has not heard of the move yet would name the old owner again.
  const std::string moved = "MOVED " + std::to_string(slot) + " " + to;
  auto everyone_knows = [&] {
    for (const std::string& node : cluster_->Addresses()) {
      ReplyResult r = Direct(node)->Call({"GET", key});
      if (!r.ok()) return false;
      if (node == to ? r->is_error() : !(r->is_error() && r->str == moved)) return false;
    }
    return true;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (!everyone_knows()) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the move did not reach every node";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(client->MasterOf(slot), from);  // stale
  ReplyResult set = client->Call({"SET", key, "v"});
  ASSERT_TRUE(set.ok() && !set->is_error())
      << (set.ok() ? set->DebugString() : set.status().ToString());
  EXPECT_EQ(client->stats().redirects, 1u);
  EXPECT_EQ(client->MasterOf(slot), to);
  ReplyResult get = client->Call({"GET", key});
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->str, "v");
  EXPECT_EQ(client->stats().redirects, 1u);  // the second went straight there
  EXPECT_EQ(Direct(to)->Call({"GET", key})->str, "v");
}

// A slot being migrated: a key the old owner does not hold is answered ASK;
// the command (and a script) runs once on the importing node after ASKING,
// and the map still names the old owner.
TEST_F(ClusterTest, AskSendsOneCommandToTheImportingNode) {
  auto client = NewClient(cluster_->Addresses(), /*periodic_refresh_ms=*/600'000);
  ASSERT_NE(client, nullptr);
  const std::string key = KeyInSlot(KeySlot("ask-probe"), "ask-probe");
  const int slot = KeySlot(key);
  const std::string from = client->MasterOf(slot);
  std::set<std::string> masters;
  for (int s = 0; s < kHashSlots; s += 97) masters.insert(client->MasterOf(s));
  std::string to;
  for (const std::string& m : masters) {
    if (m != from) to = m;
  }
  const std::string from_id = NodeId(from), to_id = NodeId(to);
  const std::string s = std::to_string(slot);
  ASSERT_FALSE(Direct(to)->Call({"CLUSTER", "SETSLOT", s, "IMPORTING", from_id})->is_error());
  ASSERT_FALSE(Direct(from)->Call({"CLUSTER", "SETSLOT", s, "MIGRATING", to_id})->is_error());

  ReplyResult set = client->Call({"SET", key, "asked"});
  ASSERT_TRUE(set.ok() && !set->is_error())
      << (set.ok() ? set->DebugString() : set.status().ToString());
  EXPECT_EQ(client->stats().redirects, 1u);
  EXPECT_EQ(client->MasterOf(slot), from);  // ASK changes no map
  static const LuaScript kGet("get", "return redis.call('GET', KEYS[1])");
  ReplyResult got = client->CallScript(kGet, {key}, {});
  ASSERT_TRUE(got.ok() && !got->is_error()) << (got.ok() ? got->DebugString() : "");
  EXPECT_EQ(got->str, "asked");
  EXPECT_EQ(client->stats().redirects, 2u);

  // Finish the migration; the key is where the new owner serves it.
  for (const std::string& m : {to, from}) {
    ASSERT_FALSE(Direct(m)->Call({"CLUSTER", "SETSLOT", s, "NODE", to_id})->is_error());
  }
  EXPECT_EQ(client->Call({"GET", key})->str, "asked");
  EXPECT_EQ(client->MasterOf(slot), to);
}

// The queue path on a cluster: each model's scripts run in its slot, rate
// limits in their own calls (separate_limiter), token settlement after the
// complete step.
TEST_F(ClusterTest, QueueAndRateLimitsRunWithLimitsInTheirOwnCalls) {
  using queue_testing::Answer;
  using queue_testing::Request;
  auto client = NewClient(cluster_->Addresses());
  ASSERT_NE(client, nullptr);
  // As a gateway on a cluster: keys' states spread over 16 slots.
  ASSERT_FALSE(client->Call({"HDEL", KeySpace().RateLimitsInShard(Crc16("key-1") % 16), "key-1"})
                   ->is_error());
  auto limiter = std::move(RedisRateLimiter::Create({client.get(), KeySpace(), 16})).value();
  RedisQueueClient::Options q;
  q.connection = client.get();
  q.tier_count = 3;
  q.capacity = 100;
  q.separate_limiter = limiter.get();
  auto queue = std::move(RedisQueueClient::Create(q)).value();
  RedisBatchClaimer::Options c;
  c.connection = client.get();
  c.model = queue_testing::kModel;
  c.tiers = queue_testing::Tiers();
  c.max_block_ms = 500;
  c.separate_limiter = limiter.get();
  auto claimer = std::move(RedisBatchClaimer::Create(c)).value();

  auto enqueue = [&](const std::string& id) {
    RedisQueueClient::EnqueueOptions o;
    o.rate_limit = RedisQueueClient::RateLimitCheck{"key-1", RateLimitPolicy{0, 100}, 60};
    return queue_testing::EnqueueAndWait(*queue, Request(id, 1, 10'000), o);
  };
  RedisQueueClient::EnqueueResult a = enqueue("a");
  ASSERT_TRUE(a.status.ok()) << a.status.ToString();
  ASSERT_TRUE(a.rate_limit.has_value());
  EXPECT_EQ(a.rate_limit->tokens.remaining, 40);
  RedisQueueClient::EnqueueResult b = enqueue("b");
  EXPECT_EQ(b.status.code(), ErrorCode::kRateLimited);
  EXPECT_EQ(b.status.message(), RateLimitStatus(*b.rate_limit).message());

  RedisBatchClaimer::ClaimOptions co;
  co.max_batch = 8;
  Result<RedisBatchClaimer::Batch> batch = claimer->TryClaim(co);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->requests.size(), 1u);
  WireResult answer = Answer(batch->requests[0], "short");  // 3 tokens used
  answer.charged_key_id = "key-1";
  answer.charged_tokens = 60;
  answer.tokens_per_minute = 100;
  Result<RedisBatchClaimer::CompleteResult> done = claimer->Complete({answer});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->answered, 1u);
  // The settlement is its own (asynchronous) call: 57 tokens come back.
  const auto deadline = SteadyTime::now() + milliseconds(5'000);
  RedisQueueClient::EnqueueResult c2;
  for (int i = 0; i < 500 && SteadyTime::now() < deadline; ++i) {
    c2 = enqueue("c" + std::to_string(i));
    if (c2.status.ok()) break;
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_TRUE(c2.status.ok()) << c2.status.ToString();
  EXPECT_EQ(c2.rate_limit->tokens.remaining, 37);
  // A stale completion settles nothing twice.
  ASSERT_TRUE(claimer->Complete({answer}).ok());
  EXPECT_EQ(limiter->reconcile_errors(), 0u);
}

// A model's queue in 3 shards: the requests spread over the shards (and
// masters); one claimer drains them all from its home shard on, each
// exactly once; withdraw, renew, complete and the reaper find each request
// in its own shard.
TEST_F(ClusterTest, ShardedQueueSpreadsOverMastersAndAnyClaimerDrainsIt) {
  using queue_testing::Answer;
  using queue_testing::Ids;
  using queue_testing::Request;
  constexpr size_t kShards = 3;
  const std::string model = queue_testing::kModel;
  auto client = NewClient(cluster_->Addresses());
  ASSERT_NE(client, nullptr);
  RedisQueueClient::Options q;
  q.connection = client.get();
  q.tier_count = 3;
  q.capacity = 300;  // 100 per shard
  q.queue_shards = kShards;
  auto queue = std::move(RedisQueueClient::Create(q)).value();
  std::vector<RedisQueueClient::EnqueueItem> items;
  Latch enqueued;
  std::atomic<int> failed{0};
  for (int i = 0; i < 60; ++i) {
    items.push_back({Request("s" + std::to_string(i), i % 3, 10'000),
                     {},
                     [&](RedisQueueClient::EnqueueResult r) {
                       if (!r.status.ok()) failed.fetch_add(1);
                       enqueued.Signal();
                     }});
  }
  queue->EnqueueBatch(std::move(items));
  ASSERT_TRUE(enqueued.WaitFor(60, milliseconds(5'000)));
  EXPECT_EQ(failed.load(), 0);
  const KeySpace k;
  std::set<std::string> masters;
  for (size_t shard = 0; shard < kShards; ++shard) {
    const std::string payloads = k.Payloads(QueueShard(model, shard));
    ReplyResult n = client->Call({"HLEN", payloads});
    ASSERT_TRUE(n.ok());
    EXPECT_GT(n->AsInt().value_or(0), 5) << "shard " << shard;
    masters.insert(client->MasterOf(KeySlot(payloads)));
  }
  EXPECT_GE(masters.size(), 2u);  // these three tags hash to different masters

  // A hang-up in shard 2 is withdrawn from there.
  std::string in_shard_2;
  for (int i = 0; i < 60 && in_shard_2.empty(); ++i) {
    if (ShardOfRequest("s" + std::to_string(i), kShards) == 2) in_shard_2 = "s" + std::to_string(i);
  }
  Latch withdrawn;
  std::vector<std::string> removed;
  queue->WithdrawAsync(model, {in_shard_2}, [&](Result<std::vector<std::string>> r) {
    if (r.ok()) removed = *r;
    withdrawn.Signal();
  });
  ASSERT_TRUE(withdrawn.WaitFor(1, milliseconds(5'000)));
  EXPECT_EQ(removed, std::vector<std::string>{in_shard_2});

  RedisBatchClaimer::Options c;
  c.connection = client.get();
  c.model = model;
  c.tiers = queue_testing::Tiers();
  c.max_block_ms = 500;
  c.queue_shards = kShards;
  c.home_shard = 1;
  c.lease_us = 1'000;  // 1 ms: the reaper re-queues what is not completed
  auto claimer = std::move(RedisBatchClaimer::Create(c)).value();
  RedisBatchClaimer::ClaimOptions co;
  co.max_batch = 64;
  std::multiset<std::string> claimed;
  std::vector<WireResult> answers;
  for (int round = 0; round < 10; ++round) {
    Result<RedisBatchClaimer::Batch> b = claimer->TryClaim(co);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    if (b->empty()) break;
    for (const WireRequest& r : b->requests) {
      claimed.insert(r.id);
      EXPECT_EQ(r.model, model);
      answers.push_back(Answer(r, "out " + r.id));
    }
  }
  EXPECT_EQ(claimed.size(), 59u);
  EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()).size(), 59u);
  EXPECT_EQ(claimed.count(in_shard_2), 0u);

  // Leases of 1 ms ran out: the reaper puts every shard's back.
  RedisReaper::Options ro;
  ro.connection = client.get();
  ro.tier_count = 3;
  ro.queue_shards = kShards;
  auto reaper = std::move(RedisReaper::Create(ro)).value();
  std::this_thread::sleep_for(milliseconds(5));  // past the 1 ms leases
  Result<RedisReaper::Outcome> reaped = reaper->ReapOnce(model);
  ASSERT_TRUE(reaped.ok()) << reaped.status().ToString();
  EXPECT_EQ(reaped->requeued, 59u);
  // Answered while re-queued: each completion finds its request in its
  // shard's queue and answers it once.
  Result<RedisBatchClaimer::CompleteResult> done = claimer->Complete(answers);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->answered, 59u);
  EXPECT_EQ(done->stale, 0u);
  Result<RedisBatchClaimer::CompleteResult> again = claimer->Complete(answers);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->stale, 59u);
  EXPECT_EQ(again->stale_positions.size(), 59u);
  Result<RedisBatchClaimer::Batch> empty = claimer->TryClaim(co);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  EXPECT_EQ(empty->depth, 0u);
}

// A master crashes: commands for its slots fail fast (kUnavailable, never
// another error) until its replica is promoted, then succeed again without
// a restart of the client.
TEST(ClusterFailoverTest, CommandsFlowAgainOnceTheReplicaIsPromoted) {
  testing::RedisCluster cluster;
  ASSERT_TRUE(cluster.Start().ok());
  auto client = NewClient(cluster.Addresses());
  ASSERT_NE(client, nullptr);
  const std::string key = "failover-probe";
  const std::string master = client->MasterOf(KeySlot(key));
  ASSERT_TRUE(client->Call({"SET", key, "before"})->str == "OK");
  // Let the replica have it (replication is asynchronous).
  ReplyResult waited = Direct(master)->Call({"WAIT", "1", "2000"});
  ASSERT_TRUE(waited.ok() && waited->AsInt().value_or(0) >= 1)
      << (waited.ok() ? waited->DebugString() : waited.status().ToString());

  const int victim =
      cluster.IndexOfPort(static_cast<uint16_t>(std::stoi(master.substr(master.rfind(':') + 1))));
  ASSERT_GE(victim, 0);
  cluster.Kill(static_cast<size_t>(victim));
  const auto killed = SteadyTime::now();

  size_t unavailable = 0, other_errors = 0;
  std::optional<SteadyTime::time_point> back;
  for (int i = 0; i < 6'000 && SteadyTime::now() - killed < milliseconds(30'000); ++i) {
    ReplyResult r = client->Call({"SET", key, "after"});
    if (r.ok() && !r->is_error()) {
      back = SteadyTime::now();
      break;
    }
    if (!r.ok() && r.status().code() == ErrorCode::kUnavailable) {
      ++unavailable;
    } else {
      ++other_errors;
      ADD_FAILURE() << (r.ok() ? r->DebugString() : r.status().ToString());
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_TRUE(back.has_value()) << "no write succeeded within 30 s of the crash";
  EXPECT_GT(unavailable, 0u);  // the crash was noticed, not papered over
  EXPECT_EQ(other_errors, 0u);
  EXPECT_NE(client->MasterOf(KeySlot(key)), master);
  EXPECT_EQ(client->Call({"GET", key})->str, "after");
  std::printf(
      "[ failover ] writes refused for %lld ms (%zu kUnavailable answers)\n",
      static_cast<long long>(std::chrono::duration_cast<milliseconds>(*back - killed).count()),
      unavailable);
}

}  // namespace
}  // namespace sluice::redis
