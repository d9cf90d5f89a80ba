// Scale-out parity with the single process, end to end on loopback: the
// request log in PostgreSQL through an outage, backend errors and dead
// letters seen from a gateway, a client that hangs up while queued in Redis,
// and `serve` with a `redis:` section. The fixture: scale_out_fixture.h.
#include "tests/scale_out/scale_out_fixture.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "testing/otlp_receiver.h"

namespace sluice::testing {
namespace {

using namespace scale_out;  // NOLINT(google-build-using-namespace): test helpers
namespace asio = boost::asio;
namespace json = boost::json;
using std::chrono::milliseconds;

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
  // One registry, on the gateway's port: the gateway's series and its
  // worker's (they had a registry each, the worker's on a port of its own).
  EXPECT_EQ(GatewayMetric(serve->port(), "sluice_redis_enqueued_requests_total"), 300);
  EXPECT_EQ(GatewayMetric(serve->port(), "sluice_worker_requests_claimed_total"), 300);
  EXPECT_EQ(GatewayMetric(serve->port(), "sluice_batch_size_sum"), 300);
  EXPECT_GT(GatewayMetric(serve->port(), "sluice_redis_commands_total"), 0);
  // Its queue is in Redis: a separate worker can join and serve it too.
  ASSERT_NE(Start("worker", Yaml(FastSim())), nullptr);
  EXPECT_TRUE(PollUntil([&] { return HealthyWorkers(serve->port()) == 2; }, milliseconds(10'000),
                        milliseconds(50)));
  ASSERT_TRUE(serve->Terminate());
  EXPECT_EQ(serve->WaitExit(milliseconds(15'000)), 0);
}

// `serve` on Redis drains its gateway first: its requests still queued in
// Redis are served by its own worker, which stops claiming only after them.
TEST_F(ScaleOutTest, ServeOnRedisAnswersItsQueuedRequestsBeforeItsWorkerStops) {
  TestConfig c;
  c.devices = 1;
  c.max_batch_size = 4;
  c.fixed_latency_us = 1'000'000;  // 12 requests: three batches, one after another
  c.per_item_latency_us = 0;
  c.max_batch_delay_us = 1'000;
  c.drain_timeout_ms = 10'000;
  SluiceProcess* serve = Start("serve", Yaml(c, /*lease_ms=*/5'000));
  ASSERT_NE(serve, nullptr);
  ASSERT_TRUE(PollUntil([&] { return HealthyWorkers(serve->port()) == 1; }, milliseconds(10'000),
                        milliseconds(50)));
  LoadClient load({.port = serve->port(), .connections = 12, .timeout = milliseconds(30'000)},
                  Requests("drain-", 12));
  load.Start();
  // All 12 sent and a first batch claimed: the rest waits in Redis.
  double claimed = 0;
  ASSERT_TRUE(PollUntil(
      [&] {
        claimed = GatewayMetric(serve->port(), "sluice_worker_requests_claimed_total");
        return GatewayMetric(serve->port(), "sluice_redis_enqueued_requests_total") == 12 &&
               claimed > 0;
      },
      milliseconds(5'000), milliseconds(5)));
  ASSERT_LT(claimed, 12) << "nothing was left in Redis at SIGTERM";
  ASSERT_TRUE(serve->Terminate());
  std::vector<LoadResult> results = load.Wait();
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_TRUE(IsCompletion(results[i].status, results[i].body, "drain-" + std::to_string(i),
                             kDefaultMaxTokens))
        << i << ": " << results[i].status << " " << results[i].body << results[i].error;
  }
  EXPECT_EQ(serve->WaitExit(milliseconds(15'000)), 0);
}

// The metric families of /metrics, after some traffic.
std::set<std::string> MetricFamilies(uint16_t port) {
  HttpClient client(port, milliseconds(2'000));
  Result<Response> r = client.Get("/metrics", kServiceAuth);
  std::set<std::string> out;
  if (!r.ok()) return out;
  std::istringstream in(r->body);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) == 0) out.insert(line.substr(7, line.find(' ', 7) - 7));
  }
  return out;
}

// promtool's findings on the /metrics of the process on `port` ("" when
// none; its exit status is not 0 then).
std::string PromtoolFindings(uint16_t port) {
  HttpClient client(port, milliseconds(2'000));
  Result<Response> r = client.Get("/metrics", kServiceAuth);
  if (!r.ok() || r->status != 200) return "no /metrics";
  const std::string path = ::testing::TempDir() + "/metrics-" + std::to_string(port) + ".txt";
  std::ofstream(path) << r->body;
  auto [status, output] = RunShell("timeout 60 promtool check metrics < '" + path + "' 2>&1");
  return status == 0 ? output : "exit " + std::to_string(status) + ": " + output;
}

// Every series `serve` exposes exists in scale-out too: in `serve` with a
// `redis:` section, and across a gateway and a worker. Except what only a
// task store in memory knows: in Redis, Redis keeps and expires the tasks
// (README, "Asynchronous requests"). Each process's /metrics passes
// `promtool check metrics`.
TEST_F(ScaleOutTest, EveryMetricOfServeExistsInScaleOut) {
  auto served = [](uint16_t port, const std::string& prefix) {
    std::vector<LoadResult> r =
        LoadClient::Run({port, 4, milliseconds(30'000)}, Requests(prefix, 8));
    return std::count_if(r.begin(), r.end(), [](const LoadResult& x) { return x.status == 200; });
  };
  TestConfig plain = FastSim();
  SluiceProcess* serve = Start("serve", plain.Yaml());
  ASSERT_NE(serve, nullptr);
  ASSERT_EQ(served(serve->port(), "plain-"), 8);
  std::set<std::string> want = MetricFamilies(serve->port());
  ASSERT_GT(want.size(), 20u);
  for (const char* memory_only :
       {"sluice_async_tasks_expired_total", "sluice_async_tasks_evicted_total",
        "sluice_async_tasks_stored", "sluice_async_task_bytes"}) {
    ASSERT_EQ(want.erase(memory_only), 1u) << memory_only;
  }

  SluiceProcess* on_redis = Start("serve", Yaml(FastSim()));
  ASSERT_NE(on_redis, nullptr);
  ASSERT_TRUE(PollUntil([&] { return HealthyWorkers(on_redis->port()) == 1; }, milliseconds(10'000),
                        milliseconds(50)));
  ASSERT_EQ(served(on_redis->port(), "redis-"), 8);
  std::set<std::string> have = MetricFamilies(on_redis->port());
  for (const std::string& family : want) {
    EXPECT_TRUE(have.contains(family)) << family << " missing from serve on Redis";
  }

  ASSERT_TRUE(on_redis->Terminate());  // it deregisters its worker
  ASSERT_EQ(on_redis->WaitExit(milliseconds(15'000)), 0);
  SluiceProcess* worker = Start("worker", Yaml(FastSim()));
  ASSERT_NE(worker, nullptr);
  SluiceProcess* gateway = Start("gateway", Yaml(FastSim()));
  ASSERT_NE(gateway, nullptr);
  ASSERT_TRUE(PollUntil([&] { return HealthyWorkers(gateway->port()) == 1; }, milliseconds(10'000),
                        milliseconds(50)));
  ASSERT_EQ(served(gateway->port(), "split-"), 8);
  have = MetricFamilies(gateway->port());
  have.merge(MetricFamilies(worker->port()));
  for (const std::string& family : want) {
    EXPECT_TRUE(have.contains(family)) << family << " missing from gateway + worker";
  }
  EXPECT_EQ(PromtoolFindings(gateway->port()), "") << "gateway";
  EXPECT_EQ(PromtoolFindings(worker->port()), "") << "worker";
}

// The gateway's dashboard lists the workers from the registry: headless
// Chromium runs the page's script against the gateway's snapshots.
TEST_F(ScaleOutTest, TheGatewaysDashboardShowsTheWorkersFromTheRegistry) {
  std::vector<uint16_t> ports = StartCluster(Yaml(FastSim()), 2, 1);
  ASSERT_EQ(ports.size(), 1u);
  ASSERT_TRUE(PollUntil([&] { return HealthyWorkers(ports[0]) == 2; }, milliseconds(10'000),
                        milliseconds(50)));
  for (const LoadResult& r :
       LoadClient::Run({ports[0], 4, milliseconds(30'000)}, Requests("dashboard-", 16))) {
    ASSERT_EQ(r.status, 200) << r.body << r.error;
  }
  // The workers as the gateway's health names them.
  HttpClient client(ports[0], milliseconds(10'000));
  Result<Response> health = client.Get("/internal/health", kServiceAuth);
  ASSERT_TRUE(health.ok()) << health.status().ToString();
  std::vector<std::string> workers;
  const boost::json::value model = ModelHealth(health->Json());
  for (const auto& e : model.at("endpoints").as_array()) {
    workers.push_back(std::string(e.at("name").as_string()));
  }
  ASSERT_EQ(workers.size(), 2u) << health->body;

  const std::string url = "http://ops:" + std::string(kServiceToken) +
                          "@127.0.0.1:" + std::to_string(ports[0]) + "/dashboard";
  auto [status, dom] = HeadlessChromium(url, "--dump-dom", FreshTempDir("chromium-workers"), 4);
  ASSERT_EQ(status, 0) << dom;
  EXPECT_NE(dom.find(R"(<h2 id="endpoints-title">Workers (from the registry)</h2>)"),
            std::string::npos)
      << dom;
  EXPECT_NE(dom.find("gateway, 2 healthy workers"), std::string::npos) << dom;
  for (const std::string& worker : workers) {
    EXPECT_NE(dom.find("<tr><td>" + worker + "</td><td>" + std::string(kModel) + "</td>"),
              std::string::npos)
        << worker << "\n"
        << dom;
  }
}

// Tracing across processes: the gateway's span continues the client's
// trace, its Redis enqueue is a child of it, and the worker's claim and
// batch spans (the worker's own resource) link to it.
TEST_F(ScaleOutTest, ARequestIsTracedFromTheGatewayThroughRedisToTheWorker) {
  OtlpReceiver receiver;
  TestConfig config = FastSim();
  config.tracing_endpoint = receiver.endpoint();
  std::vector<uint16_t> ports = StartCluster(Yaml(config), 1, 1);
  ASSERT_EQ(ports.size(), 1u);
  const std::string trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  HttpClient client(ports[0], milliseconds(10'000));
  Result<Response> r =
      client.Post("/v1/inference", InferenceBody(kModel, "traced across"),
                  {Bearer(kPaidKey), {"traceparent", "00-" + trace_id + "-00f067aa0ba902b7-01"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->status, 200) << r->body;
  const std::string id = r->Header("X-Request-Id");

  auto find = [](const std::vector<ReceivedSpan>& spans, auto&& match) -> const ReceivedSpan* {
    for (const ReceivedSpan& s : spans) {
      if (match(s)) return &s;
    }
    return nullptr;
  };
  auto links = [](const ReceivedSpan& s, const ReceivedSpan& target) {
    return std::count(s.links.begin(), s.links.end(), std::pair(target.trace_id, target.span_id)) ==
           1;
  };
  std::vector<ReceivedSpan> spans;
  const ReceivedSpan *server = nullptr, *enqueue = nullptr, *claim = nullptr, *batch = nullptr,
                     *call = nullptr;
  ASSERT_TRUE(receiver.WaitFor(
      [&](const std::vector<ReceivedSpan>& s) {
        spans = s;
        server = find(spans, [&](const ReceivedSpan& x) {
          auto it = x.attributes.find("sluice.request_id");
          return x.kind == 2 && it != x.attributes.end() && it->second == id;
        });
        if (server == nullptr) return false;
        enqueue = find(spans, [&](const ReceivedSpan& x) {
          return x.name == "sluice.redis.enqueue" && x.parent_span_id == server->span_id;
        });
        claim = find(spans, [&](const ReceivedSpan& x) {
          return x.name == "sluice.redis.claim" && links(x, *server);
        });
        batch = find(spans, [&](const ReceivedSpan& x) {
          return x.name == "sluice.batch" && links(x, *server);
        });
        call = batch == nullptr ? nullptr : find(spans, [&](const ReceivedSpan& x) {
          return x.name == "sluice.backend_call" && x.parent_span_id == batch->span_id;
        });
        return enqueue != nullptr && claim != nullptr && call != nullptr &&
               find(spans, [&](const ReceivedSpan& x) {
                 return x.name == "sluice.queue" && x.parent_span_id == server->span_id;
               }) != nullptr;
      },
      milliseconds(10'000)))
      << spans.size() << " spans";
  EXPECT_EQ(server->trace_id, trace_id);
  EXPECT_EQ(server->resource.at("sluice.role"), "gateway");
  EXPECT_EQ(enqueue->trace_id, trace_id);
  EXPECT_EQ(enqueue->status_code, 0);
  EXPECT_EQ(claim->resource.at("sluice.role"), "worker");
  EXPECT_EQ(batch->resource.at("sluice.role"), "worker");
  EXPECT_EQ(claim->attributes.at("sluice.batch_size"), batch->attributes.at("sluice.batch_size"));
  EXPECT_LE(enqueue->end_unix_nanos, claim->end_unix_nanos);
  EXPECT_LE(claim->end_unix_nanos, batch->start_unix_nanos + 1'000'000);  // same host's clock
}

// A worker's health is typed like a gateway's: the status code follows
// whether it can take batches.
TEST_F(ScaleOutTest, WorkerHealthSaysWhetherItCanTakeBatches) {
  SluiceProcess* worker = Start("worker", Yaml(FastSim()));
  ASSERT_NE(worker, nullptr);
  auto health = [&] {
    HttpClient client(worker->port(), milliseconds(2'000));
    return client.Get("/internal/health", kServiceAuth);
  };
  Result<Response> r = health();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
  json::object h = json::parse(r->body).as_object();
  EXPECT_EQ(h.at("status").as_string(), "healthy");
  EXPECT_EQ(h.at("model").as_string(), kModel);
  EXPECT_EQ(h.at("redis").as_string(), "up");
  EXPECT_EQ(h.at("slots").to_number<int64_t>(), 2);
  EXPECT_EQ(h.at("healthy_slots").to_number<int64_t>(), 2);
  EXPECT_EQ(h.at("batches_in_flight").to_number<int64_t>(), 0);
  const json::array& endpoints = h.at("endpoints").as_array();  // a sim device each
  ASSERT_EQ(endpoints.size(), 2u);
  for (const json::value& e : endpoints) {
    EXPECT_EQ(e.at("breaker").as_string(), "closed");
    EXPECT_EQ(e.at("slots").to_number<int64_t>(), 1);
  }

  redis_.Kill();  // it cannot claim: 503, "unavailable"
  std::string body;
  EXPECT_TRUE(PollUntil(
      [&] {
        Result<Response> d = health();
        body = d.ok() ? std::to_string(d->status) + " " + d->body : d.status().ToString();
        return d.ok() && d->status == 503;
      },
      milliseconds(10'000), milliseconds(50)))
      << body;
  h = json::parse(body.substr(4)).as_object();
  EXPECT_EQ(h.at("status").as_string(), "unavailable");
  EXPECT_NE(h.at("redis").as_string(), "up");
}

}  // namespace
}  // namespace sluice::testing
