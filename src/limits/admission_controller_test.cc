#include "limits/admission_controller.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "testing/fake_executor.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Tier indexes as in the bundled config: enterprise first.
constexpr size_t kEnterprise = 0;
constexpr size_t kPaid = 1;
constexpr size_t kFree = 2;

class AdmissionControllerTest : public ::testing::Test {
 protected:
  AdmissionController::Options DefaultOptions() {
    AdmissionController::Options o;
    o.model = "m";
    o.tiers = {{"enterprise", 2, SeedMaxQueueDepth("enterprise")},
               {"paid", 1, SeedMaxQueueDepth("paid")},
               {"free", 0, SeedMaxQueueDepth("free")}};
    o.total_slots = 1;  // prior: 32 items / 50 ms = 640/s per slot
    o.clock = &clock_;
    return o;
  }
  std::unique_ptr<AdmissionController> Make(size_t slots = 1) {
    AdmissionController::Options o = DefaultOptions();
    o.total_slots = slots;
    return Make(o);
  }
  std::unique_ptr<AdmissionController> Make(const AdmissionController::Options& o) {
    auto c = AdmissionController::Create(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(c).value();
  }
  void Advance(SteadyClock::duration d) { clock_.Set(clock_.Now() + d); }
  // Arrivals per second for each tier {enterprise, paid, free}, for `secs`
  // whole seconds (the arrival window is 3 s).
  void Offer(AdmissionController& c, std::vector<int> per_second, int secs = 3) {
    for (int s = 0; s < secs; ++s) {
      for (size_t tier = 0; tier < per_second.size(); ++tier) {
        for (int i = 0; i < per_second[tier]; ++i) c.OnArrival(tier);
      }
      Advance(seconds(1));
    }
  }

  testing::FakeClock clock_;
};

TEST_F(AdmissionControllerTest, CreateValidatesOptions) {
  auto expect_error = [&](auto mutate, const std::string& field) {
    AdmissionController::Options o = DefaultOptions();
    mutate(o);
    auto c = AdmissionController::Create(o);
    ASSERT_FALSE(c.ok()) << field;
    EXPECT_EQ(c.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find("admission[m]." + field), std::string::npos)
        << c.status().message();
  };
  expect_error([](auto& o) { o.tiers.clear(); }, "tiers");
  expect_error([](auto& o) { o.total_slots = 0; }, "total_slots");
  expect_error([](auto& o) { o.max_batch_size = 0; }, "max_batch_size");
  expect_error([](auto& o) { o.prior_batch_fixed_us = o.prior_batch_per_item_us = 0; },
               "prior_batch_fixed_us");
  expect_error([](auto& o) { o.target_utilization = 0; }, "target_utilization");
  expect_error([](auto& o) { o.target_utilization = 1.5; }, "target_utilization");
  expect_error([](auto& o) { o.target_utilization = std::nan(""); }, "target_utilization");
  expect_error([](auto& o) { o.arrival_window_s = 0; }, "arrival_window_s");
  expect_error([](auto& o) { o.shed_margin = -0.1; }, "shed_margin");
  expect_error([](auto& o) { o.shed_hysteresis = 1; }, "shed_hysteresis");
  expect_error([](auto& o) { o.max_retry_after_s = 0; }, "max_retry_after_s");
  expect_error([](auto& o) { o.throughput_time_constant_ms = 0; }, "throughput_time_constant_ms");
  EXPECT_TRUE(AdmissionController::Create(DefaultOptions()).ok());
}

TEST_F(AdmissionControllerTest, UsesThePriorBeforeAnyBatch) {
  auto c = Make();
  AdmissionSnapshot s = c->Snapshot();
  EXPECT_FALSE(s.measured);
  EXPECT_DOUBLE_EQ(s.throughput_per_slot_rps, 640.0);
  EXPECT_DOUBLE_EQ(s.capacity_rps, 480.0);  // * 0.75
  EXPECT_EQ(s.healthy_slots, 1u);
  EXPECT_EQ(s.max_shedding_level, 2);
  // 320 queued at 640/s: a 0.5 s wait.
  EXPECT_TRUE(c->Admit(kEnterprise, 320, milliseconds(600)).admitted);
  AdmissionDecision d = c->Admit(kEnterprise, 320, milliseconds(400));
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, AdmissionReject::kDeadlineUnreachable);
  EXPECT_DOUBLE_EQ(d.estimated_wait_s, 0.5);
}

