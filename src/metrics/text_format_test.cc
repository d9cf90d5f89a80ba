#include "metrics/text_format.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace sluice::metrics {
namespace {

TEST(FormatNumberTest, IntegersHaveNoExponentOrPoint) {
  EXPECT_EQ(FormatNumber(0), "0");
  EXPECT_EQ(FormatNumber(-0.0), "0");
  EXPECT_EQ(FormatNumber(42), "42");
  EXPECT_EQ(FormatNumber(-7), "-7");
  EXPECT_EQ(FormatNumber(1e6), "1000000");
  EXPECT_EQ(FormatNumber(1e20), "100000000000000000000");
}

TEST(FormatNumberTest, FractionsRoundTrip) {
  EXPECT_EQ(FormatNumber(0.25), "0.25");
  EXPECT_EQ(FormatNumber(0.1), "0.1");
  EXPECT_EQ(FormatNumber(-2.5), "-2.5");
  EXPECT_EQ(FormatNumber(1e-5), "1e-05");
  EXPECT_EQ(std::stod(FormatNumber(1.0 / 3)), 1.0 / 3);
}

TEST(FormatNumberTest, SpecialValues) {
  EXPECT_EQ(FormatNumber(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatNumber(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatNumber(std::nan("")), "NaN");
}

TEST(EscapeTest, LabelValueEscapesBackslashQuoteNewline) {
  std::string out = "x";
  AppendEscapedLabelValue(&out, "a\\b\"c\nd'e");
  EXPECT_EQ(out, "xa\\\\b\\\"c\\nd'e");
}

TEST(EscapeTest, HelpEscapesBackslashNewlineButNotQuote) {
  std::string out;
  AppendEscapedHelp(&out, "a\\b\"c\nd");
  EXPECT_EQ(out, "a\\\\b\"c\\nd");
}

TEST(NameTest, MetricNames) {
  EXPECT_TRUE(IsValidMetricName("sluice_requests_total"));
  EXPECT_TRUE(IsValidMetricName("job:rate5m"));
  EXPECT_TRUE(IsValidMetricName("_x9"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_FALSE(IsValidMetricName("9x"));
  EXPECT_FALSE(IsValidMetricName("a-b"));
  EXPECT_FALSE(IsValidMetricName("a b"));
}

TEST(NameTest, LabelNames) {
  EXPECT_TRUE(IsValidLabelName("model"));
  EXPECT_TRUE(IsValidLabelName("_x1"));
  EXPECT_FALSE(IsValidLabelName(""));
  EXPECT_FALSE(IsValidLabelName("__name__"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
  EXPECT_FALSE(IsValidLabelName("1a"));
}

}  // namespace
}  // namespace sluice::metrics
