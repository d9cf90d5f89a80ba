#include "loadgen/report.h"

#include <cmath>
#include <limits>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

namespace sluice::loadgen {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;

BenchResult TwoStepResult() {
  BenchResult r;
  r.options.steps = {{1000, 2'000'000}, {2000, 2'000'000}};
  r.options.workload.tiers = {{"free", 70, {"k1"}}, {"paid", 30, {"k2"}}};
  r.options.workload.models = {{"m", 1}};
  for (int s = 0; s < 2; ++s) {
    StepReport step;
    step.step = r.options.steps[s];
    step.tiers.resize(2);
    step.tiers[0].counts.scheduled = 1400 * (s + 1);
    step.tiers[0].counts.ok = 1400 * (s + 1) - 10;
    step.tiers[0].counts.status_503 = 10;
    for (int i = 0; i < 100; ++i) step.tiers[0].latency_ns.Record(1'000'000 * (i + 1));
    step.tiers[1].counts.scheduled = 600 * (s + 1);
    step.tiers[1].counts.timeouts = 600 * (s + 1);  // no 200 at all: latency null
    for (const SliceStats& t : step.tiers) step.overall.Merge(t);
    ModelGatewayDelta g;
    g.model = "m";
    g.batches = 10;
    g.batched_requests = 160;
    g.mean_batch_size = 16;
    g.batch_sizes = {{16, 5}, {32, 5}, {std::numeric_limits<double>::infinity(), 0}};
    g.utilization_after = 0.75;
    step.gateway = {g};
    r.steps.push_back(step);
  }
  r.tiers.resize(2);
  for (const StepReport& s : r.steps) {
    for (size_t t = 0; t < 2; ++t) r.tiers[t].Merge(s.tiers[t]);
    r.overall.Merge(s.overall);
  }
  r.measured_us = 4'000'000;
  r.gateway_overhead_ns.Record(40'000);
  r.generator.late = 7;
  r.warnings = {"something to know"};
  return r;
}

TEST(ReportTest, JsonHasTheDocumentedShape) {
  const json::object doc = json::parse(FormatReportJson(TwoStepResult())).as_object();
  EXPECT_EQ(doc.at("schema").as_string(), "sluice-bench/1");
  EXPECT_EQ(doc.at("config").at("rates").as_array().size(), 2u);
  const json::object& free = doc.at("overall").at("tiers").at("free").as_object();
  EXPECT_EQ(free.at("scheduled").to_number<uint64_t>(), 4200u);
  EXPECT_EQ(free.at("status_503").to_number<uint64_t>(), 20u);
  EXPECT_DOUBLE_EQ(free.at("offered_rps").as_double(), 1050);
  EXPECT_DOUBLE_EQ(free.at("achieved_rps").as_double(), 4180 / 4.0);
  EXPECT_NEAR(free.at("latency_ms").at("p50").as_double(), 50, 50 / 256.0);
  EXPECT_DOUBLE_EQ(free.at("latency_ms").at("max").as_double(), 100);
  const json::object& paid = doc.at("overall").at("tiers").at("paid").as_object();
  EXPECT_EQ(paid.at("timeouts").to_number<uint64_t>(), 1800u);
  EXPECT_EQ(paid.at("other").to_number<uint64_t>(), 1800u);
  EXPECT_TRUE(paid.at("latency_ms").at("p99").is_null());
  const json::array& steps = doc.at("steps").as_array();
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_DOUBLE_EQ(steps[1].at("target_rate").as_double(), 2000);
  EXPECT_EQ(steps[1].at("all").at("scheduled").to_number<uint64_t>(), 4000u);
  const json::object& model = steps[0].at("gateway").as_array()[0].as_object();
  EXPECT_DOUBLE_EQ(model.at("mean_batch_size").as_double(), 16);
  EXPECT_TRUE(model.at("batch_size_buckets").as_array()[2].at("le").is_null());
  EXPECT_TRUE(model.at("utilization_before").is_null());
  EXPECT_TRUE(doc.at("gateway").is_null());  // the outer scrapes did not happen
  EXPECT_NEAR(doc.at("gateway_overhead_ms").at("p50").as_double(), 0.04, 0.04 / 256);
  EXPECT_EQ(doc.at("generator").at("late").to_number<uint64_t>(), 7u);
  EXPECT_EQ(doc.at("warnings").as_array()[0].as_string(), "something to know");
}

TEST(ReportTest, TableShowsEachStepAndTheTotal) {
  const std::string t = FormatReportTable(TwoStepResult());
  EXPECT_THAT(t, HasSubstr("step 1 of 2: 1000 req/s for 2 s"));
  EXPECT_THAT(t, HasSubstr("step 2 of 2: 2000 req/s for 2 s"));
  EXPECT_THAT(t, HasSubstr("all steps (4 s):"));
  EXPECT_THAT(t, HasSubstr("mean batch size 16.00, accelerator utilisation 75.0 %"));
  EXPECT_THAT(t, HasSubstr("batch sizes: 1-16: 50.0 % 17-32: 50.0 %"));
  EXPECT_THAT(t, HasSubstr("warning: something to know"));
  EXPECT_THAT(t, HasSubstr("kept to its schedule"));
}

}  // namespace
}  // namespace sluice::loadgen