TEST_F(AdmissionControllerTest, DepthThresholdsPerTier) {
  auto c = Make(/*slots=*/4);
  const auto budget = seconds(10);
  EXPECT_TRUE(c->Admit(kFree, 100, budget).admitted);
  AdmissionDecision d = c->Admit(kFree, 101, budget);
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, AdmissionReject::kQueueDepthThreshold);
  EXPECT_EQ(d.retry_after_s, 1);
  EXPECT_EQ(d.ToStatus().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(HttpStatusFor(d.ToStatus().code()), 503);

  EXPECT_TRUE(c->Admit(kPaid, 101, budget).admitted);
  EXPECT_TRUE(c->Admit(kPaid, 500, budget).admitted);
  EXPECT_EQ(c->Admit(kPaid, 501, budget).reason, AdmissionReject::kQueueDepthThreshold);
  EXPECT_TRUE(c->Admit(kEnterprise, 501, budget).admitted);
  EXPECT_TRUE(c->Admit(kEnterprise, 5000, budget).admitted);
  // An unknown tier gets the strictest threshold.
  EXPECT_EQ(c->Admit(7, 101, budget).reason, AdmissionReject::kQueueDepthThreshold);
}

TEST_F(AdmissionControllerTest, RejectsWhenTheDeadlineCannotBeMet) {
  auto c = Make();  // 640/s
  // 64 queued ahead: 100 ms.
  AdmissionDecision d = c->Admit(kEnterprise, 64, milliseconds(99));
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, AdmissionReject::kDeadlineUnreachable);
  EXPECT_EQ(d.retry_after_s, 1);
  EXPECT_TRUE(c->Admit(kEnterprise, 64, milliseconds(101)).admitted);
  // What matters is who goes first: nothing ahead of it under EDF.
  EXPECT_TRUE(c->Admit({kEnterprise, 64, size_t{0}, milliseconds(1)}).admitted);
  EXPECT_FALSE(c->Admit({kEnterprise, 64, size_t{0}, -milliseconds(1)}).admitted);
}

TEST_F(AdmissionControllerTest, RetryAfterIsTheTimeToDrainTheQueue) {
  auto c = Make();  // 640/s
  EXPECT_EQ(c->Admit(kEnterprise, 1280, seconds(1)).retry_after_s, 2);
  EXPECT_EQ(c->Admit(kEnterprise, 1281, seconds(1)).retry_after_s, 3);
  EXPECT_EQ(c->Admit(kEnterprise, 64'000, seconds(1)).retry_after_s, 30);  // capped
  EXPECT_EQ(c->Admit(kEnterprise, 1280, seconds(5)).retry_after_s, 0);     // admitted

  c->SetHealthySlots(0);  // nothing can run: nothing can meet a deadline
  AdmissionDecision d = c->Admit(kEnterprise, 0, seconds(60));
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, AdmissionReject::kDeadlineUnreachable);
  EXPECT_TRUE(std::isinf(d.estimated_wait_s));
  EXPECT_EQ(d.retry_after_s, 30);
}

TEST_F(AdmissionControllerTest, OverCapacityShedsFreeFirstThenPaidNeverEnterprise) {
  auto c = Make();            // capacity 480/s
  Offer(*c, {10, 100, 400});  // 510/s > 480
  AdmissionSnapshot s = c->Snapshot();
  EXPECT_DOUBLE_EQ(s.arrival_rps, 510.0);
  EXPECT_EQ(s.arrival_rps_by_tier, (std::vector<double>{10, 100, 400}));
  EXPECT_EQ(s.shedding_level, 1);
  AdmissionDecision d = c->Admit(kFree, 0, seconds(1));
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, AdmissionReject::kOverCapacity);
  EXPECT_EQ(d.retry_after_s, 1);
  EXPECT_EQ(d.shedding_level, 1);
  EXPECT_TRUE(c->Admit(kPaid, 0, seconds(1)).admitted);
  EXPECT_TRUE(c->Admit(kEnterprise, 0, seconds(1)).admitted);

  Offer(*c, {100, 500, 400});  // paid + enterprise 600/s > 480 * 1.2
  EXPECT_EQ(c->Admit(kPaid, 0, seconds(1)).reason, AdmissionReject::kOverCapacity);
  EXPECT_EQ(c->Admit(kFree, 0, seconds(1)).reason, AdmissionReject::kOverCapacity);
  EXPECT_TRUE(c->Admit(kEnterprise, 0, seconds(1)).admitted);
  EXPECT_EQ(c->Snapshot().shedding_level, 2);

  Offer(*c, {5000, 0, 0});  // enterprise alone 10x capacity: still never shed
  EXPECT_EQ(c->Snapshot().shedding_level, 2);
  EXPECT_TRUE(c->Admit(kEnterprise, 0, seconds(1)).admitted);
}

TEST_F(AdmissionControllerTest, PaidIsShedOnlyWhenStillOverByTheMargin) {
  auto c = Make();             // capacity 480/s; paid shed above 576/s
  Offer(*c, {100, 450, 100});  // all 650 > 480; paid + enterprise 550 < 576
  EXPECT_EQ(c->Snapshot().shedding_level, 1);
  EXPECT_TRUE(c->Admit(kPaid, 0, seconds(1)).admitted);
  EXPECT_FALSE(c->Admit(kFree, 0, seconds(1)).admitted);
}

