// Config reload without a restart (app/config_reloader.h): POST
// /internal/reload and SIGHUP re-read the file the process started with.
// Keys come and go, a tier's limits change while its keys' rate-limit state
// carries on, a model's endpoints change under load with no request failed,
// its devices, batching and admission bounds change, a broken file is
// refused with the field named and the running config keeps serving, and
// changes that need a restart are reported.
#include <csignal>
#include <fstream>
#include <iostream>
#include <string>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "common/crypto.h"
#include "tests/integration/model_servers_fixture.h"
#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

using std::chrono::milliseconds;

constexpr std::string_view kOldKey = "sk-reload-old-0001";
constexpr std::string_view kNewKey = "sk-reload-new-0001";

class ReloadTest : public ModelServersTest {
 protected:
  // Replaces the config file the server was started with.
  void Rewrite(const std::string& yaml) {
    std::ofstream(process().config_path(), std::ios::trunc) << yaml;
  }
  Result<Response> Reload() {
    return NewClient()->Post("/internal/reload", "", {Bearer(kServiceToken)});
  }
  int StatusWith(std::string_view key, const std::string& input = "reload") {
    Result<Response> r =
        NewClient()->Post("/v1/inference", InferenceBody(kModel, input), {Bearer(key)});
    return r.ok() ? r->status : -1;
  }
  // Items model-server `index` answered so far (GET /admin/stats).
  int64_t ItemsServedBy(size_t index) {
    HttpClient admin(servers_[index]->port());
    Result<Response> r = admin.Get("/admin/stats");
    EXPECT_TRUE(r.ok() && r->status == 200);
    return r.ok() ? NumberField(r->Json(), "items").value_or(-1) : -1;
  }
  // The endpoints of the model in /internal/health: "name=breaker", in order.
  std::vector<std::string> HealthEndpoints() {
    std::vector<std::string> out;
    auto client = NewClient();
    boost::json::value m = ModelHealth(Health(*client));
    const boost::json::value* list =
        m.is_object() ? m.as_object().if_contains("endpoints") : nullptr;
    if (list == nullptr || !list->is_array()) return out;
    for (const auto& e : list->as_array()) {
      out.push_back(StringField(e, "name").value_or("?") + "=" +
                    StringField(e, "breaker").value_or("?"));
    }
    return out;
  }
};

TEST_F(ReloadTest, AnAddedKeyWorksAndARemovedOneIsRefused) {
  TestConfig config;
  config.extra_keys = {{"old", "paid", std::string(kOldKey)}};
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  EXPECT_EQ(StatusWith(kOldKey), 200);
  EXPECT_EQ(StatusWith(kNewKey), 401);

  config.extra_keys = {{"new", "free", std::string(kNewKey)}};
  Rewrite(config.Yaml());
  Result<Response> r = Reload();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->body, R"({"reloaded":true,"applied":["keys[3].id","keys[3].sha256","keys[3].tier"],)"
                     R"("restart_required":[]})");
  EXPECT_EQ(StatusWith(kNewKey), 200);
  Result<Response> gone =
      NewClient()->Post("/v1/inference", InferenceBody(kModel, "old key"), {Bearer(kOldKey)});
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(IsError(*gone, 401, "unauthenticated"));
  EXPECT_EQ(StatusWith(kPaidKey), 200) << "the keys that stay keep working";
}

TEST_F(ReloadTest, ATiersLimitChangesAndItsKeysStateCarriesOn) {
  TestConfig config;
  config.paid_tier.requests_per_minute = 3;
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(StatusWith(kPaidKey, "a" + std::to_string(i)), 200);
  EXPECT_EQ(StatusWith(kPaidKey), 429);

  // Another tier changes: the paid key's spent budget is still spent.
  config.free_tier.requests_per_minute = 50;
  Rewrite(config.Yaml());
  Result<Response> r = Reload();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, R"({"reloaded":true,"applied":["tiers[2].requests_per_minute"],)"
                     R"("restart_required":[]})");
  EXPECT_EQ(StatusWith(kPaidKey), 429) << "a reload must not reset a key's rate-limit state";

  // Its own tier's limit goes up: the next request fits.
  config.paid_tier.requests_per_minute = 600;
  Rewrite(config.Yaml());
  r = Reload();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(StatusWith(kPaidKey), 200);
  Result<Response> limited =
      NewClient()->Post("/v1/inference", InferenceBody(kModel, "headers"), {Bearer(kPaidKey)});
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(limited->Header("X-RateLimit-Limit"), "600");
}

