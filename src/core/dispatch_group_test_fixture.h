// DispatchGroupTest: the fixture of the DispatchGroup tests
// (dispatch_group_test.cc: batching, deadlines, slots; dispatch_group_
// failures_test.cc: retries, breakers, dead letters; dispatch_group_handed_
// test.cc: batches handed over whole). A group of FakeBackend slots over a
// MemoryQueue (or none: with_queue_ false) on a FakeExecutor; tests step
// time by hand.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/dispatch_group.h"
#include "core/memory_queue.h"
#include "testing/fake_backend.h"
#include "testing/fake_executor.h"

namespace sluice {

class DispatchGroupTest : public ::testing::Test {
 public:
  using FakeBackend = testing::FakeBackend;
  using FakeExecutor = testing::FakeExecutor;
  using milliseconds = std::chrono::milliseconds;

 protected:
  void Build(size_t slots, size_t max_batch, int64_t delay_us,
             int64_t accel_timeout_us = 3'000'000) {
    auto q = MemoryQueue::Create(
        {1000, QueueOrdering::kEarliestDeadlineFirst, {TierPolicy{"t", 0, 1'000'000}}});
    ASSERT_TRUE(q.ok());
    queue_ = std::move(q).value();
    std::vector<std::unique_ptr<Backend>> backends;
    for (size_t i = 0; i < slots; ++i) {
      auto b = std::make_unique<FakeBackend>("fake" + std::to_string(i));
      fakes_.push_back(b.get());
      backends.push_back(std::move(b));
    }
    DispatchGroup::Options o;
    o.model = "m";
    o.max_batch_size = max_batch;
    o.max_batch_delay_us = delay_us;
    o.accelerator_timeout_us = accel_timeout_us;
    o.expiry_check_interval_us = 1'000;
    o.executor = &ex_;
    o.queue = with_queue_ ? queue_.get() : nullptr;
    o.router = &router_;
    o.observer = &observer_;
    o.retry_seed = 7;
    // The wait-or-full tests below are about static batching; the adaptive
    // ones switch it back.
    o.batching = BatchingMode::kStatic;
    if (configure_) configure_(o);
    auto g = DispatchGroup::Create(o, std::move(backends));
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    group_ = std::move(g).value();
    group_->Start();
    ex_.RunPending();
  }

  // A request that must be dispatched within `deadline_ms`; its outcome
  // lands in outcomes_[input].
  RequestPtr Make(const std::string& input, int deadline_ms = 1000, int total_ms = 4000) {
    auto r = std::make_shared<InferenceRequest>();
    r->input = input;
    r->arrival = ex_.Now();
    r->dispatch_deadline = r->arrival + milliseconds(deadline_ms);
    r->total_deadline = r->arrival + milliseconds(total_ms);
    r->set_on_complete([this, input](InferenceOutcome&& o) { outcomes_[input] = std::move(o); });
    return r;
  }

  // Pushes Make(...) into the group's queue.
  RequestPtr Push(const std::string& input, int deadline_ms = 1000, int total_ms = 4000) {
    RequestPtr r = Make(input, deadline_ms, total_ms);
    EXPECT_TRUE(queue_->Push(r).ok());
    return r;
  }

  // Pushes `n` asynchronous requests, prefix0 .. prefix<n-1>, due in 60 s.
  void PushAsync(const std::string& prefix, int n) {
    for (int i = 0; i < n; ++i) {
      RequestPtr r = Make(prefix + std::to_string(i), 60'000, 60'000);
      r->async = true;
      EXPECT_TRUE(queue_->Push(r).ok());
    }
  }

  // Counts what the group reports.
  struct Observer : DispatchObserver {
    void OnRetry(size_t, size_t n) override { retried += n; }
    void OnDeadLetter(size_t n) override { dead += n; }
    void OnBatchFailed(size_t, const Status& error) override {
      ++failed_batches;
      last_failure = error;
    }
    void OnBreakerChange(size_t endpoint, const std::string&, BreakerState state) override {
      changes.emplace_back(endpoint, state);
    }
    size_t retried = 0, dead = 0, failed_batches = 0;
    Status last_failure;
    std::vector<std::pair<size_t, BreakerState>> changes;
  };

  // Fails the oldest in-flight batch of slot `i` as a whole.
  void FailBatch(size_t i, const std::string& why = "HTTP 500") {
    BatchResult r;
    r.status = BackendError(why);
    fakes_[i]->Finish(std::move(r));
    ex_.RunPending();
  }

  std::function<void(DispatchGroup::Options&)> configure_;
  bool with_queue_ = true;  // false: the group has no queue (Submit() only)
  Observer observer_;
  FakeExecutor ex_;
  LocalResultRouter router_;
  std::unique_ptr<MemoryQueue> queue_;
  std::vector<FakeBackend*> fakes_;
  std::unique_ptr<DispatchGroup> group_;
  std::map<std::string, InferenceOutcome> outcomes_;
};

}  // namespace sluice
