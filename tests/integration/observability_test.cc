// What operators look at: the live dashboard (GET /dashboard, drawn by a
// real headless Chromium under load, a screenshot kept) and /metrics as
// promtool reads it.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "common/crypto.h"
#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

constexpr std::string_view kNoToken =
    R"({"error":{"code":"unauthenticated","message":"internal endpoints need a service token",)"
    R"("request_id":null}})";
constexpr std::string_view kBadToken =
    R"({"error":{"code":"unauthenticated","message":"invalid service token","request_id":null}})";

std::pair<std::string, std::string> Basic(std::string_view user_and_password) {
  return {"Authorization", "Basic " + Base64(user_and_password)};
}

// Where the screenshot is kept (SLUICE_ARTIFACT_DIR, set by CMake).
std::string ArtifactDir() {
  std::filesystem::create_directories(SLUICE_ARTIFACT_DIR);
  return SLUICE_ARTIFACT_DIR;
}

class ObservabilityTest : public SluiceTest {};

TEST_F(ObservabilityTest, DashboardAsksABrowserForTheServiceToken) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(TestConfig{}));
  auto client = NewClient();
  for (const char* target : {"/dashboard", "/dashboard/snapshot"}) {
    SCOPED_TRACE(target);
    Result<Response> none = client->Get(target);
    ASSERT_TRUE(none.ok()) << none.status().ToString();
    EXPECT_EQ(none->status, 401);
    EXPECT_EQ(none->body, kNoToken);
    EXPECT_EQ(none->Header("WWW-Authenticate"), R"(Basic realm="sluice", charset="UTF-8")");

    client = NewClient();  // a refused request closes its connection
    Result<Response> wrong = client->Get(target, {Basic("ops:svc-wrong-token")});
    ASSERT_TRUE(wrong.ok()) << wrong.status().ToString();
    EXPECT_EQ(wrong->status, 401);
    EXPECT_EQ(wrong->body, kBadToken);
    client = NewClient();
  }

  // The token as a Basic password (any user name), as a browser sends it.
  Result<Response> page = client->Get("/dashboard", {Basic("ops:" + std::string(kServiceToken))});
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->Header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->Header("Content-Security-Policy").find("default-src 'none'"), std::string::npos);
  EXPECT_NE(page->body.find(R"(<canvas id="batches">)"), std::string::npos);
  EXPECT_EQ(page->body.find("http://"), std::string::npos) << "nothing loads from elsewhere";
  EXPECT_EQ(page->body.find("https://"), std::string::npos) << "nothing loads from elsewhere";

  // Or as Bearer, like every internal route.
  ASSERT_TRUE(
      client->Post("/v1/inference", InferenceBody(kModel, "counted"), {Bearer(kPaidKey)}).ok());
  Result<Response> snapshot = client->Get("/dashboard/snapshot", {Bearer(kServiceToken)});
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
  ASSERT_EQ(snapshot->status, 200) << snapshot->body;
  EXPECT_EQ(snapshot->Header("Cache-Control"), "no-store");
  const boost::json::value v = snapshot->Json();
  ASSERT_TRUE(v.is_object()) << snapshot->body;
  EXPECT_EQ(v.at("health").at("status").as_string(), "healthy");
  EXPECT_EQ(v.at("requests").at("paid").at("200").to_number<double>(), 1);
  int64_t batches = 0;  // the one request went out in one batch of 1
  for (const auto& n : v.at("batch_size").at(kModel).at("counts").as_array()) {
    batches += n.as_int64();
  }
  EXPECT_EQ(batches, 1);
  EXPECT_EQ(v.at("batch_size").at(kModel).at("counts").at(0).as_int64(), 1);

  // Other internal routes take Bearer alone: a browser would send its
  // cached Basic credentials with any web page's request to them.
  Result<Response> reload =
      NewClient()->Post("/internal/models/" + std::string(kModel) + "/devices/0",
                        R"({"enabled":false})", {Basic("ops:" + std::string(kServiceToken))});
  ASSERT_TRUE(reload.ok());
  EXPECT_EQ(reload->status, 401);
  EXPECT_EQ(reload->body, kNoToken);
  EXPECT_EQ(reload->Header("WWW-Authenticate"), "Bearer");

  client = NewClient();
  Result<Response> post = client->Post("/dashboard", "", {Bearer(kServiceToken)});
  ASSERT_TRUE(post.ok()) << post.status().ToString();
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(post->Header("Allow"), "GET");
}

TEST_F(ObservabilityTest, DashboardMovesToTheAdminListener) {
  TestConfig config;
  config.admin_listener = true;
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  Result<Response> public_side = NewClient()->Get("/dashboard", {Bearer(kServiceToken)});
  ASSERT_TRUE(public_side.ok()) << public_side.status().ToString();
  EXPECT_TRUE(IsError(*public_side, 404, "not_found"));
  HttpClient admin(process().admin_port(), std::chrono::seconds(10));
  Result<Response> page = admin.Get("/dashboard", {Bearer(kServiceToken)});
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->status, 200);
}

