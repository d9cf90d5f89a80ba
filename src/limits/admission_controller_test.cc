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
  AdmissionControllerTest() {
    BatchCostModel::Options c;  // prior: 32 items in 34 + 16 ms = 640/s per slot
    c.clock = &clock_;
    cost_ = std::move(BatchCostModel::Create(c)).value();
  }
  AdmissionController::Options DefaultOptions() {
    AdmissionController::Options o;
    o.model = "m";
    o.tiers = {{"enterprise", 2, SeedMaxQueueDepth("enterprise")},
               {"paid", 1, SeedMaxQueueDepth("paid")},
               {"free", 0, SeedMaxQueueDepth("free")}};
    o.total_slots = 1;
    o.cost_model = cost_.get();
    o.deadline_margin = 0;  // exact arithmetic in the tests below
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
  // whole seconds (the arrival window is 2 s).
  void Offer(AdmissionController& c, std::vector<int> per_second, int secs = 3) {
    for (int s = 0; s < secs; ++s) {
      for (size_t tier = 0; tier < per_second.size(); ++tier) {
        for (int i = 0; i < per_second[tier]; ++i) c.OnArrival(tier);
      }
      Advance(seconds(1));
    }
  }
  AdmissionDecision Admit(AdmissionController& c, size_t tier, size_t ahead,
                          SteadyClock::duration left, size_t depth = 0) {
    return c.Admit(AdmissionQuery{tier, depth, ahead, left});
  }

  testing::FakeClock clock_;
  std::unique_ptr<BatchCostModel> cost_;
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
  expect_error([](auto& o) { o.cost_model = nullptr; }, "cost_model");
  expect_error([](auto& o) { o.arrival_window_s = 0; }, "arrival_window_s");
  expect_error([](auto& o) { o.deadline_margin = -0.1; }, "deadline_margin");
  expect_error([](auto& o) { o.deadline_margin = std::nan(""); }, "deadline_margin");
  expect_error([](auto& o) { o.min_share = 0; }, "min_share");
  expect_error([](auto& o) { o.max_retry_after_s = 0; }, "max_retry_after_s");
  EXPECT_TRUE(AdmissionController::Create(DefaultOptions()).ok());
}

TEST_F(AdmissionControllerTest, AdmitsWhateverFitsItsDeadlineWithNoUtilizationCap) {
  auto c = Make(4);  // 4 x 640 = 2,560/s
  AdmissionSnapshot s = c->Snapshot();
  EXPECT_FALSE(s.measured);
  EXPECT_DOUBLE_EQ(s.throughput_per_slot_rps, 640.0);
  EXPECT_DOUBLE_EQ(s.capacity_rps, 2560.0);  // no target_utilization factor
  // Arrivals at 2,500/s (98 % of the devices) are all admitted while each
  // one's predicted dispatch fits its deadline.
  Offer(*c, {125, 625, 1750});
  for (size_t tier : {kEnterprise, kPaid, kFree}) {
    EXPECT_TRUE(Admit(*c, tier, 32, milliseconds(400)).admitted) << tier;
  }
}

TEST_F(AdmissionControllerTest, PredictsTheWaitFromWhatIsAheadAndWhatOvertakes) {
  auto c = Make(1);  // 640/s
  // Enterprise at 200/s, paid at 120/s overtake free requests.
  Offer(*c, {200, 120, 1000});
  // Enterprise: nothing overtakes it; 320 ahead at 640/s = 0.5 s.
  AdmissionDecision e = Admit(*c, kEnterprise, 320, milliseconds(600));
  EXPECT_TRUE(e.admitted);
  EXPECT_DOUBLE_EQ(e.estimated_wait_s, 0.5);
  // Paid: enterprise overtakes it, 640 - 200 = 440/s left: 0.5 s for 220.
  AdmissionDecision p = Admit(*c, kPaid, 220, milliseconds(600));
  EXPECT_TRUE(p.admitted);
  EXPECT_DOUBLE_EQ(p.estimated_wait_s, 0.5);
  // Free: 640 - 320 = 320/s left: 64 ahead = 0.2 s fits 1.5 s, 500 ahead
  // (1.56 s) does not.
  EXPECT_TRUE(Admit(*c, kFree, 64, milliseconds(1500)).admitted);
  AdmissionDecision f = Admit(*c, kFree, 500, milliseconds(1500));
  EXPECT_FALSE(f.admitted);
  EXPECT_EQ(f.reason, AdmissionReject::kDeadlineUnreachable);
  EXPECT_EQ(f.retry_after_s, 1);
  EXPECT_EQ(f.ToStatus().code(), ErrorCode::kUnavailable);
}

