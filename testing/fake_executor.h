// FakeExecutor: a single-threaded, manually driven Executor + Clock for
// unit tests. Time moves only through Advance(); posted callbacks and due
// timers run only inside RunPending()/Advance(), in order (posts first, then
// timers by due time, ties by creation). Not thread-safe except Post(),
// which may be called from other threads (e.g. a backend's done callback).
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "common/clock.h"

namespace sluice::testing {

class FakeClock final : public Clock {
 public:
  TimePoint Now() const override { return now_; }
  void Set(TimePoint t) { now_ = t; }

 private:
  TimePoint now_ = TimePoint{} + std::chrono::hours(1);
};

class FakeExecutor final : public Executor {
 public:
  const Clock& clock() const override { return clock_; }
  TimePoint Now() const { return clock_.Now(); }

  void Post(std::function<void()> fn) override {
    std::lock_guard lock(mu_);
    posted_.push_back(std::move(fn));
  }
  TimerId RunAt(TimePoint when, std::function<void()> fn) override {
    TimerId id = next_id_++;
    timers_.emplace(std::make_pair(when, id), std::move(fn));
    return id;
  }
  bool Cancel(TimerId id) override {
    for (auto it = timers_.begin(); it != timers_.end(); ++it) {
      if (it->first.second == id) {
        timers_.erase(it);
        return true;
      }
    }
    return false;
  }

  // Runs posted callbacks (and those they post) and timers due now.
  void RunPending() {
    for (int guard = 0; guard < 1'000'000; ++guard) {
      std::function<void()> fn;
      {
        std::lock_guard lock(mu_);
        if (!posted_.empty()) {
          fn = std::move(posted_.front());
          posted_.erase(posted_.begin());
        }
      }
      if (!fn && !timers_.empty() && timers_.begin()->first.first <= clock_.Now()) {
        fn = std::move(timers_.begin()->second);
        timers_.erase(timers_.begin());
      }
      if (!fn) return;
      fn();
    }
  }

  // Moves time forward by `d`, firing timers in due order at their due time.
  void Advance(SteadyClock::duration d) {
    TimePoint end = clock_.Now() + d;
    RunPending();
    while (!timers_.empty() && timers_.begin()->first.first <= end) {
      clock_.Set(std::max(clock_.Now(), timers_.begin()->first.first));
      RunPending();
    }
    clock_.Set(end);
    RunPending();
  }

  size_t pending_timers() const { return timers_.size(); }

 private:
  FakeClock clock_;
  std::mutex mu_;
  std::vector<std::function<void()>> posted_;  // GUARDED_BY(mu_)
  std::map<std::pair<TimePoint, TimerId>, std::function<void()>> timers_;
  TimerId next_id_ = 1;
};

}  // namespace sluice::testing
