#include "metrics/registry.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

namespace sluice::metrics {
namespace {

TEST(RegistryTest, RendersExactPrometheusText) {
  Registry registry;
  Counter* ok = registry.GetCounter("sluice_requests_total", "Requests answered.",
                                    {{"model", "m1"}, {"code", "200"}});
  Counter* failed =
      registry.GetCounter("sluice_requests_total", "ignored", {{"model", "m1"}, {"code", "503"}});
  Gauge* depth = registry.GetGauge("sluice_queue_depth", "Queued requests.");
  Histogram* latency = registry.GetHistogram("sluice_latency_seconds", "Latency.\nIn seconds.",
                                             {{"model", "say \"hi\"\\\n"}}, {0.005, 0.5, 2});
  ok->Inc(3);
  failed->Inc();
  depth->Set(1e6);
  latency->Observe(0.00390625);  // 2^-8: sums exactly
  latency->Observe(0.25);
  latency->Observe(0.25);
  latency->Observe(10);

  EXPECT_EQ(registry.RenderPrometheus(),
            "# HELP sluice_requests_total Requests answered.\n"
            "# TYPE sluice_requests_total counter\n"
            "sluice_requests_total{code=\"200\",model=\"m1\"} 3\n"
            "sluice_requests_total{code=\"503\",model=\"m1\"} 1\n"
            "# HELP sluice_queue_depth Queued requests.\n"
            "# TYPE sluice_queue_depth gauge\n"
            "sluice_queue_depth 1000000\n"
            "# HELP sluice_latency_seconds Latency.\\nIn seconds.\n"
            "# TYPE sluice_latency_seconds histogram\n"
            "sluice_latency_seconds_bucket{model=\"say \\\"hi\\\"\\\\\\n\",le=\"0.005\"} 1\n"
            "sluice_latency_seconds_bucket{model=\"say \\\"hi\\\"\\\\\\n\",le=\"0.5\"} 3\n"
            "sluice_latency_seconds_bucket{model=\"say \\\"hi\\\"\\\\\\n\",le=\"2\"} 3\n"
            "sluice_latency_seconds_bucket{model=\"say \\\"hi\\\"\\\\\\n\",le=\"+Inf\"} 4\n"
            "sluice_latency_seconds_sum{model=\"say \\\"hi\\\"\\\\\\n\"} 10.50390625\n"
            "sluice_latency_seconds_count{model=\"say \\\"hi\\\"\\\\\\n\"} 4\n");
}

TEST(RegistryTest, EmptyRegistryRendersNothing) { EXPECT_EQ(Registry().RenderPrometheus(), ""); }

TEST(RegistryTest, SameNameAndLabelsReturnSameObject) {
  Registry registry;
  Counter* a = registry.GetCounter("c", "h", {{"x", "1"}, {"y", "2"}});
  EXPECT_EQ(registry.GetCounter("c", "h", {{"x", "1"}, {"y", "2"}}), a);
  EXPECT_EQ(registry.GetCounter("c", "h", {{"y", "2"}, {"x", "1"}}), a);  // order-insensitive
  EXPECT_NE(registry.GetCounter("c", "h", {{"x", "2"}, {"y", "2"}}), a);
  EXPECT_NE(registry.GetCounter("c", "h"), a);

  Gauge* g = registry.GetGauge("g", "h");
  EXPECT_EQ(registry.GetGauge("g", "h"), g);
  Histogram* h = registry.GetHistogram("h", "h", {}, {1, 2});
  EXPECT_EQ(registry.GetHistogram("h", "h", {}, {1, 2}), h);
}

TEST(RegistryTest, ConcurrentGetReturnsOneObject) {
  Registry registry;
  std::vector<Counter*> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      got[t] = registry.GetCounter("c", "h", {{"k", "v"}});
      for (int i = 0; i < 10'000; ++i) got[t]->Inc();
    });
  }
  for (auto& th : threads) th.join();
  for (Counter* c : got) EXPECT_EQ(c, got[0]);
  EXPECT_EQ(got[0]->value(), 40'000u);
}

TEST(RegistryTest, TypeConflictThrowsLogicError) {
  Registry registry;
  registry.GetCounter("x", "h");
  EXPECT_THROW(registry.GetGauge("x", "h"), std::logic_error);
  EXPECT_THROW(registry.GetHistogram("x", "h", {}, {1}), std::logic_error);
  EXPECT_THROW(registry.AddCallbackGauge("x", "h", {}, [] { return 1.0; }), std::logic_error);
  // A histogram's sample names are taken too, in both registration orders.
  registry.GetHistogram("lat", "h", {}, {1});
  EXPECT_THROW(registry.GetCounter("lat_count", "h"), std::logic_error);
  EXPECT_THROW(registry.GetGauge("lat_sum", "h"), std::logic_error);
  registry.GetCounter("q_bucket", "h");
  EXPECT_THROW(registry.GetHistogram("q", "h", {}, {1}), std::logic_error);
  registry.GetGauge("latency", "h");  // a mere prefix is fine
}

TEST(RegistryTest, HistogramBucketsMustMatchWithinFamily) {
  Registry registry;
  registry.GetHistogram("h", "h", {{"m", "a"}}, {1, 2});
  EXPECT_THROW(registry.GetHistogram("h", "h", {{"m", "a"}}, {1, 3}), std::logic_error);
  EXPECT_THROW(registry.GetHistogram("h", "h", {{"m", "b"}}, {1}), std::logic_error);
  EXPECT_NE(registry.GetHistogram("h", "h", {{"m", "b"}}, {1, 2}), nullptr);
}

TEST(RegistryTest, InvalidNamesThrowInvalidArgument) {
  Registry registry;
  EXPECT_THROW(registry.GetCounter("bad-name", "h"), std::invalid_argument);
  EXPECT_THROW(registry.GetCounter("c", "h", {{"bad label", "v"}}), std::invalid_argument);
  EXPECT_THROW(registry.GetCounter("c", "h", {{"__name__", "v"}}), std::invalid_argument);
  EXPECT_THROW(registry.GetCounter("c", "h", {{"a", "1"}, {"a", "2"}}), std::invalid_argument);
  EXPECT_THROW(registry.GetHistogram("h", "h", {{"le", "1"}}, {1}), std::invalid_argument);
  EXPECT_THROW(registry.GetHistogram("h", "h", {}, {2, 1}), std::invalid_argument);
  // Failed registrations leave nothing behind.
  EXPECT_EQ(registry.RenderPrometheus(), "");
  EXPECT_NE(registry.GetGauge("h", "now a gauge"), nullptr);
}

TEST(RegistryTest, CallbackGaugeIsEvaluatedAtScrapeTime) {
  Registry registry;
  double value = 1.5;
  registry.AddCallbackGauge("busy", "Busy fraction.", {{"model", "m"}}, [&] { return value; });
  registry.GetGauge("busy", "h", {{"model", "plain"}})->Set(2);
  const std::string header = "# HELP busy Busy fraction.\n# TYPE busy gauge\n";
  EXPECT_EQ(registry.RenderPrometheus(),
            header + "busy{model=\"m\"} 1.5\nbusy{model=\"plain\"} 2\n");
  value = 0.25;
  EXPECT_EQ(registry.RenderPrometheus(),
            header + "busy{model=\"m\"} 0.25\nbusy{model=\"plain\"} 2\n");

  // Re-adding replaces the function; a plain gauge cannot share the series.
  registry.AddCallbackGauge("busy", "h", {{"model", "m"}}, [] { return 7.0; });
  EXPECT_THROW(registry.GetGauge("busy", "h", {{"model", "m"}}), std::logic_error);
  EXPECT_THROW(registry.AddCallbackGauge("busy", "h", {{"model", "plain"}}, [] { return 0.0; }),
               std::logic_error);
  EXPECT_EQ(registry.RenderPrometheus(), header + "busy{model=\"m\"} 7\nbusy{model=\"plain\"} 2\n");
}

TEST(RegistryTest, CallbackCounterIsTypedCounter) {
  Registry registry;
  uint64_t hits = 3;
  registry.AddCallbackCounter("hits_total", "Hits.", {{"model", "m"}},
                              [&] { return static_cast<double>(hits); });
  registry.GetCounter("hits_total", "h", {{"model", "plain"}})->Inc(2);
  hits = 5;
  EXPECT_EQ(registry.RenderPrometheus(),
            "# HELP hits_total Hits.\n# TYPE hits_total counter\n"
            "hits_total{model=\"m\"} 5\nhits_total{model=\"plain\"} 2\n");
  EXPECT_THROW(registry.GetCounter("hits_total", "h", {{"model", "m"}}), std::logic_error);
  EXPECT_THROW(
      registry.AddCallbackCounter("hits_total", "h", {{"model", "plain"}}, [] { return 0.0; }),
      std::logic_error);
  EXPECT_THROW(registry.AddCallbackGauge("hits_total", "h", {}, [] { return 0.0; }),
               std::logic_error);  // the family is a counter
  EXPECT_TRUE(registry.RemoveCallback("hits_total", {{"model", "m"}}));
  EXPECT_FALSE(registry.RemoveCallback("hits_total", {{"model", "plain"}}));  // not a callback
}

TEST(RegistryTest, ReadReturnsTheSeriesAsTheyAreNow) {
  Registry registry;
  registry.GetCounter("req_total", "h", {{"tier", "paid"}, {"code", "200"}})->Inc(3);
  registry.AddCallbackCounter("req_total", "h", {{"tier", "free"}}, [] { return 4.0; });
  registry.AddCallbackGauge("depth", "h", {}, [] { return 2.5; });
  registry.GetHistogram("size", "h", {{"model", "m"}}, {1, 2})->Observe(2);
  EXPECT_TRUE(registry.Read("nope").empty());

  const auto requests = registry.Read("req_total");
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].labels, (Labels{{"code", "200"}, {"tier", "paid"}}));
  EXPECT_EQ(requests[0].value, 3);
  EXPECT_EQ(requests[1].value, 4);
  ASSERT_EQ(registry.Read("depth").size(), 1u);
  EXPECT_EQ(registry.Read("depth")[0].value, 2.5);
  const auto sizes = registry.Read("size");
  ASSERT_EQ(sizes.size(), 1u);
  EXPECT_EQ(sizes[0].histogram.counts, (std::vector<uint64_t>{0, 1, 0}));
  EXPECT_EQ(sizes[0].histogram.upper_bounds, (std::vector<double>{1, 2}));
}

