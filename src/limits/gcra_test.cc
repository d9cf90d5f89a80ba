#include "limits/gcra.h"

#include <gtest/gtest.h>

namespace sluice::gcra {
namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kNow = 3600 * kSecond;

TEST(GcraTest, BurstIsOneWindowThenRefillsContinuously) {
  int64_t tat = 0;  // no state = full
  for (int i = 0; i < 60; ++i) {
    Outcome o = Check(tat, kNow, 60, 1);
    ASSERT_TRUE(o.allowed) << i;
    EXPECT_EQ(o.remaining, 59 - i);
    tat = o.tat_ns;
  }
  Outcome rejected = Check(tat, kNow, 60, 1);
  EXPECT_FALSE(rejected.allowed);
  EXPECT_EQ(rejected.tat_ns, tat);  // nothing consumed
  EXPECT_EQ(rejected.retry_after_ns, kSecond);
  EXPECT_EQ(rejected.reset_ns, 60 * kSecond);

  // One unit per second comes back.
  EXPECT_FALSE(Check(tat, kNow + kSecond - 1, 60, 1).allowed);
  EXPECT_TRUE(Check(tat, kNow + kSecond, 60, 1).allowed);
  EXPECT_EQ(Remaining(tat, kNow + 30 * kSecond, 60), 30);
  EXPECT_EQ(Remaining(tat, kNow + 90 * kSecond, 60), 60);  // never above the limit
}

TEST(GcraTest, RoundingNeverMakesTheLimitStricter) {
  // 60 s / 7 is not a whole number of nanoseconds.
  int64_t tat = 0;
  for (int i = 0; i < 7; ++i) {
    Outcome o = Check(tat, kNow, 7, 1);
    ASSERT_TRUE(o.allowed) << i;
    EXPECT_EQ(o.remaining, 6 - i);
    tat = o.tat_ns;
  }
  EXPECT_FALSE(Check(tat, kNow, 7, 1).allowed);
}

TEST(GcraTest, CostAboveLimitNeverFits) {
  Outcome o = Check(0, kNow, 100, 101);
  EXPECT_FALSE(o.allowed);
  EXPECT_EQ(o.remaining, 100);
  EXPECT_TRUE(Check(0, kNow, 100, 100).allowed);
}

TEST(GcraTest, AdjustRefundsUpToFullAndChargesIntoBoundedDebt) {
  const int64_t half_spent = Check(0, kNow, 1000, 500).tat_ns;
  EXPECT_EQ(Remaining(Adjust(half_spent, kNow, 1000, -200), kNow, 1000), 700);
  EXPECT_EQ(Adjust(half_spent, kNow, 1000, -5000), kNow);  // full, not beyond
  EXPECT_EQ(Adjust(0, kNow, 1000, -10), 0);                // already full
  const int64_t debt = Adjust(half_spent, kNow, 1000, 1000);
  EXPECT_EQ(debt, kNow + 90 * kSecond);  // 500 tokens in debt
  EXPECT_EQ(Remaining(debt, kNow, 1000), 0);
  EXPECT_EQ(Adjust(debt, kNow, 1000, 1'000'000), kNow + 120 * kSecond);  // capped
}

}  // namespace
}  // namespace sluice::gcra
