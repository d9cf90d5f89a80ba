#include "loadgen/metrics_scrape.h"

#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "loadgen/load_connection.h"

namespace sluice::loadgen {
namespace {

using ::testing::HasSubstr;

std::string Text(double b1, double b2, double b4, double inf, double sum, double util) {
  return "# HELP sluice_batch_size Requests per dispatched batch.\n"
         "# TYPE sluice_batch_size histogram\n"
         "sluice_batch_size_bucket{model=\"m\",le=\"1\"} " +
         std::to_string(b1) + "\n" + "sluice_batch_size_bucket{model=\"m\",le=\"2\"} " +
         std::to_string(b2) + "\n" + "sluice_batch_size_bucket{model=\"m\",le=\"4\"} " +
         std::to_string(b4) + "\n" + "sluice_batch_size_bucket{model=\"m\",le=\"+Inf\"} " +
         std::to_string(inf) + "\n" + "sluice_batch_size_sum{model=\"m\"} " + std::to_string(sum) +
         "\n" + "sluice_batch_size_count{model=\"m\"} " + std::to_string(inf) + "\n" +
         "sluice_requests_total{model=\"m\",tier=\"free\",status=\"200\"} 12\n"
         "sluice_accelerator_utilization{model=\"m\"} " +
         std::to_string(util) + "\n" + "sluice_open_connections 3\n";
}

TEST(MetricsScrapeTest, ParsesTheBatchHistogramAndUtilisation) {
  auto snap = ParseGatewayMetrics(Text(1, 3, 10, 10, 28, 0.25));
  ASSERT_TRUE(snap.ok()) << snap.status().message();
  ASSERT_EQ(snap->models.size(), 1u);
  const auto& m = snap->models.at("m");
  ASSERT_EQ(m.batch_buckets.size(), 4u);
  EXPECT_EQ(m.batch_buckets[0], (std::pair<double, double>{1, 1}));
  EXPECT_TRUE(std::isinf(m.batch_buckets[3].first));
  EXPECT_EQ(m.batch_sum, 28);
  EXPECT_EQ(m.batch_count, 10);
  EXPECT_EQ(m.utilization, 0.25);
}

TEST(MetricsScrapeTest, DiffGivesBatchesBetweenTheScrapes) {
  auto before = ParseGatewayMetrics(Text(1, 3, 10, 10, 28, 0.1));
  auto after = ParseGatewayMetrics(Text(2, 5, 30, 40, 200, 0.8));
  ASSERT_TRUE(before.ok() && after.ok());
  const auto d = DiffGateway(*before, *after);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].model, "m");
  EXPECT_EQ(d[0].batches, 30);
  EXPECT_EQ(d[0].batched_requests, 172);
  EXPECT_NEAR(d[0].mean_batch_size, 172.0 / 30, 1e-9);
  ASSERT_EQ(d[0].batch_sizes.size(), 4u);
  // Per bucket (non-cumulative) deltas: size 1: 1, size 2: 1, 3-4: 18, >4: 10.
  EXPECT_EQ(d[0].batch_sizes[0].batches, 1);
  EXPECT_EQ(d[0].batch_sizes[1].batches, 1);
  EXPECT_EQ(d[0].batch_sizes[2].batches, 18);
  EXPECT_EQ(d[0].batch_sizes[3].batches, 10);
  EXPECT_EQ(d[0].utilization_before, 0.1);
  EXPECT_EQ(d[0].utilization_after, 0.8);
}

TEST(MetricsScrapeTest, ARestartedGatewayCountsFromZero) {
  auto before = ParseGatewayMetrics(Text(10, 20, 30, 40, 100, 0.5));
  auto after = ParseGatewayMetrics(Text(1, 1, 2, 2, 5, 0.5));
  const auto d = DiffGateway(*before, *after);
  EXPECT_EQ(d[0].batches, 2);
  EXPECT_EQ(d[0].batched_requests, 5);
}

TEST(MetricsScrapeTest, LabelEscapesAndOtherModels) {
  auto snap = ParseGatewayMetrics(
      "sluice_accelerator_utilization{model=\"a \\\"b\\\"\"} 0.5\n"
      "sluice_accelerator_utilization{model=\"c\"} 1e-3 1700000000\n");
  ASSERT_TRUE(snap.ok()) << snap.status().message();
  EXPECT_EQ(snap->models.at("a \"b\"").utilization, 0.5);
  EXPECT_EQ(snap->models.at("c").utilization, 0.001);
}

TEST(MetricsScrapeTest, MalformedLinesOfOurMetricsAreErrors) {
  EXPECT_THAT(ParseGatewayMetrics("sluice_batch_size_count{model=\"m\"} abc\n").status().message(),
              HasSubstr("line 1 (sluice_batch_size_count): malformed value"));
  EXPECT_THAT(
      ParseGatewayMetrics("x 1\nsluice_batch_size_bucket{model=\"m\"} 1\n").status().message(),
      HasSubstr("line 2 (sluice_batch_size_bucket): missing or bad `le`"));
  EXPECT_THAT(ParseGatewayMetrics("sluice_batch_size_sum{model=\"m} 1\n").status().message(),
              HasSubstr("malformed labels"));
  // Lines of other metrics are not even looked at.
  EXPECT_TRUE(ParseGatewayMetrics("something_else{{{ nonsense\n").ok());
}

TEST(ServerTimingTest, ReadsAnEntrysDuration) {
  EXPECT_DOUBLE_EQ(
      ParseServerTimingMs("queue;dur=1.250, accelerator;dur=50.000, gateway;dur=0.042", "gateway"),
      0.042);
  EXPECT_DOUBLE_EQ(ParseServerTimingMs("gateway;dur=3", "gateway"), 3);
  EXPECT_LT(ParseServerTimingMs("queue;dur=1.0", "gateway"), 0);
  EXPECT_LT(ParseServerTimingMs("gateway;dur=x", "gateway"), 0);
  EXPECT_LT(ParseServerTimingMs("", "gateway"), 0);
  // Any entry by its whole name.
  EXPECT_DOUBLE_EQ(ParseServerTimingMs("queue;dur=1.250, gateway;dur=0.042", "queue"), 1.25);
  EXPECT_LT(ParseServerTimingMs("queued;dur=1.250", "queue"), 0);
}

}  // namespace
}  // namespace sluice::loadgen