TEST_F(ReloadTest, ABrokenFileIsRefusedAndTheRunningConfigServes) {
  TestConfig config;
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  const std::string path = process().config_path();

  Rewrite(config.Yaml() + "unknown_section: 1\n");
  Result<Response> r = Reload();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(ErrorMessage(r->body), path + ": unknown_section: unknown field");

  // A valid file whose first tier (and its key) is renamed.
  std::string renamed = config.Yaml();
  for (size_t at; (at = renamed.find("enterprise")) != std::string::npos;) {
    renamed.replace(at, 10, "platinum");
  }
  Rewrite(renamed);
  r = Reload();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->body, R"({"error":{"code":"invalid_request","message":")" + path +
                         R"(: tiers[0].name: renaming or reordering tiers needs a restart",)"
                         R"("request_id":null}})");

  EXPECT_EQ(StatusWith(kPaidKey), 200) << "the running config still serves";
  Result<Response> post = NewClient()->Get("/internal/reload", {Bearer(kServiceToken)});
  ASSERT_TRUE(post.ok());
  EXPECT_EQ(post->status, 405);
  Result<Response> no_token = NewClient()->Post("/internal/reload", "");
  ASSERT_TRUE(no_token.ok());
  EXPECT_TRUE(IsError(*no_token, 401, "unauthenticated"));
}

TEST_F(ReloadTest, WhatNeedsARestartIsReportedAndNotApplied) {
  TestConfig config;
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  config.max_batch_size = 8;
  config.extra_keys = {{"new", "free", std::string(kNewKey)}};
  Rewrite(config.Yaml());
  Result<Response> r = Reload();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  const boost::json::value v = r->Json();
  EXPECT_EQ(boost::json::serialize(v.at("restart_required")), R"(["models[0].max_batch_size"])");
  EXPECT_EQ(StatusWith(kNewKey), 200) << "the rest of the file is applied";
}

