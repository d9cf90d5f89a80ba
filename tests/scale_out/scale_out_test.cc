// Scale-out end to end: a real redis-server, `sluice worker` processes on
// the simulated accelerator and `sluice gateway` processes, all on loopback,
// driven over HTTP. Every wait is bounded; progress is polled with deadlines.
#include <csignal>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include "modelserver/model_server_process.h"
#include "redis/connection.h"
#include "testing/postgres_server.h"
#include "testing/redis_server.h"
#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using std::chrono::milliseconds;

const Headers kServiceAuth = {{"Authorization", "Bearer " + std::string(kServiceToken)}};

class ScaleOutTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(redis_.Start().ok()) << "redis-server did not start"; }

  // The test config plus the `redis:` section for this test's server.
  std::string Yaml(const TestConfig& c, int64_t lease_ms = 2'000) const {
    std::ostringstream y;
    y << c.Yaml() << "redis:\n"
      << "  host: 127.0.0.1\n"
      << "  port: " << redis_.port() << "\n"
      << "  key_prefix: it\n"
      << "  command_timeout_ms: 500\n"
      << "  lease_ms: " << lease_ms << "\n"
      << "  heartbeat_ttl_ms: 1500\n";
    return y.str();
  }

  // Starts `sluice <role>`; a fatal failure when it does not come up.
  SluiceProcess* Start(const std::string& role, const std::string& yaml) {
    SluiceProcessOptions o;
    o.binary_path = SLUICE_BINARY;
    o.subcommand = role;
    o.config_yaml = yaml;
    procs_.push_back(std::make_unique<SluiceProcess>(o));
    Status s = procs_.back()->Start();
    EXPECT_TRUE(s.ok()) << role << ": " << s.message();
    return s.ok() ? procs_.back().get() : nullptr;
  }

  // Starts `workers` workers and `gateways` gateways; returns the gateways'
  // ports once each sees every worker in the registry.
  std::vector<uint16_t> StartCluster(const std::string& yaml, int workers, int gateways) {
    for (int i = 0; i < workers; ++i) {
      if (Start("worker", yaml) == nullptr) return {};
    }
    std::vector<uint16_t> ports;
    for (int i = 0; i < gateways; ++i) {
      SluiceProcess* g = Start("gateway", yaml);
      if (g == nullptr) return {};
      ports.push_back(g->port());
      EXPECT_TRUE(PollUntil([&] { return HealthyWorkers(g->port()) == workers; },
                            milliseconds(10'000), milliseconds(50)))
          << "gateway never saw " << workers << " workers";
    }
    return ports;
  }

  static int64_t HealthyWorkers(uint16_t port) {
    HttpClient client(port, milliseconds(2'000));
    Result<Response> r = client.Get("/internal/health", kServiceAuth);
    if (!r.ok()) return -1;
    boost::system::error_code ec;
    json::value v = json::parse(r->body, ec);
    if (ec || !v.is_object() || !v.as_object().contains("healthy_workers")) return -1;
    return v.as_object().at("healthy_workers").to_number<int64_t>();
  }

  // Redis's INFO commandstats as name -> calls.
  std::map<std::string, int64_t> CommandStats() {
    redis::RedisConnection::Options o;
    o.port = redis_.port();
    auto c = redis::RedisConnection::Create(o);
    std::map<std::string, int64_t> out;
    if (!c.ok()) return out;
    redis::ReplyResult r = (*c)->Call({"INFO", "commandstats"});
    if (!r.ok()) return out;
    std::istringstream in(r->str);
    std::string line;
    while (std::getline(in, line)) {
      // cmdstat_evalsha:calls=123,usec=...
      if (line.rfind("cmdstat_", 0) != 0) continue;
      size_t colon = line.find(':'), calls = line.find("calls=");
      if (colon == std::string::npos || calls == std::string::npos) continue;
      out[line.substr(8, colon - 8)] = std::stoll(line.substr(calls + 6));
    }
    return out;
  }
  void ResetCommandStats() {
    redis::RedisConnection::Options o;
    o.port = redis_.port();
    auto c = redis::RedisConnection::Create(o);
    if (c.ok()) (void)(*c)->Call({"CONFIG", "RESETSTAT"});
  }

  RedisServer redis_;
  std::vector<std::unique_ptr<SluiceProcess>> procs_;
};

// A fast simulated accelerator: 2 devices per worker, 5 ms + 0.1 ms/item.
TestConfig FastSim() {
  TestConfig c;
  c.devices = 2;
  c.fixed_latency_us = 5'000;
  c.per_item_latency_us = 100;
  c.max_batch_delay_us = 5'000;
  return c;
}

std::vector<LoadRequest> Requests(const std::string& prefix, size_t n,
                                  std::string_view key = kEnterpriseKey) {
  std::vector<LoadRequest> out;
  for (size_t i = 0; i < n; ++i) out.push_back(InferenceRequest(key, prefix + std::to_string(i)));
  return out;
}

// Sum of `name` over /metrics of a gateway (or a worker).
double GatewayMetric(uint16_t port, const std::string& name) {
  HttpClient client(port, milliseconds(2'000));
  Result<Response> r = client.Get("/metrics", kServiceAuth);
  if (!r.ok()) return -1;
  double sum = 0;
  std::istringstream in(r->body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) == 0 && line.size() > name.size() &&
        (line[name.size()] == '{' || line[name.size()] == ' ')) {
      sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return sum;
}

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
    stale += GatewayMetric(worker, "sluice_redis_dropped_results_total");
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
  LoadClient a({gw[0], 4, milliseconds(30'000)}, Requests("r-", 100, kFreeKey));
  LoadClient b({gw[1], 4, milliseconds(30'000)}, Requests("r-", 100, kFreeKey));
  a.Start();
  b.Start();
  std::vector<LoadResult> ra = a.Wait(), rb = b.Wait();
  int ok = 0, limited = 0;
  for (const auto* results : {&ra, &rb}) {
    for (const LoadResult& r : *results) {
      if (r.status == 200) ++ok;
      if (r.status == 429) {
        ++limited;
        EXPECT_TRUE(IsError(r.status, r.body, 429, "rate_limited")) << r.body;
        EXPECT_TRUE(r.headers.count("retry-after")) << "429 without Retry-After";
        EXPECT_EQ(r.headers.count("x-ratelimit-limit") ? r.headers.at("x-ratelimit-limit") : "",
                  "60");
      }
    }
  }
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

// Runs `sql` with psql against `port`; the output's lines, or nullopt when
// psql failed (the server is down).
std::optional<std::vector<std::string>> Psql(uint16_t port, const std::string& sql) {
  const std::string cmd = "psql -h 127.0.0.1 -p " + std::to_string(port) +
                          " -U postgres -d postgres -tAq -c \"" + sql + "\" 2>/dev/null";
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return std::nullopt;
  std::vector<std::string> lines;
  std::string line;
  char buf[512];
  while (std::fgets(buf, sizeof(buf), f) != nullptr && lines.size() < 100'000) {
    line += buf;  // a row longer than buf comes in pieces
    if (line.back() != '\n') continue;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    lines.push_back(std::move(line));
    line.clear();
  }
  if (!line.empty()) lines.push_back(std::move(line));
  return ::pclose(f) == 0 ? std::optional(lines) : std::nullopt;
}

int64_t PsqlCount(uint16_t port, const std::string& sql) {
  auto rows = Psql(port, sql);
  return rows && rows->size() == 1 ? std::stoll((*rows)[0]) : -1;
}

TEST_F(ScaleOutTest, PostgresLogHasEveryRequestAndServingSurvivesADatabaseOutage) {
  PostgresServer pg;
  ASSERT_TRUE(pg.Start().ok()) << "PostgreSQL did not start";
  TestConfig c = FastSim();
  c.request_log = "postgres";
  c.postgres_url = pg.url();
  std::vector<uint16_t> gw = StartCluster(Yaml(c), 3, 2);
  ASSERT_EQ(gw.size(), 2u);

  // Phase 1: every request lands in PostgreSQL with its status; the workers
  // write the batch rows.
  std::set<std::string> ids;
  auto run = [&](const std::string& prefix, size_t per_gateway) {
    LoadClient a({gw[0], 32, milliseconds(60'000)}, Requests(prefix + "a-", per_gateway));
    LoadClient b({gw[1], 32, milliseconds(60'000)}, Requests(prefix + "b-", per_gateway));
    a.Start();
    b.Start();
    std::vector<LoadResult> ra = a.Wait(), rb = b.Wait();
    for (const std::vector<LoadResult>* results : {&ra, &rb}) {
      for (const LoadResult& r : *results) {
        EXPECT_EQ(r.status, 200) << r.body << r.error;
        if (r.headers.count("x-request-id")) ids.insert(r.headers.at("x-request-id"));
      }
    }
  };
  run("pg1-", 500);
  ASSERT_EQ(ids.size(), 1'000u);
  EXPECT_TRUE(PollUntil(
      [&] {
        return PsqlCount(pg.port(),
                         "SELECT count(*) FROM requests WHERE status = 'completed' AND "
                         "http_status = 200") == 1'000;
      },
      milliseconds(15'000), milliseconds(100)));
  auto logged = Psql(pg.port(), "SELECT id FROM requests");
  ASSERT_TRUE(logged.has_value());
  EXPECT_EQ(std::set<std::string>(logged->begin(), logged->end()), ids);
  EXPECT_TRUE(PollUntil(
      [&] { return PsqlCount(pg.port(), "SELECT COALESCE(SUM(size), 0) FROM batches") == 1'000; },
      milliseconds(15'000), milliseconds(100)));

  // Phase 2: the database goes away; serving carries on and the backlog is
  // counted; when it returns the backlog is written.
  ASSERT_TRUE(pg.Stop().ok());
  run("pg2-", 250);
  ASSERT_EQ(ids.size(), 1'500u);
  EXPECT_TRUE(PollUntil(
      [&] {
        return GatewayMetric(gw[0], "sluice_request_log_buffered") > 0 ||
               GatewayMetric(gw[0], "sluice_request_log_flush_errors_total") > 0;
      },
      milliseconds(5'000), milliseconds(50)));
  ASSERT_TRUE(pg.Start().ok());
  EXPECT_TRUE(
      PollUntil([&] { return PsqlCount(pg.port(), "SELECT count(*) FROM requests") == 1'500; },
                milliseconds(20'000), milliseconds(100)));
  EXPECT_EQ(GatewayMetric(gw[0], "sluice_request_log_dropped_total"), 0);
}

// A backend's error text in Cyrillic, CJK and an emoji, long enough that
// every limit on the way cuts it: the per-item error reaches the client of
// another process (over Redis) as valid UTF-8, and the batch error's text
// reaches PostgreSQL through the gateway's log, never the client.
TEST_F(ScaleOutTest, MultibyteBackendErrorsReachTheGatewayAndPostgresIntact) {
  const std::string phrase =
      "\xD0\xBE\xD1\x88\xD0\xB8\xD0\xB1\xD0\xBA\xD0\xB0 "  // ошибка
      "\xE6\xA8\xA1\xE5\x9E\x8B "                          // 模型
      "\xF0\x9F\x92\xA5 ";                                 // 💥
  std::string message = "xy";  // 2 + 25 * k: a 500-byte cut lands inside the emoji
  for (int i = 0; i < 40; ++i) message += phrase;
  modelserver::testing::ModelServerProcess server(
      SLUICE_BINARY, {"--model", std::string(kModel), "--model-version", std::string(kModelVersion),
                      "--item-error-rate", "1", "--error-message", message});
  ASSERT_TRUE(server.Start().ok());
  PostgresServer pg;
  ASSERT_TRUE(pg.Start().ok()) << "PostgreSQL did not start";
  TestConfig c = FastSim();
  c.request_log = "postgres";
  c.postgres_url = pg.url();
  c.backend_yaml = "    backend:\n      kind: http\n      endpoints:\n        - " + server.url() +
                   "/v1/batch\n      request_timeout_ms: 2000\n"
                   "    retry:\n      max_retries: 0\n";
  std::vector<uint16_t> gw = StartCluster(Yaml(c), 1, 1);
  ASSERT_EQ(gw.size(), 1u);
  HttpClient client(gw[0], milliseconds(10'000));
  const Headers auth = {{"Authorization", "Bearer " + std::string(kPaidKey)}};

  // A per-item error is the model's answer: the client reads it, cut on a
  // character boundary (Boost.JSON's parser rejects invalid UTF-8).
  Result<Response> item = client.Post("/v1/inference", InferenceBody(kModel, "a"), auth);
  ASSERT_TRUE(item.ok()) << item.status().ToString();
  ASSERT_TRUE(IsError(*item, 502, "backend_error")) << item->body;
  const std::string item_message = ErrorMessage(item->body);
  EXPECT_EQ(item_message.rfind("inference API failed this item: xy" + phrase, 0), 0u)
      << item_message;
  EXPECT_LE(item_message.size(), std::string("inference API failed this item: ").size() + 500);
  EXPECT_GE(item_message.size(), std::string("inference API failed this item: ").size() + 480);
  EXPECT_EQ(item_message.find("127.0.0.1"), std::string::npos) << item_message;

  // A whole-batch error: the client learns only what happened; the backend's
  // words and address reach the log.
  HttpClient admin(server.port());
  Result<Response> set = admin.Post("/admin/faults", R"({"item_error_rate": 0, "error_rate": 1})",
                                    {{"Content-Type", "application/json"}});
  ASSERT_TRUE(set.ok() && set->status == 200);
  Result<Response> batch = client.Post("/v1/inference", InferenceBody(kModel, "b"), auth);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_TRUE(IsError(*batch, 502, "backend_error")) << batch->body;
  EXPECT_EQ(
      ErrorMessage(batch->body),
      "model '" + std::string(kModel) + "' failed after 1 attempt (the backend reported an error)");
  const std::string batch_id = ErrorRequestId(batch->body);
  const std::string item_id = ErrorRequestId(item->body);
  ASSERT_TRUE(IsRequestId(batch_id) && IsRequestId(item_id));

  // Both rows land in PostgreSQL with the text intact.
  auto error_of = [&](const std::string& id) -> std::string {
    auto rows = Psql(pg.port(), "SELECT error FROM requests WHERE id = '" + id + "'");
    return rows && rows->size() == 1 ? (*rows)[0] : "";
  };
  EXPECT_TRUE(PollUntil([&] { return !error_of(item_id).empty() && !error_of(batch_id).empty(); },
                        milliseconds(15'000), milliseconds(100)));
  EXPECT_NE(error_of(item_id).find("xy" + phrase + phrase), std::string::npos) << error_of(item_id);
  const std::string batch_error = error_of(batch_id);
  EXPECT_NE(batch_error.find("xy" + phrase + phrase), std::string::npos) << batch_error;
  EXPECT_NE(batch_error.find(server.url()), std::string::npos) << batch_error;
  EXPECT_EQ(GatewayMetric(gw[0], "sluice_request_log_rejected_total"), 0);

  // The failed batch's request is a dead letter of the worker, and the
  // gateway serves it from Redis with the backend's words for operators.
  std::optional<json::object> letter;
  EXPECT_TRUE(PollUntil(
      [&] {
        Result<Response> r = client.Get("/internal/dead-letters", kServiceAuth);
        if (!r.ok() || r->status != 200) return false;
        json::value v = json::parse(r->body);
        for (const json::value& e : v.at("entries").as_array()) {
          if (e.at("request_id").as_string() == batch_id) letter = e.as_object();
        }
        return letter.has_value();
      },
      milliseconds(5'000), milliseconds(50)));
  ASSERT_TRUE(letter.has_value());
  EXPECT_EQ(letter->at("model").as_string(), kModel);
  EXPECT_EQ(letter->at("key_id").as_string(), "demo-paid");
  EXPECT_EQ(letter->at("input").as_string(), "b");
  EXPECT_EQ(letter->at("attempts").as_int64(), 1);
  EXPECT_NE(std::string(letter->at("last_error").as_string()).find("xy" + phrase),
            std::string::npos);
  Result<Response> anonymous = client.Get("/internal/dead-letters");
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->status, 401);
}

// A client that hangs up while its request waits in Redis (no worker runs):
// the gateway withdraws it from the shared queue and counts a 499; a client
// that stays is still queued and answered once a worker comes.
TEST_F(ScaleOutTest, ClientThatHangsUpWhileQueuedIsWithdrawnFromRedis) {
  TestConfig c = FastSim();
  c.watch_client_min_queue_depth = 0;  // watch every request
  const std::string yaml = Yaml(c);
  std::vector<uint16_t> gw = StartCluster(yaml, /*workers=*/0, /*gateways=*/1);
  ASSERT_EQ(gw.size(), 1u);
  redis::RedisConnection::Options o;
  o.port = redis_.port();
  auto redis = std::move(redis::RedisConnection::Create(o)).value();
  const std::string entries = "it:{" + std::string(kModel) + "}:req";
  auto queued = [&] {
    redis::ReplyResult r = redis->Call({"HLEN", entries});
    return r.ok() ? r->AsInt().value_or(-1) : -1;
  };

  LoadClient stays({.port = gw[0], .connections = 1}, {InferenceRequest(kPaidKey, "stays")});
  stays.Start();
  ASSERT_TRUE(PollUntil([&] { return queued() == 1; }, milliseconds(5'000)));
  asio::io_context ioc;
  asio::ip::tcp::socket socket(ioc);
  socket.connect({asio::ip::make_address("127.0.0.1"), gw[0]});
  const std::string body = InferenceBody(kModel, "abandoned");
  asio::write(socket, asio::buffer("POST /v1/inference HTTP/1.1\r\nHost: localhost\r\n"
                                   "Authorization: Bearer " +
                                   std::string(kPaidKey) +
                                   "\r\nContent-Type: application/json\r\nContent-Length: " +
                                   std::to_string(body.size()) + "\r\n\r\n" + body));
  ASSERT_TRUE(PollUntil([&] { return queued() == 2; }, milliseconds(5'000)));
  socket.set_option(asio::socket_base::linger(true, 0));  // RST: the client is gone
  socket.close();

  ASSERT_TRUE(PollUntil([&] { return queued() == 1; }, milliseconds(5'000)))
      << "the abandoned request is still in Redis";
  auto answered_499 = [&] {
    HttpClient client(gw[0], milliseconds(2'000));
    Result<Response> r = client.Get("/metrics", kServiceAuth);
    if (!r.ok()) return -1.0;
    double sum = 0;
    std::istringstream in(r->body);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("sluice_requests_total{", 0) == 0 &&
          line.find("status=\"499\"") != std::string::npos) {
        sum += std::stod(line.substr(line.rfind(' ') + 1));
      }
    }
    return sum;
  };
  EXPECT_TRUE(PollUntil([&] { return answered_499() == 1; }, milliseconds(5'000)));

  // A worker arrives: the client that stayed is answered.
  ASSERT_NE(Start("worker", yaml), nullptr);
  std::vector<LoadResult> done = stays.Wait();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(IsCompletion(done[0].status, done[0].body, "stays", kDefaultMaxTokens))
      << done[0].status << " " << done[0].body;
  EXPECT_EQ(queued(), 0);
}

TEST_F(ScaleOutTest, ServeWithARedisSectionRunsBothRolesInOneProcess) {
  SluiceProcess* serve = Start("serve", Yaml(FastSim()));
  ASSERT_NE(serve, nullptr);
  ASSERT_TRUE(PollUntil([&] { return HealthyWorkers(serve->port()) == 1; }, milliseconds(10'000),
                        milliseconds(50)));
  std::vector<LoadResult> results =
      LoadClient::Run({serve->port(), 32, milliseconds(30'000)}, Requests("one-", 300));
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_TRUE(IsCompletion(results[i].status, results[i].body, "one-" + std::to_string(i),
                             kDefaultMaxTokens))
        << results[i].body << results[i].error;
  }
  // Its queue is in Redis: a separate worker can join and serve it too.
  ASSERT_NE(Start("worker", Yaml(FastSim())), nullptr);
  EXPECT_TRUE(PollUntil([&] { return HealthyWorkers(serve->port()) == 2; }, milliseconds(10'000),
                        milliseconds(50)));
  ASSERT_TRUE(serve->Terminate());
  EXPECT_EQ(serve->WaitExit(milliseconds(15'000)), 0);
}

}  // namespace
}  // namespace sluice::testing