TEST(RegistryTest, RemoveCallbackGauge) {
  Registry registry;
  registry.AddCallbackGauge("up", "h", {{"b", "1"}, {"a", "2"}}, [] { return 1.0; });
  EXPECT_FALSE(registry.RemoveCallback("up", {{"a", "9"}}));
  EXPECT_FALSE(registry.RemoveCallback("nope", {}));
  EXPECT_TRUE(registry.RemoveCallback("up", {{"a", "2"}, {"b", "1"}}));
  EXPECT_FALSE(registry.RemoveCallback("up", {{"a", "2"}, {"b", "1"}}));
  EXPECT_EQ(registry.RenderPrometheus(), "");  // a family without series is skipped
  registry.GetGauge("g", "h");
  EXPECT_FALSE(registry.RemoveCallback("g", {}));  // not a callback gauge
}

TEST(RegistryTest, NonFiniteGaugeValues) {
  Registry registry;
  registry.GetGauge("a", "h")->Set(-std::numeric_limits<double>::infinity());
  registry.AddCallbackGauge("b", "h", {}, [] { return std::nan(""); });
  EXPECT_EQ(registry.RenderPrometheus(),
            "# HELP a h\n# TYPE a gauge\na -Inf\n# HELP b h\n# TYPE b gauge\nb NaN\n");
}

}  // namespace
}  // namespace sluice::metrics