TEST_F(ObservabilityTest, LiveMetricsPassPromtoolCheckMetrics) {
  TestConfig config;
  config.cache = true;  // the cache's counters too
  config.admission = true;
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  auto client = NewClient();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(client
                    ->Post("/v1/inference", InferenceBody(kModel, "metrics " + std::to_string(i)),
                           {Bearer(kPaidKey)})
                    .ok());
  }
  ASSERT_TRUE(NewClient()->Post("/v1/inference", "{}", {Bearer("sk-unknown")}).ok());
  Result<Response> metrics = NewClient()->Get("/metrics", {Bearer(kServiceToken)});
  ASSERT_TRUE(metrics.ok()) << metrics.status().ToString();
  ASSERT_EQ(metrics->status, 200);
  const std::string path = FreshTempDir("metrics") + "/metrics.txt";
  std::ofstream(path) << metrics->body;
  auto [status, output] = RunShell("timeout 60 promtool check metrics < '" + path + "' 2>&1");
  EXPECT_EQ(status, 0) << output;
  EXPECT_EQ(output, "") << "promtool's lint findings";
  // Totals kept elsewhere are typed counter (promtool also requires it).
  EXPECT_NE(metrics->body.find("# TYPE sluice_refused_connections_total counter"),
            std::string::npos);
  EXPECT_NE(metrics->body.find("# TYPE sluice_cache_hits_total counter"), std::string::npos);
}

// Under load, the page draws every chart with data (headless Chromium runs
// its script against the live snapshots); its screenshot is kept in
// SLUICE_ARTIFACT_DIR/dashboard.png.
TEST_F(ObservabilityTest, DashboardDrawsItsChartsUnderLoad) {
  TestConfig config;
  config.admission = true;
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));

  // Load: two clients per tier, each sending its next request once answered,
  // until Chromium is done (bounded in count and time).
  std::atomic<bool> done{false};
  std::vector<std::thread> load;
  constexpr const char* kTiers[] = {"enterprise", "paid", "free"};
  for (int i = 0; i < 6; ++i) {
    load.emplace_back([&, tier = std::string(kTiers[i % 3])] {
      auto client = NewClient();
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(90);
      for (int n = 0; n < 20'000 && !done && std::chrono::steady_clock::now() < until; ++n) {
        if (!client
                 ->Post("/v1/inference",
                        InferenceBody(kModel, tier + " dashboard " + std::to_string(n)),
                        {Bearer(DemoKey(tier))})
                 .ok()) {
          client = NewClient();
        }
      }
    });
  }
  auto stop_load = [&] {
    done = true;
    for (std::thread& t : load) t.join();
    load.clear();
  };
  // The page reads its snapshots while the load runs.
  const bool flowing = PollUntil(
      [&] {
        Result<Response> r = NewClient()->Get("/dashboard/snapshot", {Bearer(kServiceToken)});
        if (!r.ok() || r->status != 200) return false;
        const boost::json::value v = r->Json();
        const auto* free = v.at("requests").as_object().if_contains("free");
        return free != nullptr && free->as_object().if_contains("200") != nullptr;
      },
      std::chrono::seconds(20), std::chrono::milliseconds(100));
  if (!flowing) stop_load();
  ASSERT_TRUE(flowing);
  const std::string url = "http://ops:" + std::string(kServiceToken) +
                          "@127.0.0.1:" + std::to_string(port()) + "/dashboard";
  auto [status, dom] = HeadlessChromium(url, "--dump-dom", FreshTempDir("chromium-dom"), 8);
  const std::string screenshot = ArtifactDir() + "/dashboard.png";
  std::filesystem::remove(screenshot);
  auto [shot_status, shot_output] =
      HeadlessChromium(url, "--screenshot='" + screenshot + "'", FreshTempDir("chromium-shot"), 8);
  stop_load();

  ASSERT_EQ(status, 0) << dom;
  EXPECT_NE(dom.find(R"(<span id="status" class="healthy">healthy</span>)"), std::string::npos)
      << dom;
  for (const char* chart : {"rate", "latency", "queue", "utilisation"}) {
    SCOPED_TRACE(chart);
    EXPECT_GE(DomAttribute(dom, chart, "data-points"), 4) << "a line from several snapshots";
  }
  EXPECT_GT(DomAttribute(dom, "rate", "data-max"), 0) << "requests were answered";
  EXPECT_GT(DomAttribute(dom, "latency", "data-max"), 0) << "their latency";
  EXPECT_GT(DomAttribute(dom, "utilisation", "data-max"), 0) << "the devices worked";
  EXPECT_GE(DomAttribute(dom, "batches", "data-points"), 1) << "batches in a size bucket";
  // The outcomes table has each tier, with answered requests.
  for (const char* tier : {"enterprise", "paid", "free"}) {
    const std::regex row(std::string("<tr><td>") + tier + "</td><td>([0-9.]+)</td>");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(dom, m, row)) << tier << "\n" << dom;
    EXPECT_GT(std::stod(m[1].str()), 0) << tier;
  }
  EXPECT_NE(dom.find(R"(<td class="closed">closed</td>)"), std::string::npos) << "the breakers";

  ASSERT_EQ(shot_status, 0) << shot_output;
  ASSERT_TRUE(std::filesystem::exists(screenshot));
  EXPECT_GT(std::filesystem::file_size(screenshot), 10'000u) << screenshot;
}

}  // namespace
}  // namespace sluice::testing
