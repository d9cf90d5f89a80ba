// System properties of the real scheduler (ModelScheduler + InferenceService
// on the bundled config/sluice.yaml: 4 devices, 34 ms + 0.5 ms per item,
// batches of 32, so 640 req/s per device and 2,560 req/s in all on full
// batches), checked over many seeded scenarios in virtual time. Only counts
// and ratios are asserted, never wall-clock speed.
#include "simulation/simulation.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backends/sim/sim_backend.h"
#include "simulation/capacity_plan.h"

namespace sluice {
namespace {

constexpr double kCapacityRps = 4 * 32 / 0.050;  // the bundled devices on full batches
constexpr int kSeeds = 20;

const AppConfig& Bundled() {
  static const AppConfig config = [] {
    auto c = LoadConfigFile(std::string(SLUICE_SOURCE_DIR) + "/config/sluice.yaml");
    EXPECT_TRUE(c.ok()) << c.status().message();
    return c.ok() ? c.value() : AppConfig{};
  }();
  return config;
}

Scenario Load(double rate_rps, double duration_s, uint64_t seed) {
  Scenario s;
  s.rate_rps = rate_rps;
  s.duration_s = duration_s;
  s.seed = seed;
  return s;
}

SimulationReport Simulate(const Scenario& scenario, int devices = 0) {
  Simulation::Options o;
  o.scenario = scenario;
  o.devices = devices;
  auto sim = Simulation::Create(Bundled(), o);
  EXPECT_TRUE(sim.ok()) << sim.status().message();
  if (!sim.ok()) return {};
  return (*sim)->Run();
}

const StreamReport& Tier(const SimulationReport& r, const std::string& name) {
  for (const StreamReport& s : r.tiers) {
    if (s.name == name) return s;
  }
  ADD_FAILURE() << "no tier " << name;
  return r.all;
}

std::vector<const StreamReport*> Tiers(const SimulationReport& r,
                                       const std::vector<std::string>& names) {
  std::vector<const StreamReport*> out;
  for (const std::string& n : names) out.push_back(&Tier(r, n));
  return out;
}

// Every request got exactly one answer, and each answer one category.
void ExpectAnsweredExactlyOnce(const SimulationReport& r) {
  EXPECT_EQ(r.answered_twice, 0u);
  EXPECT_EQ(r.unanswered, 0u);
  EXPECT_GT(r.all.offered, 0u);
  for (const auto* list : {&r.tiers, &r.hostile}) {
    for (const StreamReport& s : *list) {
      EXPECT_EQ(s.offered, s.ok + s.refused_total + s.timed_out + s.failed + s.other) << s.name;
      EXPECT_EQ(s.other, 0u) << s.name;
    }
  }
}

TEST(SimulationTest, EveryRequestIsAnsweredExactlyOnceInEveryKindOfScenario) {
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Scenario bursty = Load(1.5 * kCapacityRps, 4, seed);
    bursty.arrivals = ArrivalKind::kBursty;
    bursty.burst_period_s = 2;
    ExpectAnsweredExactlyOnce(Simulate(bursty));
    Scenario flapping = Load(0.9 * kCapacityRps, 4, seed);
    ASSERT_TRUE(ParseEvent("0.5s-1.5s:down:0-1", &flapping.events).ok());
    ASSERT_TRUE(ParseEvent("1s-3s:disable:3", &flapping.events).ok());
    ASSERT_TRUE(ParseEvent("2s-2.5s:outage", &flapping.events).ok());
    flapping.hostile.push_back({.rate_rps = 100, .deadline_ms = 40});
    ExpectAnsweredExactlyOnce(Simulate(flapping));
  }
}

TEST(SimulationTest, UnderCapacityEveryTierSucceeds) {
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    for (ArrivalKind kind : {ArrivalKind::kPoisson, ArrivalKind::kConstant}) {
      Scenario s = Load(0.7 * kCapacityRps, 4, seed);
      s.arrivals = kind;
      const SimulationReport r = Simulate(s);
      ExpectAnsweredExactlyOnce(r);
      for (const StreamReport& t : r.tiers) {
        EXPECT_GE(t.success_ratio, 0.999) << t.name;
        EXPECT_EQ(t.refused_total, 0u) << t.name;
        EXPECT_EQ(t.timed_out, 0u) << t.name;
        EXPECT_EQ(t.failed, 0u) << t.name;
      }
    }
  }
}

