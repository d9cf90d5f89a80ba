// FaultInjector: JSON updates (partial, validated) and seeded draws.

#include "modelserver/fault_injector.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice::modelserver {
namespace {

using ::testing::HasSubstr;

TEST(FaultsJsonTest, PartialUpdateKeepsOtherFields) {
  Faults f;
  f.added_latency_ms = 7;
  ASSERT_TRUE(ApplyFaultsJson(R"({"error_rate":0.5,"hang":true})", &f).ok());
  EXPECT_EQ(f.added_latency_ms, 7);
  EXPECT_DOUBLE_EQ(f.error_rate, 0.5);
  EXPECT_TRUE(f.hang);
  EXPECT_FALSE(f.close_connection);
  EXPECT_THAT(FaultsToJson(f), HasSubstr("\"hang\":true"));
}

TEST(FaultsJsonTest, BadValuesLeaveFaultsUnchanged) {
  Faults f;
  EXPECT_THAT(ApplyFaultsJson(R"({"error_rate":2})", &f).message(), HasSubstr("error_rate"));
  EXPECT_THAT(ApplyFaultsJson(R"({"hang":1})", &f).message(), HasSubstr("hang"));
  EXPECT_THAT(ApplyFaultsJson(R"({"added_latency_ms":-1})", &f).message(),
              HasSubstr("added_latency_ms"));
  EXPECT_THAT(ApplyFaultsJson(R"({"typo":1})", &f).message(), HasSubstr("unknown field"));
  EXPECT_FALSE(ApplyFaultsJson("[]", &f).ok());
  EXPECT_DOUBLE_EQ(f.error_rate, 0);
}

TEST(FaultInjectorTest, RatesZeroAndOneAreExact) {
  Faults f;
  f.item_error_rate = 1;
  FaultInjector all(f, 1);
  FaultDecision d = all.Draw(3);
  EXPECT_FALSE(d.batch_error);
  EXPECT_THAT(d.item_errors, ::testing::ElementsAre(true, true, true));
  f = {};
  f.error_rate = 1;
  FaultInjector batch(f, 1);
  EXPECT_TRUE(batch.Draw(2).batch_error);
}

TEST(FaultInjectorTest, SameSeedSameDraws) {
  Faults f;
  f.item_error_rate = 0.3;
  FaultInjector a(f, 42), b(f, 42);
  int failed = 0;
  for (int i = 0; i < 50; ++i) {
    FaultDecision da = a.Draw(10), db = b.Draw(10);
    EXPECT_EQ(da.item_errors, db.item_errors);
    for (bool e : da.item_errors) failed += e;
  }
  EXPECT_GT(failed, 100);  // ~150 of 500
  EXPECT_LT(failed, 200);
}

}  // namespace
}  // namespace sluice::modelserver