// The model moves from one endpoint to another while 64 clients keep it
// busy: batches in flight finish on the old endpoint, the rest run on the
// new one, and every request is answered, once.
TEST_F(ReloadTest, AnEndpointChangesUnderLoadWithNoFailedRequest) {
  // One connection to a 40 ms device: ~550 requests/s, so that most of the
  // load is still to come when the reload lands, even on a slow machine.
  ServerSpec slow;
  slow.fixed_latency_us = 40'000;
  StartModelServer(slow);
  StartModelServer(slow);
  const GatewaySpec gateway{.connections_per_endpoint = 1};
  ASSERT_NO_FATAL_FAILURE(StartSluice(HttpConfig(gateway, {0})));
  EXPECT_EQ(HealthEndpoints(), std::vector<std::string>{Endpoint(0) + "=closed"});
  constexpr size_t kRequests = 3'000;
  LoadClient load({.port = port(), .connections = 64, .timeout = milliseconds(60'000)},
                  Requests(kRequests, "move-"));
  load.Start();
  ASSERT_TRUE(
      PollUntil([&] { return load.responses_received() >= kRequests / 4; }, milliseconds(30'000)));
  Rewrite(HttpConfig(gateway, {1}).Yaml());
  const size_t reloaded_after = load.responses_received();
  Result<Response> r = Reload();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, R"({"reloaded":true,"applied":["models[0].backend.endpoints[0]"],)"
                     R"("restart_required":[]})");
  EXPECT_EQ(HealthEndpoints(), std::vector<std::string>{Endpoint(1) + "=closed"});
  EXPECT_LT(load.responses_received(), kRequests)
      << "the load must still run when the reload lands";

  EXPECT_EQ(Completions(load.Wait(), "move-"), kRequests);
  // Nothing failed, so nothing ran twice: the two servers answered every
  // item once between them, and the new one took over.
  const int64_t old_items = ItemsServedBy(0);
  std::cout << "reload under load: " << reloaded_after << " answers before the reload; the old "
            << "endpoint answered " << old_items << " items, the new one " << ItemsServedBy(1)
            << "\n";
  EXPECT_GT(old_items, 0);
  EXPECT_GT(ItemsServedBy(1), 0);
  EXPECT_EQ(old_items + ItemsServedBy(1), static_cast<int64_t>(kRequests));
  EXPECT_EQ(StatusWith(kPaidKey, "after"), 200);
  EXPECT_EQ(ItemsServedBy(0), old_items) << "the removed endpoint gets no more work";

  auto client = NewClient();
  EXPECT_EQ(Counter(*client, "sluice_batch_retry_requests_total"), 0);
  const std::vector<MetricSample> samples = Samples(*client);
  EXPECT_TRUE(SumSamples(samples, "sluice_circuit_breaker_state",
                         {{"model", std::string(kModel)}, {"endpoint", Endpoint(1)}})
                  .has_value());
  EXPECT_FALSE(SumSamples(samples, "sluice_circuit_breaker_state",
                          {{"model", std::string(kModel)}, {"endpoint", Endpoint(0)}})
                   .has_value())
      << "a removed endpoint's breaker gauge goes with it";
  EXPECT_EQ(Counter(*client, "sluice_accelerator_slots"), gateway.connections_per_endpoint);
}

// A sim model's devices, its batching and admission's bounds change at once;
// a device the operator took out stays out; what a reload cannot change is
// reported and keeps its running value.
TEST_F(ReloadTest, DevicesBatchingAndAdmissionChangeWithoutARestart) {
  TestConfig config;
  config.admission = true;
  config.devices = 4;
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  auto client = NewClient();
  EXPECT_EQ(NumberField(ModelHealth(Health(*client)), "devices"), 4);
  // The operator takes device 1 out of service: it stays out across the
  // reload, which keeps devices 0 and 1.
  Result<Response> off =
      client->Post(DevicePath(kModel, 1), R"({"enabled":false})", {Bearer(kServiceToken)});
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  ASSERT_EQ(off->status, 200) << off->body;

  config.devices = 2;
  config.max_batch_delay_us = 2'000;
  config.accelerator_timeout_ms = 5'000;
  config.free_tier.max_queue_depth = 10;
  config.target_utilization = 0.5;
  config.max_batch_size = 16;
  Rewrite(config.Yaml());
  Result<Response> r = Reload();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->body, R"({"reloaded":true,"applied":["admission.target_utilization",)"
                     R"("models[0].accelerator_timeout_ms","models[0].backend.devices",)"
                     R"("models[0].max_batch_delay_us","tiers[2].max_queue_depth"],)"
                     R"("restart_required":["models[0].max_batch_size"]})");
  const boost::json::value m = ModelHealth(Health(*client));
  EXPECT_EQ(NumberField(m, "devices"), 2) << boost::json::serialize(m);
  EXPECT_EQ(NumberField(m, "healthy_devices"), 1) << boost::json::serialize(m);
  EXPECT_EQ(Counter(*client, "sluice_accelerator_slots"), 2);
  Result<Response> on =
      client->Post(DevicePath(kModel, 1), R"({"enabled":true})", {Bearer(kServiceToken)});
  ASSERT_TRUE(on.ok()) << on.status().ToString();
  ASSERT_EQ(on->status, 200) << on->body;
  EXPECT_EQ(NumberField(ModelHealth(Health(*client)), "healthy_devices"), 2);
  std::vector<LoadResult> results = LoadClient::Run(
      {.port = port(), .connections = 8, .timeout = milliseconds(20'000)}, Requests(64, "after-"));
  for (const LoadResult& res : results) ASSERT_EQ(res.status, 200) << res.body << res.error;
  EXPECT_EQ(Counter(*client, "sluice_batches_total", {{"outcome", "failed"}}), 0);

  // The same file again: the same report (what differs from the started
  // file, in force or waiting for a restart), and the same running model.
  const std::string first = r->body;
  r = Reload();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, first);
  EXPECT_EQ(NumberField(ModelHealth(Health(*client)), "devices"), 2);
}

// A backend that cannot be built refuses the whole reload: the keys in the
// same file are not applied, and the running endpoints keep serving.
TEST_F(ReloadTest, ABackendThatCannotBeBuiltRefusesTheReload) {
  StartModelServer({});
  GatewaySpec gateway;
  TestConfig config = HttpConfig(gateway);
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  config.extra_keys = {{"new", "free", std::string(kNewKey)}};
  config.backend_yaml =
      "    backend:\n      kind: http\n      endpoints: [\"https://127.0.0.1:1/v1/batch\"]\n"
      "      tls_ca_file: /nonexistent/ca.pem\n";
  Rewrite(config.Yaml());
  Result<Response> r = Reload();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(ErrorMessage(r->body), process().config_path() +
                                       ": models[0]: TLS CA file `/nonexistent/ca.pem`: No such "
                                       "file or directory");
  EXPECT_EQ(StatusWith(kNewKey), 401) << "a refused reload applies nothing";
  EXPECT_EQ(StatusWith(kPaidKey), 200);
  EXPECT_EQ(HealthEndpoints(), std::vector<std::string>{Endpoint(0) + "=closed"});
}

TEST_F(ReloadTest, SighupReloadsTheFile) {
  TestConfig config;
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  EXPECT_EQ(StatusWith(kNewKey), 401);
  config.extra_keys = {{"new", "free", std::string(kNewKey)}};
  Rewrite(config.Yaml());
  ASSERT_TRUE(process().Terminate(SIGHUP));
  EXPECT_TRUE(PollUntil([&] { return StatusWith(kNewKey) == 200; }, milliseconds(10'000),
                        milliseconds(20)));
  EXPECT_TRUE(process().running()) << "SIGHUP reloads; it does not stop the server";
}

}  // namespace
}  // namespace sluice::testing