TEST_F(AdmissionControllerTest, EnterpriseIsRefusedOnlyWhenItAloneExceedsTheDevices) {
  auto c = Make(1);
  // Free and paid far beyond the device: enterprise still sees all of it.
  Offer(*c, {100, 2000, 8000});
  EXPECT_TRUE(Admit(*c, kEnterprise, 200, milliseconds(400)).admitted);
  // Paid is left 540/s; free is left the floor (5 % of 640/s = 32/s).
  EXPECT_TRUE(Admit(*c, kPaid, 400, milliseconds(800)).admitted);
  AdmissionDecision f = Admit(*c, kFree, 64, milliseconds(1500));
  EXPECT_FALSE(f.admitted);
  EXPECT_DOUBLE_EQ(f.estimated_wait_s, 2.0);
  // Enterprise's own backlog beyond its budget is refused.
  EXPECT_FALSE(Admit(*c, kEnterprise, 300, milliseconds(400)).admitted);
}

TEST_F(AdmissionControllerTest, DeadlineMarginStretchesTheWait) {
  AdmissionController::Options o = DefaultOptions();
  o.deadline_margin = 0.5;
  auto c = Make(o);
  // 320 ahead = 0.5 s, stretched to 0.75 s.
  EXPECT_FALSE(Admit(*c, kEnterprise, 320, milliseconds(700)).admitted);
  EXPECT_TRUE(Admit(*c, kEnterprise, 320, milliseconds(760)).admitted);
}

TEST_F(AdmissionControllerTest, ATotalDeadlineCountsTheBatchTheRequestWouldRideIn) {
  auto c = Make(4);
  auto query = [](size_t ahead, int total_ms) {
    AdmissionQuery q{kFree, ahead, ahead, milliseconds(total_ms)};
    q.time_to_total_deadline = milliseconds(total_ms);
    return q;
  };
  // Idle: a batch of one (34.5 ms) fits 40 ms.
  EXPECT_TRUE(c->Admit(query(0, 40)).admitted);
  // 31 ahead: it would ride in a full batch (50 ms) after ~12 ms: no.
  AdmissionDecision d = c->Admit(query(31, 40));
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, AdmissionReject::kDeadlineUnreachable);
  EXPECT_TRUE(c->Admit(query(31, 70)).admitted);
}

TEST_F(AdmissionControllerTest, QueueDepthThresholdIsAHardBound) {
  auto c = Make(4);
  AdmissionDecision d = Admit(*c, kFree, 0, seconds(10), /*depth=*/101);
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, AdmissionReject::kQueueDepthThreshold);
  EXPECT_STREQ(AdmissionRejectName(d.reason), "queue_depth_threshold");
  EXPECT_TRUE(Admit(*c, kFree, 0, seconds(10), 100).admitted);
  EXPECT_TRUE(Admit(*c, kPaid, 0, seconds(10), 500).admitted);
  EXPECT_FALSE(Admit(*c, kPaid, 0, seconds(10), 501).admitted);
  EXPECT_TRUE(Admit(*c, kEnterprise, 0, seconds(10), 100'000).admitted);
  // An unknown tier gets the smallest threshold.
  EXPECT_FALSE(Admit(*c, 7, 0, seconds(10), 101).admitted);
}

// A reload changes the bounds; the next decision follows them.
TEST_F(AdmissionControllerTest, QueueDepthBoundsChangeWithAReload) {
  auto c = Make(4);
  std::vector<AdmissionTier> tiers = DefaultOptions().tiers;
  tiers[kFree].max_queue_depth = 10;
  tiers[kPaid].max_queue_depth_per_slot = 5;  // 20 on 4 slots
  ASSERT_TRUE(c->SetQueueDepthLimits(tiers).ok());
  EXPECT_FALSE(Admit(*c, kFree, 0, seconds(10), 11).admitted);
  EXPECT_TRUE(Admit(*c, kFree, 0, seconds(10), 10).admitted);
  EXPECT_FALSE(Admit(*c, kPaid, 0, seconds(10), 21).admitted);
  EXPECT_TRUE(Admit(*c, kPaid, 0, seconds(10), 20).admitted);
  EXPECT_FALSE(Admit(*c, 7, 0, seconds(10), 11).admitted);  // unknown: the tightest
  tiers.pop_back();
  Status st = c->SetQueueDepthLimits(tiers);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "model 'm': admission has 3 tiers, not 2");
  EXPECT_FALSE(Admit(*c, kFree, 0, seconds(10), 11).admitted);  // unchanged
}

