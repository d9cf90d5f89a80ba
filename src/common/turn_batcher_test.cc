#include "common/turn_batcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <thread>

#include "common/asio_executor.h"
#include "testing/fake_executor.h"

namespace sluice {
namespace {

// Records every batch; completes them when the test says so.
struct Sink {
  std::vector<std::vector<int>> batches;
  std::vector<TurnBatcher<int>::Done> open;  // done callbacks not yet called
  bool complete_inline = false;

  TurnBatcher<int>::Options Options(Executor* executor, size_t max_batch, size_t in_flight = 1) {
    TurnBatcher<int>::Options o;
    o.executor = executor;
    o.max_batch = max_batch;
    o.max_in_flight = in_flight;
    o.send = [this](std::vector<int> batch, TurnBatcher<int>::Done done) {
      batches.push_back(std::move(batch));
      if (complete_inline) {
        done();
      } else {
        open.push_back(std::move(done));
      }
    };
    return o;
  }
  void CompleteOldest() {
    ASSERT_FALSE(open.empty());
    auto done = std::move(open.front());
    open.erase(open.begin());
    done();
  }
};

TEST(TurnBatcherTest, RejectsBadOptions) {
  testing::FakeExecutor ex;
  Sink sink;
  auto o = sink.Options(&ex, 0);
  EXPECT_EQ(TurnBatcher<int>::Create(o).status().message(), "batcher: max_batch must be >= 1");
  o = sink.Options(nullptr, 4);
  EXPECT_EQ(TurnBatcher<int>::Create(o).status().message(), "batcher: executor required");
  o = sink.Options(&ex, 4, 0);
  EXPECT_EQ(TurnBatcher<int>::Create(o).status().message(), "batcher: max_in_flight must be >= 1");
}

TEST(TurnBatcherTest, ItemsOfOneTurnGoTogetherAtItsEnd) {
  testing::FakeExecutor ex;
  Sink sink;
  auto b = std::move(TurnBatcher<int>::Create(sink.Options(&ex, 64))).value();
  b->Add(1);
  b->Add(2);
  b->Add(3);
  EXPECT_TRUE(sink.batches.empty());  // nothing before the turn ends
  ex.RunPending();                    // no time passes: the post only
  ASSERT_EQ(sink.batches.size(), 1u);
  EXPECT_EQ(sink.batches[0], (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(b->stats().items, 3u);
  EXPECT_EQ(b->stats().batches, 1u);
}

TEST(TurnBatcherTest, ItemsArrivingDuringARoundTripGoTogetherWhenItIsDone) {
  testing::FakeExecutor ex;
  Sink sink;
  auto b = std::move(TurnBatcher<int>::Create(sink.Options(&ex, 64))).value();
  b->Add(1);
  ex.RunPending();
  ASSERT_EQ(sink.batches.size(), 1u);
  for (int i = 2; i <= 5; ++i) {
    b->Add(i);
    ex.RunPending();  // turns end, but a batch is in flight: they wait
  }
  EXPECT_EQ(sink.batches.size(), 1u);
  sink.CompleteOldest();  // group commit: sent by the done, no turn needed
  ASSERT_EQ(sink.batches.size(), 2u);
  EXPECT_EQ(sink.batches[1], (std::vector<int>{2, 3, 4, 5}));
  sink.CompleteOldest();
  b->Add(6);
  ex.RunPending();
  ASSERT_EQ(sink.batches.size(), 3u);
  EXPECT_EQ(sink.batches[2], (std::vector<int>{6}));
}

TEST(TurnBatcherTest, AFullBatchGoesAtOnceAndBatchesNeverExceedTheBound) {
  testing::FakeExecutor ex;
  Sink sink;
  auto b = std::move(TurnBatcher<int>::Create(sink.Options(&ex, 4))).value();
  for (int i = 0; i < 10; ++i) b->Add(i);
  // Two full batches left without waiting for the turn or the first done.
  ASSERT_EQ(sink.batches.size(), 2u);
  EXPECT_EQ(sink.batches[0], (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(sink.batches[1], (std::vector<int>{4, 5, 6, 7}));
  ex.RunPending();  // two in flight (> max_in_flight): the rest waits
  EXPECT_EQ(sink.batches.size(), 2u);
  sink.CompleteOldest();
  EXPECT_EQ(sink.batches.size(), 2u);  // still one in flight
  sink.CompleteOldest();
  ASSERT_EQ(sink.batches.size(), 3u);
  EXPECT_EQ(sink.batches[2], (std::vector<int>{8, 9}));
}

TEST(TurnBatcherTest, WithAMaxDelayItemsWaitForItButNeverLonger) {
  testing::FakeExecutor ex;
  Sink sink;
  auto o = sink.Options(&ex, 64);
  o.max_delay = Micros(1'000);
  auto b = std::move(TurnBatcher<int>::Create(o)).value();
  b->Add(1);
  ex.Advance(Micros(999));
  EXPECT_TRUE(sink.batches.empty());
  b->Add(2);  // joins the first item's batch
  ex.Advance(Micros(1));
  ASSERT_EQ(sink.batches.size(), 1u);
  EXPECT_EQ(sink.batches[0], (std::vector<int>{1, 2}));
  // In flight: the next items wait for the done AND their delay.
  b->Add(3);
  sink.CompleteOldest();
  EXPECT_EQ(sink.batches.size(), 1u);
  ex.Advance(Micros(1'000));
  ASSERT_EQ(sink.batches.size(), 2u);
  EXPECT_EQ(sink.batches[1], (std::vector<int>{3}));
  // Delay over while in flight: the done sends them.
  b->Add(4);
  ex.Advance(Micros(1'000));
  EXPECT_EQ(sink.batches.size(), 2u);
  sink.CompleteOldest();
  ASSERT_EQ(sink.batches.size(), 3u);
  EXPECT_EQ(sink.batches[2], (std::vector<int>{4}));
  o.max_delay = Micros(-1);
  EXPECT_EQ(TurnBatcher<int>::Create(o).status().message(), "batcher: max_delay must be >= 0");
}

TEST(TurnBatcherTest, MoreInFlightLetsTurnsGoWithoutWaiting) {
  testing::FakeExecutor ex;
  Sink sink;
  auto b = std::move(TurnBatcher<int>::Create(sink.Options(&ex, 64, 2))).value();
  b->Add(1);
  ex.RunPending();
  b->Add(2);
  ex.RunPending();
  b->Add(3);
  ex.RunPending();  // two in flight: 3 waits
  ASSERT_EQ(sink.batches.size(), 2u);
  sink.CompleteOldest();
  ASSERT_EQ(sink.batches.size(), 3u);
  EXPECT_EQ(sink.batches[2], (std::vector<int>{3}));
}

TEST(TurnBatcherTest, ASenderThatCompletesInlineSendsEveryTurn) {
  testing::FakeExecutor ex;
  Sink sink;
  sink.complete_inline = true;  // e.g. Redis down: refused at once
  auto b = std::move(TurnBatcher<int>::Create(sink.Options(&ex, 2))).value();
  for (int i = 0; i < 5; ++i) b->Add(i);
  ex.RunPending();
  ASSERT_EQ(sink.batches.size(), 3u);
  EXPECT_EQ(sink.batches[2], (std::vector<int>{4}));
  EXPECT_EQ(b->stats().items, 5u);
}

// Many producer threads, a real executor and a sender that completes on
// another thread: every item goes out exactly once, in batches within the
// bound, each keeping its producers' order.
TEST(TurnBatcherTest, ConcurrentProducersLoseNothing) {
  boost::asio::io_context ioc;
  auto guard = boost::asio::make_work_guard(ioc);
  std::thread io([&] { ioc.run(); });
  AsioExecutor executor(ioc);
  constexpr int kThreads = 4, kPerThread = 5'000;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int> seen;
  size_t biggest = 0;
  size_t out_of_order = 0;  // within a batch
  std::vector<TurnBatcher<int>::Done> open;
  bool stop = false;
  std::thread completer([&] {
    std::unique_lock lock(mu);
    while (!stop) {
      cv.wait(lock, [&] { return stop || !open.empty(); });
      std::vector<TurnBatcher<int>::Done> now;
      now.swap(open);
      lock.unlock();
      for (auto& d : now) d();
      lock.lock();
    }
  });
  TurnBatcher<int>::Options o;
  o.executor = &executor;
  o.max_batch = 50;
  o.send = [&](std::vector<int> batch, TurnBatcher<int>::Done done) {
    std::lock_guard lock(mu);
    biggest = std::max(biggest, batch.size());
    for (size_t i = 1; i < batch.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        const bool same_producer = batch[j] / kPerThread == batch[i] / kPerThread;
        if (same_producer && batch[j] > batch[i]) ++out_of_order;
      }
    }
    seen.insert(seen.end(), batch.begin(), batch.end());
    open.push_back(std::move(done));
    cv.notify_all();
  };
  auto b = std::move(TurnBatcher<int>::Create(o)).value();
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) b->Add(t * kPerThread + i);
    });
  }
  for (auto& p : producers) p.join();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30),
                            [&] { return seen.size() == size_t{kThreads * kPerThread}; }));
    stop = true;
    cv.notify_all();
  }
  completer.join();
  guard.reset();
  io.join();
  EXPECT_LE(biggest, 50u);
  EXPECT_EQ(out_of_order, 0u);
  std::sort(seen.begin(), seen.end());
  for (int i = 0; i < kThreads * kPerThread; ++i) ASSERT_EQ(seen[i], i);  // each once
  EXPECT_EQ(b->stats().items, size_t{kThreads * kPerThread});
}

}  // namespace
}  // namespace sluice
