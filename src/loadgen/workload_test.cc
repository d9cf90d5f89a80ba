#include "loadgen/workload.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice::loadgen {
namespace {

using ::testing::HasSubstr;

std::string ErrorOf(const Status& s) { return s.ok() ? "OK" : s.message(); }

TEST(WeightedListTest, ParsesTheDefaultMix) {
  auto mix = ParseWeightedList("free=70, paid=25 ,enterprise=5", false, "--mix");
  ASSERT_TRUE(mix.ok()) << mix.status().message();
  ASSERT_EQ(mix->size(), 3u);
  EXPECT_EQ((*mix)[0].name, "free");
  EXPECT_EQ((*mix)[0].weight, 70);
  EXPECT_EQ((*mix)[2].name, "enterprise");
  EXPECT_EQ((*mix)[2].weight, 5);
}

TEST(WeightedListTest, RejectsMalformedMixes) {
  EXPECT_THAT(ErrorOf(ParseWeightedList("free", false, "--mix").status()),
              HasSubstr("--mix: expected NAME=WEIGHT, got `free`"));
  EXPECT_THAT(ErrorOf(ParseWeightedList("free=-1,paid=2", false, "--mix").status()),
              HasSubstr("weight of `free` must be a non-negative number"));
  EXPECT_THAT(ErrorOf(ParseWeightedList("free=abc", false, "--mix").status()),
              HasSubstr("got `abc`"));
  EXPECT_THAT(ErrorOf(ParseWeightedList("free=1,free=2", false, "--mix").status()),
              HasSubstr("`free` appears twice"));
  EXPECT_THAT(ErrorOf(ParseWeightedList("free=0,paid=0", false, "--mix").status()),
              HasSubstr("at least one weight must be positive"));
  EXPECT_THAT(ErrorOf(ParseWeightedList("=3", false, "--mix").status()), HasSubstr("empty name"));
  EXPECT_THAT(ErrorOf(ParseWeightedList("", false, "--mix").status()), HasSubstr("empty list"));
  EXPECT_THAT(ErrorOf(ParseWeightedList("a=1,,b=2", false, "--mix").status()),
              HasSubstr("empty name"));
}

TEST(WeightedListTest, ModelsMayOmitWeights) {
  auto models = ParseWeightedList("small,large=3", true, "--model");
  ASSERT_TRUE(models.ok());
  EXPECT_EQ((*models)[0].weight, 1);
  EXPECT_EQ((*models)[1].weight, 3);
}

TEST(KeysFileTest, ParsesTiersKeysAndComments) {
  auto keys = ParseKeysText(
      "# bench keys\n"
      "free sk-free-1\n"
      "\n"
      "paid\tsk-paid-1   # the paid one\n"
      "free sk-free-2\r\n"
      "enterprise sk-ent-1\n",
      "keys.txt");
  ASSERT_TRUE(keys.ok()) << keys.status().message();
  ASSERT_EQ(keys->size(), 3u);
  EXPECT_EQ((*keys)[0].tier, "free");
  EXPECT_EQ((*keys)[0].keys, (std::vector<std::string>{"sk-free-1", "sk-free-2"}));
  EXPECT_EQ((*keys)[1].tier, "paid");
  EXPECT_EQ((*keys)[1].keys, (std::vector<std::string>{"sk-paid-1"}));
  EXPECT_EQ((*keys)[2].tier, "enterprise");
}

TEST(KeysFileTest, ErrorsNameTheLine) {
  EXPECT_EQ(ErrorOf(ParseKeysText("free sk-1\npaid\n", "keys.txt").status()),
            "keys.txt:2: expected `TIER KEY`, got 1 field");
  EXPECT_EQ(ErrorOf(ParseKeysText("free sk 1\n", "k").status()),
            "k:1: expected `TIER KEY`, got 3 fields");
  EXPECT_THAT(ErrorOf(ParseKeysText("# only comments\n\n", "k").status()), HasSubstr("k: no keys"));
  EXPECT_THAT(ErrorOf(ParseKeysText("free sk-\x01x\n", "k").status()),
              HasSubstr("k:1: the key contains characters not allowed"));
}

TEST(TierMixTest, NeedsAKeyForEveryWeightedTier) {
  auto mix = ParseWeightedList("free=70,gold=30", false, "--mix");
  ASSERT_TRUE(mix.ok());
  EXPECT_THAT(ErrorOf(BuildTierMix(*mix, DemoKeys()).status()),
              HasSubstr("--mix names tier `gold` but there is no key for it (tiers with keys: "
                        "free, paid, enterprise)"));
  // A zero weight drops the tier, key or not.
  mix = ParseWeightedList("free=1,gold=0", false, "--mix");
  auto tiers = BuildTierMix(*mix, DemoKeys());
  ASSERT_TRUE(tiers.ok());
  ASSERT_EQ(tiers->size(), 1u);
  EXPECT_EQ((*tiers)[0].keys, (std::vector<std::string>{"sk-free-demo-0001"}));
}

TEST(ByteRangeTest, ParsesSizesAndRanges) {
  auto fixed = ParseByteRange("128");
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(fixed->min_bytes, 128u);
  EXPECT_EQ(fixed->max_bytes, 128u);
  auto range = ParseByteRange("64-1024");
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(range->min_bytes, 64u);
  EXPECT_EQ(range->max_bytes, 1024u);
  EXPECT_THAT(ErrorOf(ParseByteRange("1024-64").status()), HasSubstr("reversed"));
  EXPECT_THAT(ErrorOf(ParseByteRange("8").status()), HasSubstr("between 17 and"));
  EXPECT_THAT(ErrorOf(ParseByteRange("big").status()), HasSubstr("expected N or N-M"));
  EXPECT_FALSE(ParseByteRange("64-").ok());
}

TEST(DurationTest, ParsesUnits) {
  EXPECT_EQ(ParseDurationUs("10s", "--duration").value(), 10'000'000);
  EXPECT_EQ(ParseDurationUs("1.5s", "--duration").value(), 1'500'000);
  EXPECT_EQ(ParseDurationUs("500ms", "--duration").value(), 500'000);
  EXPECT_EQ(ParseDurationUs("250us", "--duration").value(), 250);
  EXPECT_EQ(ParseDurationUs("2m", "--duration").value(), 120'000'000);
  EXPECT_EQ(ParseDurationUs("3", "--duration").value(), 3'000'000);
  EXPECT_EQ(ParseDurationUs("0", "--warmup").value(), 0);
  EXPECT_THAT(ErrorOf(ParseDurationUs("10h", "--duration").status()),
              HasSubstr("--duration: expected a duration such as 10s"));
  EXPECT_FALSE(ParseDurationUs("-1s", "--duration").ok());
  EXPECT_FALSE(ParseDurationUs("s", "--duration").ok());
  EXPECT_FALSE(ParseDurationUs("", "--duration").ok());
}

TEST(RateListTest, ParsesRamps) {
  auto r = ParseRateList("1000,2000, 4000", "--ramp");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<double>{1000, 2000, 4000}));
  EXPECT_THAT(ErrorOf(ParseRateList("1000,0", "--ramp").status()), HasSubstr("got `0`"));
  EXPECT_THAT(ErrorOf(ParseRateList("1000,,2000", "--ramp").status()), HasSubstr("got ``"));
}

TEST(WorkloadTest, ValidatesTheWhole) {
  WorkloadSpec w;
  EXPECT_FALSE(ValidateWorkload(w).ok());
  w.tiers = BuildTierMix(ParseWeightedList("free=1", false, "--mix").value(), DemoKeys()).value();
  EXPECT_THAT(ErrorOf(ValidateWorkload(w)), HasSubstr("--model"));
  w.models = {{"sluice-sim-small", 1}};
  EXPECT_TRUE(ValidateWorkload(w).ok());
  w.input_bytes = {10, 10};
  EXPECT_FALSE(ValidateWorkload(w).ok());
}

}  // namespace
}  // namespace sluice::loadgen
