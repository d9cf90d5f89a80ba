// Config reload without a restart (app/config_reloader.h): POST
// /internal/reload and SIGHUP re-read the file the process started with.
// Keys come and go, a tier's limits change while its keys' rate-limit state
// carries on, a broken file is refused with the field named and the running
// config keeps serving, and changes that need a restart are reported.
#include <csignal>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "common/crypto.h"
#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

using std::chrono::milliseconds;

constexpr std::string_view kOldKey = "sk-reload-old-0001";
constexpr std::string_view kNewKey = "sk-reload-new-0001";

class ReloadTest : public SluiceTest {
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