TEST_F(AdmissionControllerTest, HysteresisKeepsTheLevelNearTheBoundary) {
  auto c = Make();            // capacity 480/s
  Offer(*c, {10, 100, 400});  // 510
  EXPECT_EQ(c->Snapshot().shedding_level, 1);
  Offer(*c, {10, 100, 340});  // 450: under capacity, not by 10 %
  EXPECT_EQ(c->Snapshot().shedding_level, 1);
  Offer(*c, {10, 100, 290});  // 400 < 432
  EXPECT_EQ(c->Snapshot().shedding_level, 0);
  EXPECT_TRUE(c->Admit(kFree, 0, seconds(1)).admitted);
  Offer(*c, {10, 100, 340});  // 450 < 480: entering needs the full threshold
  EXPECT_EQ(c->Snapshot().shedding_level, 0);
}

TEST_F(AdmissionControllerTest, CapacityFollowsMeasuredBatches) {
  auto c = Make(/*slots=*/4);
  // Full batches take 100 ms, twice the prior.
  for (int i = 0; i < 30; ++i) {
    Advance(milliseconds(100));
    for (int slot = 0; slot < 4; ++slot) c->OnBatch(32, milliseconds(100));
  }
  AdmissionSnapshot s = c->Snapshot();
  EXPECT_TRUE(s.measured);
  EXPECT_NEAR(s.throughput_per_slot_rps, 320.0, 1e-6);
  EXPECT_NEAR(s.speed_factor, 2.0, 1e-9);
  EXPECT_NEAR(s.capacity_rps, 960.0, 1e-6);  // 4 * 320 * 0.75
  // The wait estimate uses the measurement: 640 queued at 1280/s.
  EXPECT_DOUBLE_EQ(c->Admit(kEnterprise, 640, seconds(1)).estimated_wait_s, 0.5);

  // The device recovers: 95 % of the way back within three time constants.
  for (int i = 0; i < 60; ++i) {
    Advance(milliseconds(50));
    for (int slot = 0; slot < 4; ++slot) c->OnBatch(32, milliseconds(50));
  }
  EXPECT_GT(c->Snapshot().throughput_per_slot_rps, 320.0 + 0.95 * 320.0);
}

TEST_F(AdmissionControllerTest, HealthySlotsScaleCapacityAtOnce) {
  auto c = Make(/*slots=*/4);  // 4 * 640 * 0.75 = 1920/s
  Offer(*c, {75, 375, 1050});  // 1500/s
  EXPECT_EQ(c->Snapshot().shedding_level, 0);
  EXPECT_TRUE(c->Admit(kFree, 0, seconds(1)).admitted);

  c->SetHealthySlots(2);  // half the devices fail: 960/s
  AdmissionSnapshot s = c->Snapshot();
  EXPECT_DOUBLE_EQ(s.capacity_rps, 960.0);
  EXPECT_EQ(s.healthy_slots, 2u);
  EXPECT_EQ(s.total_slots, 4u);
  EXPECT_EQ(c->Admit(kFree, 0, seconds(1)).reason, AdmissionReject::kOverCapacity);
  EXPECT_TRUE(c->Admit(kPaid, 0, seconds(1)).admitted);  // 450/s fits
  EXPECT_TRUE(c->Admit(kEnterprise, 0, seconds(1)).admitted);
  // The wait estimate halves the throughput too: 640 queued at 1280/s.
  EXPECT_DOUBLE_EQ(c->Admit(kEnterprise, 640, seconds(1)).estimated_wait_s, 0.5);

  c->SetHealthySlots(10);  // they return (clamped to the total)
  EXPECT_EQ(c->Snapshot().healthy_slots, 4u);
  EXPECT_TRUE(c->Admit(kFree, 0, seconds(1)).admitted);
}

TEST_F(AdmissionControllerTest, UnknownTierIsShedFirst) {
  auto c = Make();
  Offer(*c, {0, 0, 600});
  EXPECT_EQ(c->Admit(9, 0, seconds(1)).reason, AdmissionReject::kOverCapacity);
}

TEST(AdmissionNamesTest, NamesAndSeeds) {
  EXPECT_STREQ(AdmissionRejectName(AdmissionReject::kQueueDepthThreshold), "queue_depth_threshold");
  EXPECT_STREQ(AdmissionRejectName(AdmissionReject::kOverCapacity), "over_capacity");
  EXPECT_STREQ(AdmissionRejectName(AdmissionReject::kDeadlineUnreachable), "deadline_unreachable");
  EXPECT_EQ(SeedMaxQueueDepth("free"), 100u);
  EXPECT_EQ(SeedMaxQueueDepth("paid"), 500u);
  EXPECT_EQ(SeedMaxQueueDepth("enterprise"), kNoQueueDepthLimit);
  EXPECT_TRUE(AdmissionDecision{}.ToStatus().ok());
}

}  // namespace
}  // namespace sluice
