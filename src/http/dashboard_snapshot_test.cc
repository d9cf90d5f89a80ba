#include "http/dashboard_snapshot.h"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace sluice::http {
namespace {

namespace json = boost::json;

TEST(DashboardSnapshotTest, SumsRequestsAndShedAndMergesLatency) {
  metrics::Registry registry;
  auto requests = [&](const char* model, const char* tier, const char* status) {
    return registry.GetCounter("sluice_requests_total", "h",
                               {{"model", model}, {"tier", tier}, {"status", status}});
  };
  requests("a", "paid", "200")->Inc(5);
  requests("b", "paid", "200")->Inc(2);
  requests("a", "free", "429")->Inc(1);
  requests("a", "free", "503");  // zero: left out
  registry
      .GetCounter("sluice_shed_total", "h",
                  {{"model", "a"}, {"tier", "free"}, {"reason", "deadline_unreachable"}})
      ->Inc(4);
  const std::vector<double> bounds{0.1, 0.2};
  registry.GetHistogram("sluice_request_duration_seconds", "h", {{"tier", "paid"}}, bounds)
      ->Observe(0.05);
  registry.GetHistogram("sluice_request_duration_seconds", "h", {{"tier", "free"}}, bounds)
      ->Observe(0.15);
  registry.GetHistogram("sluice_batch_size", "h", {{"model", "a"}}, {1, 2})->Observe(2);

  HealthSnapshot health;
  health.status = "degraded";
  ModelHealth m;
  m.name = "a";
  m.endpoints.push_back({"http://x", BreakerState::kOpen, 2});
  health.models.push_back(m);

  const json::value v = json::parse(DashboardSnapshotJson(health, registry, 1234));
  EXPECT_EQ(v.at("time_ms").as_int64(), 1234);
  EXPECT_EQ(v.at("health").at("status").as_string(), "degraded");
  EXPECT_EQ(v.at("health").at("models").at(0).at("endpoints").at(0).at("breaker").as_string(),
            "open");
  EXPECT_EQ(json::serialize(v.at("requests")), R"({"paid":{"200":7E0},"free":{"429":1E0}})");
  EXPECT_EQ(json::serialize(v.at("shed")), R"({"a":{"deadline_unreachable":4E0}})");
  EXPECT_EQ(json::serialize(v.at("latency").at("counts")), "[1,1,0]");
  EXPECT_EQ(v.at("latency").at("bounds").as_array().size(), 2u);
  EXPECT_EQ(json::serialize(v.at("batch_size").at("a").at("counts")), "[0,1,0]");
}

TEST(DashboardSnapshotTest, AProcessWithoutTrafficHasEmptyFigures) {
  metrics::Registry registry;
  const json::value v = json::parse(DashboardSnapshotJson(HealthSnapshot{}, registry, 0));
  EXPECT_EQ(json::serialize(v.at("requests")), "{}");
  EXPECT_EQ(json::serialize(v.at("latency").at("counts")), "[]");
  EXPECT_EQ(json::serialize(v.at("batch_size")), "{}");
}

}  // namespace
}  // namespace sluice::http
