// Devices failing and returning, over real HTTP: the admin endpoint
// POST /internal/models/{model}/devices/{index} takes simulated devices out
// of service and back; /internal/health and /metrics follow at once; under
// the same offered load, only the free excess is refused while half the
// devices are out, and enterprise is served throughout. Bad admin requests are
// refused without changing anything.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json/serialize.hpp>

#include "tests/integration/paced_load.h"
#include "tests/integration/prometheus_text.h"
#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

using std::chrono::milliseconds;

constexpr int kDevices = 4;
constexpr int64_t kEnterpriseBudgetMs = 400;

// Four devices, 20 ms + 1 ms per item, batches of 16 (~444 requests/s per
// device): ~1,778 requests/s with all four, ~889 with two.
TestConfig FourDeviceSim() {
  TestConfig config;
  config.admission = true;
  config.devices = kDevices;
  config.max_batch_size = 16;
  config.max_batch_delay_us = 10'000;
  config.fixed_latency_us = 20'000;
  config.per_item_latency_us = 1'000;
  config.max_queue_age_ms = 2'000;
  config.total_timeout_ms = 4'000;
  config.enterprise_tier = {.latency_budget_ms = kEnterpriseBudgetMs, .max_queue_depth = 0};
  config.paid_tier = {.latency_budget_ms = 800, .max_queue_depth = 500};
  config.free_tier = {.latency_budget_ms = 1'500, .max_queue_depth = 100};
  return config;
}

class DeviceFailureTest : public SluiceTest {
 protected:
  // Enables or disables one device of kModel; a test failure unless 200.
  void SetDevice(HttpClient& client, int index, bool enabled) {
    Result<Response> r = client.Post(DevicePath(kModel, index),
                                     enabled ? R"({"enabled":true})" : R"({"enabled":false})",
                                     {Bearer(kServiceToken)});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->status, 200) << r->body;
    boost::json::value v = r->Json();
    EXPECT_EQ(StringField(v, "model"), kModel) << r->body;
    EXPECT_EQ(NumberField(v, "device"), static_cast<double>(index)) << r->body;
    const boost::json::value* e = v.is_object() ? v.as_object().if_contains("enabled") : nullptr;
    EXPECT_TRUE(e != nullptr && e->is_bool() && e->as_bool() == enabled) << r->body;
  }

  // kModel's entry of /internal/health; a test failure when there is none.
  boost::json::value ModelState(HttpClient& client) {
    boost::json::value m = ModelHealth(Health(client));
    EXPECT_FALSE(m.is_null()) << "no health entry for " << kModel;
    return m;
  }

  // The seed mix at `rate_rps` for `duration`; logs and returns per-tier
  // summaries (enterprise, paid, free).
  struct Phase {
    TierSummary enterprise, paid, free;
  };
  Phase RunPhase(std::string_view name, double rate_rps, milliseconds duration,
                 HttpClient& monitor) {
    Phase phase;
    PacedLoadOptions load;
    load.port = port();
    load.rate_rps = rate_rps;
    load.duration = duration;
    std::vector<PacedResult> results = RunPacedLoad(load, [name](size_t i) {
      std::string_view tier = SeedMixTier(i);
      return InferenceRequest(
          DemoKey(tier), std::string(name) + " " + std::string(tier) + " #" + std::to_string(i));
    });
    phase.enterprise = Summarize(results, "enterprise");
    phase.paid = Summarize(results, "paid");
    phase.free = Summarize(results, "free");
    std::cerr << "[ devices ] " << name << " at " << std::lround(rate_rps) << " req/s:\n"
              << "[ devices ]   enterprise " << Describe(phase.enterprise) << "\n"
              << "[ devices ]   paid       " << Describe(phase.paid) << "\n"
              << "[ devices ]   free       " << Describe(phase.free) << "\n";
    return phase;
  }
};