TEST(SimulationTest, UnderThreefoldOverloadPaidTiersAreServedAndTheRestRefusedAtOnce) {
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Scenario s = Load(3 * kCapacityRps, 5, seed);
    s.warmup_s = 1;
    const SimulationReport r = Simulate(s);
    ExpectAnsweredExactlyOnce(r);
    EXPECT_GE(Tier(r, "enterprise").success_ratio, 0.999);
    EXPECT_GE(Tier(r, "paid").success_ratio, 0.999);
    for (const StreamReport& t : r.tiers) {
      EXPECT_EQ(t.timed_out, 0u) << t.name;  // refusals are 503s at admission, not 504s
      EXPECT_EQ(t.refused_after_queueing, 0u) << t.name;
    }
    EXPECT_GE(r.utilization, 0.95);
    EXPECT_GE(r.goodput_rps, 0.95 * kCapacityRps);
  }
}

TEST(SimulationTest, HostileClientWithImpossibleDeadlinesIsRefusedAndChangesNothing) {
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    for (double load : {0.7, 3.0}) {
      Scenario calm = Load(load * kCapacityRps, 3, seed);
      Scenario hostile = calm;
      hostile.hostile.push_back({.rate_rps = 40, .deadline_ms = 5});  // < one 34.5 ms batch
      const SimulationReport without = Simulate(calm);
      const SimulationReport with = Simulate(hostile);
      ExpectAnsweredExactlyOnce(with);
      ASSERT_EQ(with.hostile.size(), 1u);
      const StreamReport& h = with.hostile[0];
      EXPECT_GT(h.offered, 0u);
      EXPECT_EQ(h.refused_total, h.offered);
      EXPECT_EQ(h.refused.count("invalid") ? h.refused.at("invalid") : 0, h.offered);  // 400
      const uint64_t ok_without = Tier(without, "enterprise").ok;
      const uint64_t ok_with = Tier(with, "enterprise").ok;
      EXPECT_NEAR(static_cast<double>(ok_with), static_cast<double>(ok_without),
                  2 + 0.001 * ok_without);
    }
  }
}

TEST(SimulationTest, HostileClientWithShortDeadlinesCannotHurtEnterprise) {
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    for (double load : {0.7, 3.0}) {
      Scenario s = Load(load * kCapacityRps, 3, seed);
      s.hostile.push_back({.rate_rps = 200, .deadline_ms = 40});  // longer than one batch
      const SimulationReport r = Simulate(s);
      ExpectAnsweredExactlyOnce(r);
      EXPECT_EQ(Tier(r, "enterprise").success_ratio, 1.0);
      EXPECT_EQ(r.breaker_opens, 0u);
      EXPECT_EQ(r.failed_batches, 0u);
    }
  }
}

// All devices down from 4 s to 12 s under 70% load, then back.
SimulationReport OutageRun(uint64_t seed) {
  Scenario s = Load(0.7 * kCapacityRps, 18, seed);
  EXPECT_TRUE(ParseEvent("4s-12s:outage", &s.events).ok());
  return Simulate(s);
}

TEST(SimulationTest, OutageIsRefusedAtOnceAndServiceRecoversWithinTwoSeconds) {
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const SimulationReport r = OutageRun(seed);
    ExpectAnsweredExactlyOnce(r);
    // After the first second of the outage: 503 backends_unavailable, no 504.
    const SecondCounts during = SumSeconds({&r.all}, 5, 12);
    EXPECT_GT(during.offered, 0u);
    EXPECT_EQ(during.timed_out, 0u);
    EXPECT_GE(during.refused, during.offered * 0.99);
    EXPECT_GT(r.all.refused.count("backends_unavailable"), 0u);
    // Within 2 s of the devices' return, >= 99% succeed again, and stay so.
    const std::optional<int> back = FirstSecondMeeting({&r.all}, 12, 0.99);
    ASSERT_TRUE(back.has_value());
    EXPECT_LE(*back, 14);
    EXPECT_GE(SumSeconds({&r.all}, 14, 18).success_ratio(), 0.99);
  }
}

// During a full outage every endpoint's breaker half-opens once a second
// and admission lets a probe batch of real requests in. A failed probe's
// requests are refused 503 backends_unavailable at once (retries never run
// as probes), so nothing in the outage ends as a 502.
TEST(SimulationTest, OutageNeverFailsProbeRequestsWith502) {
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const SimulationReport r = OutageRun(seed);
    EXPECT_EQ(SumSeconds({&r.all}, 5, 12).failed, 0u);
  }
}

