// Scale-out end to end: a real redis-server, `sluice worker` processes on
// the simulated accelerator and `sluice gateway` processes, all on loopback,
// driven over HTTP: throughput across gateways, dead workers, long batches,
// shared limits, a Redis restart. Every wait is bounded; progress is polled
// with deadlines. The fixture: scale_out_fixture.h.
#include "tests/scale_out/scale_out_fixture.h"

namespace sluice::testing {
namespace {

using namespace scale_out;  // NOLINT(google-build-using-namespace): test helpers
namespace asio = boost::asio;
namespace json = boost::json;
using std::chrono::milliseconds;

TEST_F(ScaleOutTest, FiveThousandRequestsOverTwoGatewaysAllGetTheirOwnOutput) {
  const std::string yaml = Yaml(FastSim());
  std::vector<uint16_t> gw = StartCluster(yaml, 3, 2);
  ASSERT_EQ(gw.size(), 2u);
  ResetCommandStats();
  constexpr size_t kPerGateway = 2'500;
  LoadClient a({gw[0], 64, milliseconds(60'000)}, Requests("a-", kPerGateway));
  LoadClient b({gw[1], 64, milliseconds(60'000)}, Requests("b-", kPerGateway));
  a.Start();
  b.Start();
  std::vector<LoadResult> ra = a.Wait(), rb = b.Wait();
  std::set<std::string> ids;
  size_t ok = 0;
  for (auto [results, prefix] : {std::pair{&ra, "a-"}, std::pair{&rb, "b-"}}) {
    for (size_t i = 0; i < results->size(); ++i) {
      const LoadResult& r = (*results)[i];
      const std::string input = prefix + std::to_string(i);
      EXPECT_TRUE(IsCompletion(r.status, r.body, input, kDefaultMaxTokens)) << r.error;
      ok += r.status == 200;
      ids.insert(r.headers.count("x-request-id") ? r.headers.at("x-request-id") : "");
    }
  }
  EXPECT_EQ(ok, 2 * kPerGateway);
  EXPECT_EQ(ids.size(), 2 * kPerGateway) << "request ids are not unique across gateways";
  // Each gateway's health names its shared state: Redis up, its result
  // channel subscribed, nothing left waiting, every worker seen.
  for (const uint16_t port : gw) {
    HttpClient client(port, milliseconds(2'000));
    Result<Response> health = client.Get("/internal/health", kServiceAuth);
    ASSERT_TRUE(health.ok() && health->status == 200);
    const json::object h = json::parse(health->body).as_object();
    const json::object& redis = h.at("redis").as_object();
    EXPECT_EQ(redis.at("state").as_string(), "up") << health->body;
    EXPECT_TRUE(redis.at("subscribed").as_bool()) << health->body;
    EXPECT_EQ(redis.at("pending_requests").to_number<int64_t>(), 0) << health->body;
    EXPECT_FALSE(redis.at("gateway_id").as_string().empty()) << health->body;
    EXPECT_EQ(h.at("healthy_workers").to_number<int64_t>(), 3) << health->body;
  }

  // Redis commands per request (INFO commandstats counts commands run inside
  // scripts too; "top level" are those clients send).
  std::map<std::string, int64_t> stats = CommandStats();
  int64_t total = 0, top = 0;
  std::string table;
  for (const auto& [name, calls] : stats) {
    total += calls;
    table += " " + name + "=" + std::to_string(calls);
    if (name == "evalsha" || name == "eval" || name == "blpop" || name == "ping" ||
        name == "script|load" || name == "script" || name == "client|setname" ||
        name == "subscribe" || name == "hello") {
      top += calls;
    }
  }
  const double n = static_cast<double>(2 * kPerGateway);
  std::printf("redis commandstats:%s\n", table.c_str());
  std::printf("redis commands per request: top-level %.3f, all (incl. in-script) %.3f\n",
              static_cast<double>(top) / n, static_cast<double>(total) / n);
  EXPECT_LE(static_cast<double>(top) / n, 2.0);
}

// A worker killed mid-batch costs no request: it stops renewing its
// leases, the batch goes back to the head of the queue within about a lease
// and runs on another worker well inside each request's 4 s deadline.
TEST_F(ScaleOutTest, KilledWorkerMidBatchEveryRequestAnsweredExactlyOnce) {
  TestConfig c = FastSim();
  c.fixed_latency_us = 150'000;  // long batches: the kill lands mid-batch
  c.accelerator_timeout_ms = 1'000;
  c.latency_budget_ms = 3'000;
  c.max_queue_age_ms = 3'500;
  c.total_timeout_ms = 4'000;
  const std::string yaml = Yaml(c, /*lease_ms=*/1'000);
  std::vector<uint16_t> gw = StartCluster(yaml, 3, 1);
  ASSERT_EQ(gw.size(), 1u);
  constexpr size_t kRequests = 900;
  LoadClient load({gw[0], 120, milliseconds(60'000)}, Requests("k-", kRequests));
  load.Start();
  ASSERT_TRUE(PollUntil([&] { return load.responses_received() >= 100; }, milliseconds(20'000)));
  ASSERT_TRUE(procs_[0]->Terminate(SIGKILL));  // the first worker, mid-batch
  std::vector<LoadResult> results = load.Wait();
  std::map<std::string, int> per_id;
  for (size_t i = 0; i < results.size(); ++i) {
    const LoadResult& r = results[i];
    EXPECT_TRUE(IsCompletion(r.status, r.body, "k-" + std::to_string(i), kDefaultMaxTokens))
        << r.error;
    if (r.headers.count("x-request-id")) ++per_id[r.headers.at("x-request-id")];
  }
  EXPECT_EQ(per_id.size(), kRequests) << "lost or duplicated responses";
  for (const auto& [id, n] : per_id) EXPECT_EQ(n, 1) << id;
}

// Batches that take longer than the lease keep it: each worker renews what
// it holds, so nothing is reaped and claimed again by the other worker.
TEST_F(ScaleOutTest, BatchesLongerThanTheLeaseAreNotReaped) {
  TestConfig c = FastSim();
  c.devices = 1;
  // 1.8 s per batch, lease 600 ms (renewed every 150 ms): a lease is lost
  // only if a worker stalls for 600 ms, which even sanitizer builds under
  // ctest -j2 do not.
  c.fixed_latency_us = 1'800'000;
  c.accelerator_timeout_ms = 4'000;
  std::vector<uint16_t> gw = StartCluster(Yaml(c, /*lease_ms=*/600), 2, 1);
  ASSERT_EQ(gw.size(), 1u);
  std::vector<LoadResult> results =
      LoadClient::Run({gw[0], 16, milliseconds(60'000)}, Requests("long-", 16));
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_TRUE(IsCompletion(results[i].status, results[i].body, "long-" + std::to_string(i),
                             kDefaultMaxTokens))
        << results[i].body << results[i].error;
  }
  double renewals = 0, claimed = 0, stale = 0, batched = 0;
  for (int w = 0; w < 2; ++w) {
    const uint16_t worker = procs_[w]->port();
    batched += GatewayMetric(worker, "sluice_batch_size_sum");  // as in `serve`
    renewals += GatewayMetric(worker, "sluice_worker_lease_renewals_total");
    claimed += GatewayMetric(worker, "sluice_worker_requests_claimed_total");
    stale += GatewayMetric(worker, "sluice_worker_undelivered_results_total");
  }
  const std::string seen = "renewals " + std::to_string(renewals) + ", claimed " +
                           std::to_string(claimed) + ", batched " + std::to_string(batched) +
                           ", stale " + std::to_string(stale);
  EXPECT_GT(renewals, 0) << seen;
  // A lease lost mid-batch would have been claimed (and run) again by the
  // worker with a free device.
  EXPECT_EQ(claimed, 16) << seen;
  EXPECT_EQ(batched, 16) << seen;
  EXPECT_EQ(stale, 0) << seen;
}

TEST_F(ScaleOutTest, RateLimitIsSharedAcrossGateways) {
  TestConfig c = FastSim();
  c.free_tier.requests_per_minute = 60;
  const std::string yaml = Yaml(c);
  std::vector<uint16_t> gw = StartCluster(yaml, 1, 2);
  ASSERT_EQ(gw.size(), 2u);
  const auto [ok, limited] = FreeKeyBurstOverTwoGateways(gw, 60);
  EXPECT_EQ(ok, 60) << "the key's 60/min is not shared by both gateways";
  EXPECT_EQ(limited, 140);
}

TEST_F(ScaleOutTest, RedisRestartUnderLoadAnswers503FastThenRecovers) {
  TestConfig c = FastSim();
  c.latency_budget_ms = 2'000;
  c.max_queue_age_ms = 2'000;
  c.total_timeout_ms = 3'000;
  const std::string yaml = Yaml(c);
  std::vector<uint16_t> gw = StartCluster(yaml, 3, 1);
  ASSERT_EQ(gw.size(), 1u);

  LoadClient load({gw[0], 16, milliseconds(60'000)}, Requests("d-", 8'000));
  load.Start();
  ASSERT_TRUE(PollUntil([&] { return load.responses_received() >= 300; }, milliseconds(20'000)));
  redis_.Stop();
  // Down: new requests are refused at once, not left to time out.
  HttpClient probe(gw[0], milliseconds(5'000));
  int refused = 0;
  for (int i = 0; i < 20; ++i) {
    const auto start = std::chrono::steady_clock::now();
    Result<Response> r =
        probe.Request("POST", "/v1/inference", InferenceBody(kModel, "down"),
                      {{"Authorization", "Bearer " + std::string(kEnterpriseKey)}});
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(r.ok()) << r.status().message();
    if (r->status == 503) {
      ++refused;
      EXPECT_TRUE(IsError(*r, 503, "unavailable")) << r->body;
      EXPECT_NE(r->body.find("redis_unavailable"), std::string::npos) << r->body;
      EXPECT_LT(took, milliseconds(1'500)) << "a 503 while Redis is down took too long";
    }
  }
  EXPECT_GE(refused, 15);
  ASSERT_TRUE(redis_.Restart().ok());
  // Recovers by itself: a request succeeds again within seconds.
  EXPECT_TRUE(PollUntil(
      [&] {
        auto r = probe.Request("POST", "/v1/inference", InferenceBody(kModel, "up"),
                               {{"Authorization", "Bearer " + std::string(kEnterpriseKey)}});
        return r.ok() && r->status == 200;
      },
      milliseconds(15'000), milliseconds(100)));
  std::vector<LoadResult> during = load.Wait();
  size_t other = 0;
  for (const LoadResult& r : during) {
    other += r.status != 200 && r.status != 503 && r.status != 504;
  }
  EXPECT_EQ(other, 0u) << "only 200, 503 (down) or 504 (in flight at the stop) expected";
  // Full recovery: a fresh burst is all served.
  std::vector<LoadResult> after =
      LoadClient::Run({gw[0], 32, milliseconds(30'000)}, Requests("u-", 1'000));
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_TRUE(
        IsCompletion(after[i].status, after[i].body, "u-" + std::to_string(i), kDefaultMaxTokens));
  }
}

// `sluice bench-redis` drains every request it enqueues in both of its
// modes, leaves no key behind, and in steady state keeps the queue short:
// the deepest queue it reports (as the claim script counted it) stays
// within --queue-depth plus one enqueue call, where enqueue-then-drain
// holds every request at once.
TEST_F(ScaleOutTest, BenchRedisDrainsEveryRequestAndSteadyStateKeepsTheQueueShort) {
  // The report's row for enqueue batch 16, claim batch 8, 400 requests, 10
  // keys: its cells, or empty when the command failed or printed no row.
  auto run = [&](const std::string& extra) {
    // Bounded: `timeout` ends a run that hangs.
    const std::string cmd = "timeout 120 " + std::string(SLUICE_BINARY) + " bench-redis --port " +
                            std::to_string(redis_.port()) +
                            " --batches 16 --claim-batch 8 --requests 400 --keys 10 " + extra +
                            " 2>&1";
    FILE* f = ::popen(cmd.c_str(), "r");
    if (f == nullptr) return std::vector<std::string>{};
    std::string out;
    char buf[512];
    while (std::fgets(buf, sizeof(buf), f) != nullptr && out.size() < 100'000) out += buf;
    if (::pclose(f) != 0) {
      ADD_FAILURE() << "bench-redis " << extra << " failed:\n" << out;
      return std::vector<std::string>{};
    }
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("| 16 | 8 |", 0) != 0) continue;
      std::vector<std::string> cells;
      std::istringstream row(line.substr(1));
      std::string cell;
      while (std::getline(row, cell, '|')) {
        cell.erase(0, cell.find_first_not_of(' '));
        cell.erase(cell.find_last_not_of(' ') + 1);
        cells.push_back(cell);
      }
      return cells;
    }
    ADD_FAILURE() << "no report row in:\n" << out;
    return std::vector<std::string>{};
  };
  auto db_size = [&] {
    redis::RedisConnection::Options o;
    o.port = redis_.port();
    auto c = redis::RedisConnection::Create(o);
    if (!c.ok()) return int64_t{-1};
    redis::ReplyResult r = (*c)->Call({"DBSIZE"});
    return r.ok() ? r->integer : int64_t{-1};
  };

  // Cells: enqueue batch, claim batch, deepest queue, requests, keys,
  // µs enqueue, µs claim + complete, µs total, req/s.
  std::vector<std::string> phases = run("");
  ASSERT_EQ(phases.size(), 9u);
  EXPECT_EQ(phases[2], "400");
  EXPECT_EQ(phases[3], "400");
  EXPECT_NE(phases[5], "—");
  EXPECT_NE(phases[6], "—");
  EXPECT_EQ(db_size(), 0);

  // Steady state at depth 40: enqueue calls of 16 while fewer than 40 wait
  // (16, 32, 48), then claims of 8 down to 20 or fewer (48 -> 16), and so
  // on: the queue is never deeper than 48. Each round's enqueues are
  // answered before its claims, so this does not depend on timing.
  std::vector<std::string> steady = run("--queue-depth 40");
  ASSERT_EQ(steady.size(), 9u);
  EXPECT_EQ(steady[2], "48");
  EXPECT_EQ(steady[3], "400");
  EXPECT_EQ(steady[5], "—");
  EXPECT_EQ(steady[6], "—");
  EXPECT_EQ(db_size(), 0);
}

}  // namespace
}  // namespace sluice::testing
