#include "simulation/virtual_executor.h"

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(VirtualExecutorTest, TimersFireInTimeOrderAtTheirTime) {
  VirtualExecutor ex;
  const TimePoint t0 = ex.Now();
  std::vector<std::pair<int, TimePoint>> ran;
  ex.RunAt(t0 + Millis(30), [&] { ran.push_back({3, ex.Now()}); });
  ex.RunAt(t0 + Millis(10), [&] { ran.push_back({1, ex.Now()}); });
  ex.RunAt(t0 + Millis(20), [&] { ran.push_back({2, ex.Now()}); });
  EXPECT_EQ(ex.RunUntil(t0 + Millis(25)), 2u);
  EXPECT_EQ(ex.Now(), t0 + Millis(25));
  EXPECT_EQ(ex.RunUntil(t0 + Millis(100)), 1u);
  ASSERT_EQ(ran.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(ran[i].first, i + 1);
    EXPECT_EQ(ran[i].second, t0 + Millis(10 * (i + 1)));
  }
  EXPECT_EQ(ex.Now(), t0 + Millis(100));
}

TEST(VirtualExecutorTest, PostsRunFirstInOrderThenTiesByCreation) {
  VirtualExecutor ex;
  const TimePoint t0 = ex.Now();
  std::string order;
  ex.RunAt(t0 + Millis(5), [&] {
    order += "a";
    ex.Post([&] { order += "c"; });  // runs before the tie scheduled earlier
  });
  ex.RunAt(t0 + Millis(5), [&] { order += "d"; });
  ex.Post([&] { order += "1"; });
  ex.Post([&] { order += "2"; });
  ex.RunUntil(t0 + Millis(5));
  EXPECT_EQ(order, "12acd");
}

TEST(VirtualExecutorTest, CancelStopsATimerOnceAndIdsAreNeverReused) {
  VirtualExecutor ex;
  const TimePoint t0 = ex.Now();
  int ran = 0;
  Executor::TimerId a = ex.RunAt(t0 + Millis(1), [&] { ran += 1; });
  EXPECT_NE(a, 0u);
  EXPECT_TRUE(ex.Cancel(a));
  EXPECT_FALSE(ex.Cancel(a));
  // The freed slot is reused with a new id; the old id stays dead.
  Executor::TimerId b = ex.RunAt(t0 + Millis(1), [&] { ran += 10; });
  EXPECT_NE(a, b);
  EXPECT_FALSE(ex.Cancel(a));
  EXPECT_EQ(ex.pending_timers(), 1u);
  ex.RunUntil(t0 + Millis(2));
  EXPECT_EQ(ran, 10);
  EXPECT_FALSE(ex.Cancel(b));  // fired
  EXPECT_EQ(ex.pending_timers(), 0u);
}

TEST(VirtualExecutorTest, PastTimersRunNowAndCallbacksMayScheduleMore) {
  VirtualExecutor ex;
  const TimePoint t0 = ex.Now();
  ex.RunUntil(t0 + Millis(10));
  int chain = 0;
  std::function<void()> step = [&] {
    if (++chain < 5) ex.RunAt(ex.Now() + Millis(1), step);
  };
  ex.RunAt(t0, step);  // in the past: runs at the current time
  ex.RunUntil(t0 + Millis(12));
  EXPECT_EQ(chain, 3);  // at 10, 11 and 12 ms
  ex.RunUntil(t0 + Millis(100));
  EXPECT_EQ(chain, 5);
}

TEST(VirtualExecutorTest, PostFromAnotherThreadRunsOnTheLoop) {
  VirtualExecutor ex;
  int ran = 0;
  std::thread t([&] { ex.Post([&] { ++ran; }); });
  t.join();
  ex.RunUntil(ex.Now());
  EXPECT_EQ(ran, 1);
}

TEST(VirtualExecutorTest, ManyCancelledTimersDoNotRunOrLeak) {
  VirtualExecutor ex;
  const TimePoint t0 = ex.Now();
  int ran = 0;
  for (int i = 0; i < 100'000; ++i) {
    Executor::TimerId id = ex.RunAt(t0 + Micros(i), [&] { ++ran; });
    if (i % 2 == 0) ex.Cancel(id);
  }
  ex.RunUntil(t0 + Millis(200));
  EXPECT_EQ(ran, 50'000);
  EXPECT_EQ(ex.pending_timers(), 0u);
  EXPECT_EQ(ex.events_run(), 50'000u);
}

}  // namespace
}  // namespace sluice
