#include "loadgen/schedule.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::loadgen {
namespace {

std::vector<Arrival> All(const ScheduleOptions& o) {
  auto s = ArrivalSchedule::Create(o);
  EXPECT_TRUE(s.ok()) << s.status().message();
  std::vector<Arrival> out;
  while (auto a = s->Next()) out.push_back(*a);
  return out;
}

TEST(ScheduleTest, ConstantRateIsEvenlySpaced) {
  ScheduleOptions o;
  o.steps = {{1000, 2'000'000}};
  const auto a = All(o);
  ASSERT_EQ(a.size(), 2000u);
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].offset_ns, static_cast<int64_t>(i) * 1'000'000);
    ASSERT_EQ(a[i].step, 0);
  }
}

TEST(ScheduleTest, PoissonHasTheMeanRateAndExponentialGaps) {
  ScheduleOptions o;
  o.steps = {{10000, 10'000'000}};
  o.poisson = true;
  o.seed = 42;
  const auto a = All(o);
  // 100,000 expected; the standard deviation of the count is about 316.
  EXPECT_NEAR(static_cast<double>(a.size()), 100000, 1500);
  std::vector<double> gaps;
  for (size_t i = 1; i < a.size(); ++i) gaps.push_back(a[i].offset_ns - a[i - 1].offset_ns);
  double mean = 0, var = 0;
  for (double g : gaps) mean += g;
  mean /= gaps.size();
  for (double g : gaps) var += (g - mean) * (g - mean);
  const double cv = std::sqrt(var / gaps.size()) / mean;
  EXPECT_NEAR(mean, 100'000, 1500);  // ns
  EXPECT_NEAR(cv, 1.0, 0.03);        // exponential: standard deviation == mean
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end(), [](const Arrival& x, const Arrival& y) {
    return x.offset_ns < y.offset_ns;
  }));
}

TEST(ScheduleTest, SameSeedSameArrivals) {
  ScheduleOptions o;
  o.steps = {{5000, 1'000'000}};
  o.poisson = true;
  o.seed = 9;
  const auto a = All(o), b = All(o);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i].offset_ns, b[i].offset_ns);
  o.seed = 10;
  const auto c = All(o);
  EXPECT_TRUE(c.size() != a.size() || c[10].offset_ns != a[10].offset_ns);
}

TEST(ScheduleTest, RampStepsFollowTheWarmup) {
  ScheduleOptions o;
  o.steps = {{1000, 1'000'000}, {2000, 1'000'000}, {4000, 1'000'000}};
  o.warmup_us = 500'000;
  auto s = ArrivalSchedule::Create(o);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->total_ns(), 3'500'000'000);
  EXPECT_EQ(s->StepStartNs(0), 500'000'000);
  EXPECT_EQ(s->StepStartNs(2), 2'500'000'000);
  EXPECT_EQ(s->StepStartNs(3), 3'500'000'000);
  std::vector<int> per_step(4);
  int64_t prev = -1;
  while (auto a = s->Next()) {
    per_step[a->step + 1]++;
    ASSERT_GT(a->offset_ns, prev);
    prev = a->offset_ns;
    if (a->step >= 0) {
      ASSERT_GE(a->offset_ns, s->StepStartNs(a->step));
      ASSERT_LT(a->offset_ns, s->StepStartNs(a->step + 1));
    } else {
      ASSERT_LT(a->offset_ns, 500'000'000);
    }
  }
  EXPECT_EQ(per_step, (std::vector<int>{500, 1000, 2000, 4000}));
}

TEST(ScheduleTest, ThreadSharesInterleaveIntoTheFullRate) {
  ScheduleOptions full;
  full.steps = {{3000, 1'000'000}};
  std::vector<int64_t> merged;
  for (int i = 0; i < 2; ++i) {
    ScheduleOptions o = full;
    o.steps[0].rate_per_s /= 2;
    o.phase = i / 2.0;
    for (const Arrival& a : All(o)) merged.push_back(a.offset_ns);
  }
  std::sort(merged.begin(), merged.end());
  const auto single = All(full);
  ASSERT_EQ(merged.size(), single.size());
  for (size_t i = 0; i < merged.size(); ++i) {
    ASSERT_NEAR(merged[i], single[i].offset_ns, 1) << i;
  }
}

TEST(ScheduleTest, RejectsBadOptions) {
  ScheduleOptions o;
  EXPECT_EQ(ArrivalSchedule::Create(o).status().code(), ErrorCode::kInvalidArgument);
  o.steps = {{0, 1'000'000}};
  EXPECT_FALSE(ArrivalSchedule::Create(o).ok());
  o.steps = {{100, 0}};
  EXPECT_FALSE(ArrivalSchedule::Create(o).ok());
  o.steps = {{100, 1'000'000}};
  o.warmup_us = -1;
  EXPECT_FALSE(ArrivalSchedule::Create(o).ok());
  o.warmup_us = 0;
  o.phase = 1;
  EXPECT_FALSE(ArrivalSchedule::Create(o).ok());
  o.phase = 0;
  EXPECT_TRUE(ArrivalSchedule::Create(o).ok());
}

}  // namespace
}  // namespace sluice::loadgen