TEST_F(DeviceFailureTest, HalfTheDevicesDownHalvesCapacityAndRefusesFreeExcessUntilTheyReturn) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(FourDeviceSim()));
  auto monitor = NewClient(milliseconds(2'000));

  boost::json::value all = ModelState(*monitor);
  EXPECT_EQ(NumberField(all, "devices"), double(kDevices)) << boost::json::serialize(all);
  EXPECT_EQ(NumberField(all, "healthy_devices"), double(kDevices));
  const double full_capacity = NumberField(all, "capacity_rps").value_or(0);
  ASSERT_GT(full_capacity, 1'500) << "expected ~1,778 requests/s: " << boost::json::serialize(all);
  ASSERT_LT(full_capacity, 2'100) << boost::json::serialize(all);
  EXPECT_GT(NumberField(all, "throughput_per_device_rps").value_or(0), 0.0);

  // A load all four devices carry, but two cannot: ~1.4x their capacity.
  const double rate = 0.7 * full_capacity;
  const milliseconds kPhase(2'000);

  // 1. All devices up: nobody is shed.
  Phase healthy = RunPhase("all up", rate, kPhase, *monitor);
  EXPECT_EQ(healthy.enterprise.ok, healthy.enterprise.sent);
  EXPECT_EQ(healthy.paid.ok, healthy.paid.sent);
  EXPECT_EQ(healthy.free.ok, healthy.free.sent) << "free shed while capacity sufficed";

  // 2. Devices 0 and 1 fail: capacity halves at once.
  ASSERT_NO_FATAL_FAILURE(SetDevice(*monitor, 0, false));
  ASSERT_NO_FATAL_FAILURE(SetDevice(*monitor, 1, false));
  boost::json::value half = ModelState(*monitor);
  EXPECT_EQ(NumberField(half, "healthy_devices"), kDevices / 2.0) << boost::json::serialize(half);
  const double half_capacity = NumberField(half, "capacity_rps").value_or(0);
  const double per_device_before = NumberField(all, "throughput_per_device_rps").value_or(0);
  const double per_device_now = NumberField(half, "throughput_per_device_rps").value_or(0);
  // Capacity = healthy devices x learnt per-device throughput; the
  // measurement may have moved a little during phase 1.
  EXPECT_NEAR(half_capacity, 2 * per_device_now, 0.05 * half_capacity)
      << boost::json::serialize(half);
  EXPECT_NEAR(half_capacity / full_capacity, 0.5 * per_device_now / per_device_before, 0.1)
      << "full " << full_capacity << ", half " << half_capacity;
  std::optional<std::string> text = Metrics(*monitor);
  ASSERT_TRUE(text.has_value());
  std::vector<MetricSample> samples =
      ParsePrometheusText(*text).value_or(std::vector<MetricSample>{});
  const std::map<std::string, std::string> model = {{"model", std::string(kModel)}};
  EXPECT_EQ(SumSamples(samples, "sluice_accelerator_healthy_slots", model), kDevices / 2.0);
  EXPECT_NEAR(SumSamples(samples, "sluice_capacity_rps", model).value_or(0), half_capacity,
              0.1 * half_capacity);

  // The same load now exceeds capacity: the free excess is refused at once,
  // enterprise is served within its budget, the devices stay busy.
  Phase degraded = RunPhase("half down", rate, kPhase, *monitor);
  EXPECT_EQ(degraded.enterprise.ok, degraded.enterprise.sent) << Describe(degraded.enterprise);
  // Dispatched within its budget, by the server's account (Server-Timing):
  // this test's client shares the CPU, so end-to-end figures are printed.
  EXPECT_EQ(degraded.enterprise.ok_without_queue_wait, 0u) << Describe(degraded.enterprise);
  EXPECT_LT(degraded.enterprise.max_queue_wait, milliseconds(kEnterpriseBudgetMs))
      << Describe(degraded.enterprise);
  EXPECT_GT(degraded.free.shed, degraded.free.sent / 4) << Describe(degraded.free);
  EXPECT_GT(degraded.free.ok, degraded.free.sent / 4)
      << "the whole free tier was refused, not its excess: " << Describe(degraded.free);
  EXPECT_EQ(degraded.free.timed_out + degraded.free.other, 0u) << Describe(degraded.free);
  text = Metrics(*monitor);
  ASSERT_TRUE(text.has_value());
  samples = ParsePrometheusText(*text).value_or(std::vector<MetricSample>{});
  EXPECT_EQ(
      SumSamples(samples, "sluice_shed_total", {{"model", std::string(kModel)}, {"tier", "free"}}),
      static_cast<double>(degraded.free.shed));

  // 3. They return: capacity is back at once, and free is admitted again.
  ASSERT_NO_FATAL_FAILURE(SetDevice(*monitor, 0, true));
  ASSERT_NO_FATAL_FAILURE(SetDevice(*monitor, 1, true));
  boost::json::value back = ModelState(*monitor);
  EXPECT_EQ(NumberField(back, "healthy_devices"), double(kDevices)) << boost::json::serialize(back);
  EXPECT_NEAR(NumberField(back, "capacity_rps").value_or(0), 2 * half_capacity,
              0.15 * half_capacity)
      << boost::json::serialize(back);
  Phase recovered = RunPhase("all back", rate, kPhase, *monitor);
  EXPECT_EQ(recovered.enterprise.ok, recovered.enterprise.sent);
  EXPECT_EQ(recovered.paid.ok, recovered.paid.sent);
  EXPECT_GE(recovered.free.ok, recovered.free.sent * 95 / 100)
      << "free still shed after the devices returned: " << Describe(recovered.free);
}

TEST_F(DeviceFailureTest, BadAdminRequestsAreRefusedAndChangeNothing) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(FourDeviceSim()));
  auto client = NewClient();
  const Headers token = {Bearer(kServiceToken)};
  const std::string disable = R"({"enabled":false})";
  struct Case {
    std::string name, method, target, body;
    Headers headers;
    int status;
    std::string code;
  };
  const std::vector<Case> cases = {
      {"unknown model", "POST", DevicePath("no-such-model", 0), disable, token, 404, "not_found"},
      {"index out of range", "POST", DevicePath(kModel, kDevices), disable, token, 404,
       "not_found"},
      {"index not a number", "POST", "/internal/models/" + std::string(kModel) + "/devices/one",
       disable, token, 404, "not_found"},
      {"no index", "POST", "/internal/models/" + std::string(kModel) + "/devices/", disable, token,
       404, "not_found"},
      {"missing body", "POST", DevicePath(kModel, 0), "", token, 400, "invalid_request"},
      {"not JSON", "POST", DevicePath(kModel, 0), "enabled=false", token, 400, "invalid_request"},
      {"no enabled field", "POST", DevicePath(kModel, 0), R"({"device":0})", token, 400,
       "invalid_request"},
      {"enabled not a boolean", "POST", DevicePath(kModel, 0), R"({"enabled":"false"})", token, 400,
       "invalid_request"},
      {"no token", "POST", DevicePath(kModel, 0), disable, {}, 401, "unauthenticated"},
      {"wrong token",
       "POST",
       DevicePath(kModel, 0),
       disable,
       {Bearer("svc-wrong-token")},
       401,
       "unauthenticated"},
      {"an API key is not a service token",
       "POST",
       DevicePath(kModel, 0),
       disable,
       {Bearer(kEnterpriseKey)},
       401,
       "unauthenticated"},
      {"GET", "GET", DevicePath(kModel, 0), "", token, 405, "method_not_allowed"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Result<Response> r = client->Request(c.method, c.target, c.body, c.headers);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(IsError(*r, c.status, c.code));
    if (c.status == 401) {
      EXPECT_EQ(r->Header("WWW-Authenticate"), "Bearer");
    }
    if (c.status == 405) {
      EXPECT_EQ(r->Header("Allow"), "POST");
    }
  }

  // None of them took a device out of service.
  boost::json::value m = ModelHealth(Health(*client));
  EXPECT_EQ(NumberField(m, "healthy_devices"), double(kDevices)) << boost::json::serialize(m);
  Result<Response> ok =
      client->Post("/v1/inference", InferenceBody(kModel, "still here"), {Bearer(kFreeKey)});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE(IsCompletion(ok->status, ok->body, "still here", kDefaultMaxTokens));
}

}  // namespace
}  // namespace sluice::testing
