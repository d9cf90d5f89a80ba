#include "simulation/scenario.h"

#include <gtest/gtest.h>

#include "simulation/arrival_process.h"

namespace sluice {
namespace {

TEST(ScenarioTest, ParsesEventsWithRangesAndOutages) {
  std::vector<ScenarioEvent> events;
  ASSERT_TRUE(ParseEvent("30s:down:0-7", &events).ok());
  ASSERT_TRUE(ParseEvent("60s:up:3", &events).ok());
  ASSERT_TRUE(ParseEvent("10s-18s:outage", &events).ok());
  ASSERT_TRUE(ParseEvent("1500ms:disable", &events).ok());
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].at_s, 30);
  EXPECT_EQ(events[0].action, DeviceAction::kDown);
  EXPECT_EQ(events[0].first_device, 0);
  EXPECT_EQ(events[0].last_device, 7);
  EXPECT_EQ(events[1].first_device, 3);
  EXPECT_EQ(events[1].last_device, 3);
  EXPECT_EQ(events[2].action, DeviceAction::kDown);
  EXPECT_EQ(events[2].last_device, -1);
  EXPECT_EQ(events[3].at_s, 18);
  EXPECT_EQ(events[3].action, DeviceAction::kUp);
  EXPECT_EQ(events[4].at_s, 1.5);
  EXPECT_EQ(events[4].action, DeviceAction::kDisable);
}

TEST(ScenarioTest, RejectsMalformedEvents) {
  std::vector<ScenarioEvent> events;
  for (const char* bad : {"30s", "30s:explode", "30s:down:7-3", "x:down", "20s-10s:down",
                          "10s-20s:outage:0", "30s:down:a"}) {
    Status st = ParseEvent(bad, &events);
    EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(st.message().find(bad), std::string::npos) << st.message();
  }
  EXPECT_TRUE(events.empty());
}

TEST(ScenarioTest, ParsesHostileClientsAndMixes) {
  auto h = ParseHostile("40:5");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->rate_rps, 40);
  EXPECT_EQ(h->deadline_ms, 5);
  EXPECT_EQ(h->end_s, -1);
  auto windowed = ParseHostile("10.5:40:5s-15s");
  ASSERT_TRUE(windowed.ok());
  EXPECT_EQ(windowed->start_s, 5);
  EXPECT_EQ(windowed->end_s, 15);
  EXPECT_FALSE(ParseHostile("40").ok());
  EXPECT_FALSE(ParseHostile("0:5").ok());
  EXPECT_FALSE(ParseHostile("40:-1").ok());

  auto mix = ParseMix("free=70,paid=25,enterprise=5");
  ASSERT_TRUE(mix.ok());
  ASSERT_EQ(mix->size(), 3u);
  EXPECT_EQ(FormatMix(*mix), "free=0.7,paid=0.25,enterprise=0.05");
  EXPECT_FALSE(ParseMix("free").ok());
}

TEST(ScenarioTest, ValidationNamesTheField) {
  Scenario s;
  EXPECT_TRUE(ValidateScenario(s).ok());
  s.warmup_s = s.duration_s;
  EXPECT_NE(ValidateScenario(s).message().find("warmup_s"), std::string::npos);
  s = Scenario();
  s.burst_factor = 6;  // 6 x 0.2 > 1: the lull would need a negative rate
  EXPECT_NE(ValidateScenario(s).message().find("burst_factor"), std::string::npos);
}

double CountArrivals(ArrivalKind kind, double from_s, double to_s) {
  ArrivalProcess::Options o;
  o.kind = kind;
  o.rate_rps = 1000;
  o.end_s = 100;
  o.seed = 7;
  ArrivalProcess p(o);
  double n = 0, last = -1;
  while (auto t = p.Next()) {
    EXPECT_GE(*t, last);
    last = *t;
    if (*t >= from_s && *t < to_s) ++n;
  }
  return n;
}

TEST(ArrivalProcessTest, EveryKindKeepsTheMeanRate) {
  EXPECT_EQ(CountArrivals(ArrivalKind::kConstant, 0, 100), 100'000);
  EXPECT_NEAR(CountArrivals(ArrivalKind::kPoisson, 0, 100), 100'000, 1'500);
  EXPECT_NEAR(CountArrivals(ArrivalKind::kBursty, 0, 100), 100'000, 1'500);
}

TEST(ArrivalProcessTest, BurstyArrivalsBurstAtTheStartOfEachPeriod) {
  // Default shape: 2 s of every 10 s at 3x the mean, the rest at 0.5x.
  EXPECT_NEAR(CountArrivals(ArrivalKind::kBursty, 10, 12), 6'000, 300);
  EXPECT_NEAR(CountArrivals(ArrivalKind::kBursty, 12, 20), 4'000, 300);
}

}  // namespace
}  // namespace sluice