// A reload that gives the model more slots lifts the clamp on healthy ones.
TEST_F(AdmissionControllerTest, TotalSlotsFollowAReload) {
  auto c = Make(2);
  c->SetHealthySlots(4);
  EXPECT_EQ(c->Snapshot().healthy_slots, 2u);
  c->SetTotalSlots(4);
  c->SetHealthySlots(4);
  EXPECT_EQ(c->Snapshot().healthy_slots, 4u);
  EXPECT_EQ(c->Snapshot().total_slots, 4u);
}

TEST_F(AdmissionControllerTest, CapacityFollowsTheLearntCost) {
  auto c = Make(2);
  for (int i = 0; i < 20; ++i) {  // the device runs twice as slow as the prior
    Advance(milliseconds(100));
    cost_->Record(32, milliseconds(100));
  }
  AdmissionSnapshot s = c->Snapshot();
  EXPECT_TRUE(s.measured);
  EXPECT_NEAR(s.throughput_per_slot_rps, 320.0, 1e-6);
  EXPECT_NEAR(s.capacity_rps, 640.0, 1e-6);
  // 320 ahead now takes 0.5 s.
  EXPECT_FALSE(Admit(*c, kEnterprise, 320, milliseconds(400)).admitted);
  EXPECT_TRUE(Admit(*c, kEnterprise, 320, milliseconds(510)).admitted);
}

TEST_F(AdmissionControllerTest, SlotsFollowFailuresAtOnce) {
  auto c = Make(4);
  EXPECT_TRUE(Admit(*c, kEnterprise, 900, milliseconds(400)).admitted);  // 0.35 s at 2,560/s
  c->SetHealthySlots(2);                                                 // 0.70 s at 1,280/s
  EXPECT_FALSE(Admit(*c, kEnterprise, 900, milliseconds(400)).admitted);
  c->SetHealthySlots(4);
  EXPECT_TRUE(Admit(*c, kEnterprise, 900, milliseconds(400)).admitted);
  c->SetHealthySlots(9);  // clamped to the 4 configured
  EXPECT_EQ(c->Snapshot().healthy_slots, 4u);
}

TEST_F(AdmissionControllerTest, NoHealthySlotRefusesAtOnceUntilTheNextProbe) {
  auto c = Make(2);
  c->SetSlots({0, 0, clock_.Now() + milliseconds(2'300)});
  AdmissionDecision d = Admit(*c, kEnterprise, 0, seconds(2));
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, AdmissionReject::kBackendsUnavailable);
  EXPECT_STREQ(AdmissionRejectName(d.reason), "backends_unavailable");
  EXPECT_EQ(d.retry_after_s, 3);  // ceil(2.3 s) to the probe
  EXPECT_NE(d.ToStatus().message().find("retry in 3 s"), std::string::npos);
  // Every slot disabled, nothing will probe: the cap.
  c->SetSlots({0, 0, std::nullopt});
  EXPECT_EQ(Admit(*c, kEnterprise, 0, seconds(2)).retry_after_s, 30);
}

TEST_F(AdmissionControllerTest, AProbingEndpointGetsItsProbeBatch) {
  auto c = Make(2);
  c->SetSlots({0, 1, std::nullopt});  // half-open, nothing healthy
  EXPECT_TRUE(Admit(*c, kFree, 0, seconds(2), /*depth=*/0).admitted);
  EXPECT_TRUE(Admit(*c, kFree, 0, seconds(2), 31).admitted);
  // One batch is queued: the rest waits for the probe's verdict, one batch
  // away.
  AdmissionDecision d = Admit(*c, kEnterprise, 0, seconds(2), 32);
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, AdmissionReject::kBackendsUnavailable);
  EXPECT_EQ(d.retry_after_s, 1);
  // The probe succeeded: one healthy slot.
  c->SetSlots({1, 0, std::nullopt});
  EXPECT_TRUE(Admit(*c, kEnterprise, 32, seconds(2), 32).admitted);
}

TEST_F(AdmissionControllerTest, ArrivalRatesArePerTier) {
  auto c = Make(1);
  Offer(*c, {10, 20, 70});
  AdmissionSnapshot s = c->Snapshot();
  ASSERT_EQ(s.arrival_rps_by_tier.size(), 3u);
  EXPECT_DOUBLE_EQ(s.arrival_rps_by_tier[kEnterprise], 10);
  EXPECT_DOUBLE_EQ(s.arrival_rps_by_tier[kPaid], 20);
  EXPECT_DOUBLE_EQ(s.arrival_rps_by_tier[kFree], 70);
  EXPECT_DOUBLE_EQ(s.arrival_rps, 100);
}

}  // namespace
}  // namespace sluice