// Devices 0-1 lost from 5 s to 13 s under 70% load (then 140% of what is
// left): within 2 s the overload properties hold; 2 s after the return,
// the under-capacity ones.
TEST(SimulationTest, LosingHalfTheDevicesUnderLoadSettlesWithinTwoSeconds) {
  for (const char* event : {"5s-13s:down:0-1", "5s-13s:disable:0-1"}) {
    for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
      SCOPED_TRACE(std::string(event) + ", seed " + std::to_string(seed));
      Scenario s = Load(0.7 * kCapacityRps, 20, seed);
      ASSERT_TRUE(ParseEvent(event, &s.events).ok());
      const SimulationReport r = Simulate(s);
      ExpectAnsweredExactlyOnce(r);
      const auto paid_tiers = Tiers(r, {"enterprise", "paid"});
      EXPECT_GE(SumSeconds(paid_tiers, 7, 13).success_ratio(), 0.999);
      const SecondCounts degraded = SumSeconds({&r.all}, 7, 13);
      EXPECT_EQ(degraded.timed_out, 0u);
      EXPECT_EQ(degraded.failed, 0u);
      EXPECT_GE(SumSeconds({&r.all}, 15, 20).success_ratio(), 0.999);
    }
  }
}

TEST(SimulationTest, TheSameSeedGivesTheSameReport) {
  Scenario s = Load(2 * kCapacityRps, 3, 42);
  ASSERT_TRUE(ParseEvent("1s-2s:down:0", &s.events).ok());
  const SimulationReport a = Simulate(s);
  const SimulationReport b = Simulate(s);
  EXPECT_EQ(ReportJson(a, true), ReportJson(b, true));
}

TEST(SimulationTest, RejectsScenariosTheConfigurationCannotPlay) {
  Simulation::Options o;
  o.scenario.mix = {{"gold", 1}};
  EXPECT_NE(Simulation::Create(Bundled(), o).status().message().find("gold"), std::string::npos);
  o = Simulation::Options();
  ASSERT_TRUE(ParseEvent("1s:down:4", &o.scenario.events).ok());  // devices 0-3
  EXPECT_FALSE(Simulation::Create(Bundled(), o).ok());
  o.devices = 5;
  EXPECT_TRUE(Simulation::Create(Bundled(), o).ok());
  o = Simulation::Options();
  o.model = "no-such-model";
  EXPECT_FALSE(Simulation::Create(Bundled(), o).ok());
}

TEST(FaultyBackendTest, ADownDeviceFailsTheWholeBatchAfterTheDelay) {
  VirtualExecutor ex;
  SimBackend::Options so;
  so.model = "m";
  so.executor = &ex;
  auto faulty = FaultyBackend::Create({.failure_delay_us = 1'000, .executor = &ex},
                                      std::move(SimBackend::Create(so)).value());
  ASSERT_TRUE(faulty.ok());
  auto req = std::make_shared<InferenceRequest>();
  req->input = "hello";
  std::vector<RequestPtr> batch{req};
  std::vector<std::pair<TimePoint, BatchResult>> done;
  auto record = [&](BatchResult&& r) { done.push_back({ex.Now(), std::move(r)}); };
  const TimePoint t0 = ex.Now();
  (*faulty)->SetDown(true);
  (*faulty)->RunBatch(batch, record);
  ex.RunUntil(t0 + Millis(10));
  (*faulty)->SetDown(false);
  (*faulty)->RunBatch(batch, record);
  ex.RunUntil(t0 + Millis(100));
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].first, t0 + Millis(1));
  EXPECT_EQ(done[0].second.status.code(), ErrorCode::kBackendError);
  EXPECT_NE(done[0].second.status.message().find("connection refused"), std::string::npos);
  EXPECT_TRUE(done[1].second.status.ok());
  EXPECT_EQ(done[1].second.items.size(), 1u);
  EXPECT_EQ((*faulty)->refused_batches(), 1u);
}

TEST(CapacityPlanTest, FindsTheFewestDevicesAndShowsTheArithmetic) {
  PlanOptions o;
  o.rate_rps = 1000;
  o.peak_factor = 3;
  o.p95_ms = 400;
  o.trial_duration_s = 8;
  o.warmup_s = 2;
  auto plan = PlanCapacity(Bundled(), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->device_capacity_rps, 640);
  EXPECT_EQ(plan->arithmetic_devices, 3);       // ceil(1000 / (640 x 0.75))
  EXPECT_EQ(plan->arithmetic_peak_devices, 7);  // ceil(3000 / 480)
  EXPECT_EQ(plan->lower_bound_devices, 5);      // ceil(0.999 x 3000 / 640)
  ASSERT_GE(plan->devices, plan->lower_bound_devices);
  bool found = false;
  for (const PlanTrial& t : plan->trials) {
    if (t.devices == plan->devices) found = t.meets;
    if (t.devices < plan->devices) {
      EXPECT_FALSE(t.meets) << t.devices;
    }
  }
  EXPECT_TRUE(found);
  EXPECT_NE(FormatCapacityPlan(*plan, o).find("arithmetic"), std::string::npos);
}

}  // namespace
}  // namespace sluice
