#include "limits/scaling_advisor.h"

#include <gtest/gtest.h>

#include "testing/fake_executor.h"

namespace sluice {
namespace {

using std::chrono::seconds;

class ScalingAdvisorTest : public ::testing::Test {
 protected:
  std::unique_ptr<ScalingAdvisor> Make(ScalingAdvisor::Options o = {}) {
    o.clock = &clock_;
    auto a = ScalingAdvisor::Create(o);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return std::move(a).value();
  }
  void Advance(SteadyClock::duration d) { clock_.Set(clock_.Now() + d); }
  testing::FakeClock clock_;
};

TEST_F(ScalingAdvisorTest, SeedArithmetic) {
  // 640 requests/s per GPU at 70 %: 448/s each.
  EXPECT_EQ(ScalingAdvisor::Needed(1'000, 640, 0.7, 1), 3u);
  EXPECT_EQ(ScalingAdvisor::Needed(10'000, 640, 0.7, 1), 23u);
  EXPECT_EQ(ScalingAdvisor::Needed(448, 640, 0.7, 1), 1u);
  EXPECT_EQ(ScalingAdvisor::Needed(0, 640, 0.7, 2), 2u);
}

TEST_F(ScalingAdvisorTest, ScalesUpAtOnceAndDownSlowlyInSteps) {
  ScalingAdvisor::Options o;
  o.target_utilization = 0.5;  // 320/s per 640/s device
  o.scale_down_cooldown_ms = 60'000;
  o.max_scale_down_fraction = 0.2;
  auto a = Make(o);
  EXPECT_EQ(a->recommended(), 1u);
  EXPECT_EQ(a->Update(3'200, 640), 10u);  // up at once
  Advance(seconds(1));
  EXPECT_EQ(a->Update(640, 640), 10u);  // the load fell to 2 devices' worth: wait
  Advance(seconds(58));
  EXPECT_EQ(a->Update(640, 640), 10u);
  Advance(seconds(1));
  EXPECT_EQ(a->Update(640, 640), 8u);  // cooldown over: at most 20 % down
  EXPECT_EQ(a->Update(640, 640), 8u);  // and then the cooldown again
  Advance(seconds(60));
  EXPECT_EQ(a->Update(640, 640), 7u);  // 20 % of 8 rounds down to 1
  Advance(seconds(30));
  EXPECT_EQ(a->Update(6'400, 640), 20u);  // a burst goes straight up
  EXPECT_EQ(a->recommended(), 20u);
}

TEST_F(ScalingAdvisorTest, SustainedLoadRestartsTheQuietTime) {
  ScalingAdvisor::Options o;
  o.target_utilization = 1;
  o.scale_down_cooldown_ms = 10'000;
  auto a = Make(o);
  EXPECT_EQ(a->Update(640 * 5, 640), 5u);
  Advance(seconds(9));
  EXPECT_EQ(a->Update(640 * 5, 640), 5u);  // still needed
  Advance(seconds(9));
  EXPECT_EQ(a->Update(640, 640), 5u);  // only 9 s since it was last needed
  Advance(seconds(1));
  EXPECT_EQ(a->Update(640, 640), 4u);
}

TEST_F(ScalingAdvisorTest, TargetUtilizationChangesWithAReload) {
  ScalingAdvisor::Options o;
  o.target_utilization = 0.7;
  auto a = Make(o);
  EXPECT_EQ(a->Update(1'000, 640), 3u);  // 1,000 / 448
  ASSERT_TRUE(a->SetTargetUtilization(0.35).ok());
  EXPECT_EQ(a->Update(1'000, 640), 5u);  // 1,000 / 224: up at once
  Status st = a->SetTargetUtilization(1.5);
  EXPECT_EQ(st.message(), "target_utilization must be in (0, 1], got 1.500000");
}

TEST_F(ScalingAdvisorTest, ValidatesOptions) {
  EXPECT_FALSE(ScalingAdvisor::Create({.target_utilization = 0}).ok());
  EXPECT_FALSE(ScalingAdvisor::Create({.scale_down_cooldown_ms = -1}).ok());
  EXPECT_FALSE(ScalingAdvisor::Create({.max_scale_down_fraction = 0}).ok());
  EXPECT_FALSE(ScalingAdvisor::Create({.min_devices = 0}).ok());
}

}  // namespace
}  // namespace sluice
