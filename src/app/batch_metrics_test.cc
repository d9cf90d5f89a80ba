#include "app/batch_metrics.h"

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "testing/fake_executor.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;

// The line of `text` that starts with `prefix`, or "".
std::string Line(const std::string& text, const std::string& prefix) {
  size_t at = text.find("\n" + prefix);
  if (at == std::string::npos) return "";
  size_t end = text.find('\n', at + 1);
  return text.substr(at + 1, end - at - 1);
}

TEST(BatchMetricsTest, CountsBatchesRetriesDeadLettersAndBreakerOpenings) {
  metrics::Registry registry;
  testing::FakeClock clock;
  size_t ok_batches = 0, ok_items = 0;
  BatchMetrics::Options o;
  o.model = "m";
  o.max_batch_size = 8;
  o.endpoint_names = {"http://a/x", "http://b/x"};
  o.registry = &registry;
  o.clock = &clock;
  o.on_batch_ok = [&](size_t n, SteadyClock::duration) {
    ++ok_batches;
    ok_items += n;
  };
  BatchMetrics m(o);
  clock.Set(clock.Now() + std::chrono::seconds(1));  // the work below ran after construction
  m.OnBatchDone(0, 8, milliseconds(50), true);
  m.OnBatchDone(1, 3, milliseconds(20), true);
  m.OnBatchDone(0, 5, milliseconds(10), false);
  m.OnBatchFailed(0, BackendError("HTTP 500: boom"));
  m.OnRetry(0, 5);
  m.OnDeadLetter(2);
  m.OnBreakerChange(1, "http://b/x", BreakerState::kOpen);
  m.OnBreakerChange(1, "http://b/x", BreakerState::kHalfOpen);
  m.OnBreakerChange(1, "http://b/x", BreakerState::kOpen);

  const std::string text = "\n" + registry.RenderPrometheus();
  EXPECT_EQ(Line(text, "sluice_batches_total{model=\"m\",outcome=\"ok\"}"),
            "sluice_batches_total{model=\"m\",outcome=\"ok\"} 2");
  EXPECT_EQ(Line(text, "sluice_batches_total{model=\"m\",outcome=\"failed\"}"),
            "sluice_batches_total{model=\"m\",outcome=\"failed\"} 1");
  EXPECT_EQ(Line(text, "sluice_batch_size_count{model=\"m\"}"),
            "sluice_batch_size_count{model=\"m\"} 3");
  EXPECT_EQ(Line(text, "sluice_batch_size_sum{model=\"m\"}"),
            "sluice_batch_size_sum{model=\"m\"} 16");
  EXPECT_EQ(Line(text, "sluice_batch_retry_requests_total{model=\"m\"}"),
            "sluice_batch_retry_requests_total{model=\"m\"} 5");
  EXPECT_EQ(Line(text, "sluice_dead_letters_total{model=\"m\"}"),
            "sluice_dead_letters_total{model=\"m\"} 2");
  EXPECT_EQ(Line(text, "sluice_circuit_breaker_opened_total{endpoint=\"http://b/x\",model=\"m\"}"),
            "sluice_circuit_breaker_opened_total{endpoint=\"http://b/x\",model=\"m\"} 2");
  EXPECT_EQ(Line(text, "sluice_circuit_breaker_opened_total{endpoint=\"http://a/x\",model=\"m\"}"),
            "sluice_circuit_breaker_opened_total{endpoint=\"http://a/x\",model=\"m\"} 0");
  // Only successful batches feed the throughput hook.
  EXPECT_EQ(ok_batches, 2u);
  EXPECT_EQ(ok_items, 11u);
  // 80 ms of busy time; the meter has seen one whole second, of 2 slots.
  EXPECT_NEAR(m.Utilization(2), 0.080 / 2, 1e-9);
}

}  // namespace
}  // namespace sluice
