#include "app/drainer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "simulation/virtual_executor.h"

namespace sluice {
namespace {

// Two stages whose idleness the test sets; every callback is journaled.
struct Fixture {
  VirtualExecutor ex;
  std::vector<std::string> journal;
  bool gateway_idle = false, workers_idle = false, written = true;
  int stops = 0;

  Drainer::Options Options() {
    Drainer::Options o;
    o.executor = &ex;
    o.timeout_ms = 1'000;
    o.grace_ms = 200;
    o.stages.push_back({"gateway", [this] { journal.push_back("gateway begin"); },
                        [this] { return gateway_idle; },
                        [this] { journal.push_back("gateway abandon"); }});
    o.stages.push_back({"workers", [this] { journal.push_back("workers begin"); },
                        [this] { return workers_idle; },
                        [this] { journal.push_back("workers abandon"); }});
    o.written = [this] { return written; };
    o.stop = [this] {
      ++stops;
      journal.push_back("stop");
    };
    return o;
  }
  void RunFor(int64_t ms) { ex.RunUntil(ex.Now() + Millis(ms)); }
};

TEST(DrainerTest, StagesDrainInOrderAndStopOnceAllAreIdle) {
  Fixture f;
  Drainer d(f.Options());
  d.Begin();
  f.RunFor(100);
  EXPECT_EQ(f.journal, (std::vector<std::string>{"gateway begin"}));
  EXPECT_EQ(d.stage(), 0u);
  f.gateway_idle = true;
  f.RunFor(10);
  EXPECT_EQ(f.journal, (std::vector<std::string>{"gateway begin", "workers begin"}));
  EXPECT_EQ(d.stage(), 1u);
  f.workers_idle = true;
  f.RunFor(10);
  EXPECT_EQ(f.journal, (std::vector<std::string>{"gateway begin", "workers begin", "stop"}));
  EXPECT_FALSE(d.abandoned());
  EXPECT_TRUE(d.stopped());
  f.RunFor(5'000);
  EXPECT_EQ(f.stops, 1);
  EXPECT_EQ(f.ex.pending_timers(), 0u);
}

TEST(DrainerTest, IdleStagesPassAtOnce) {
  Fixture f;
  f.gateway_idle = f.workers_idle = true;
  Drainer d(f.Options());
  d.Begin();
  EXPECT_EQ(f.journal, (std::vector<std::string>{"gateway begin", "workers begin", "stop"}));
}

TEST(DrainerTest, AtTheDeadlineTheStageIsAbandonedAndTheNextGetTheGrace) {
  Fixture f;
  Drainer d(f.Options());
  d.Begin();
  f.written = false;
  f.RunFor(999);
  EXPECT_EQ(f.journal, (std::vector<std::string>{"gateway begin"}));
  f.RunFor(10);  // past the 1,000 ms deadline
  EXPECT_EQ(f.journal,
            (std::vector<std::string>{"gateway begin", "gateway abandon", "workers begin"}));
  EXPECT_TRUE(d.abandoned());
  f.workers_idle = true;  // the workers finish within the grace...
  f.RunFor(50);
  EXPECT_EQ(f.stops, 0);  // ...but answers are still being written
  f.written = true;
  f.RunFor(10);
  EXPECT_EQ(f.stops, 1);
  EXPECT_EQ(f.journal, (std::vector<std::string>{"gateway begin", "gateway abandon",
                                                 "workers begin", "stop"}));
}

TEST(DrainerTest, ALaterStageStillBusyAtTheEndOfTheGraceIsAbandoned) {
  Fixture f;
  Drainer d(f.Options());
  d.Begin();
  f.RunFor(1'010);
  EXPECT_EQ(f.stops, 0);
  f.RunFor(180);  // the grace (200 ms) runs from the deadline
  EXPECT_EQ(f.stops, 0);
  f.RunFor(30);
  EXPECT_EQ(f.journal, (std::vector<std::string>{"gateway begin", "gateway abandon",
                                                 "workers begin", "workers abandon", "stop"}));
}

TEST(DrainerTest, StopsAfterTheGraceEvenWithAnswersUnwritten) {
  Fixture f;
  f.gateway_idle = true;  // the second stage never finishes
  f.written = false;
  Drainer d(f.Options());
  d.Begin();
  f.RunFor(1'010);
  EXPECT_EQ(f.journal, (std::vector<std::string>{"gateway begin", "workers begin",
                                                 "workers abandon"}));  // not the idle gateway
  EXPECT_EQ(f.stops, 0);
  f.RunFor(180);  // the grace (200 ms) runs from the abandon, at 1,000 ms
  EXPECT_EQ(f.stops, 0);
  f.RunFor(30);
  EXPECT_EQ(f.stops, 1);
}

TEST(DrainerTest, ASecondSignalStopsAtOnce) {
  Fixture f;
  Drainer d(f.Options());
  d.Begin();
  f.RunFor(10);
  d.Begin();
  EXPECT_EQ(f.journal, (std::vector<std::string>{"gateway begin", "stop"}));
  d.Begin();
  f.RunFor(5'000);
  EXPECT_EQ(f.stops, 1);
}

TEST(DrainerTest, RefusesIncompleteOptions) {
  Fixture f;
  auto o = f.Options();
  o.stages.clear();
  EXPECT_THROW(Drainer{o}, std::invalid_argument);
  o = f.Options();
  o.stages[1].idle = nullptr;
  EXPECT_THROW(Drainer{o}, std::invalid_argument);
  o = f.Options();
  o.stop = nullptr;
  EXPECT_THROW(Drainer{o}, std::invalid_argument);
}

}  // namespace
}  // namespace sluice
