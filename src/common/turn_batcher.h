// TurnBatcher<T>: gathers items handed over from any thread and passes them
// on in batches, so that a hop costs one call per batch instead of one per
// item (the gateway's enqueue into Redis).
//
// When a batch goes out:
//   - at the end of the executor turn in which its first item arrived (one
//     Post), or, with max_delay > 0, max_delay after it arrived (one timer):
//     items that arrive together go together, and an idle system adds no
//     delay beyond that post (or max_delay);
//   - while max_in_flight batches are sent and not yet done, new items wait
//     and go out together when one is done (group commit): a busy system
//     sends batches as large as the arrivals during one round trip. With
//     max_delay > 0 they go when one is done AND their delay has passed;
//   - at once when max_batch items wait, whatever is in flight (the sender
//     bounds what it queues; see Options::send).
// No batch holds more than max_batch items, and each holds its items in
// arrival order. Batches are taken in order, but two sent from different
// threads (a full batch while another is in flight) may reach `send` in
// either order.
//
// Thread-safety: Add() may be called from any thread. `send` runs on the
// thread of the call that filled the batch, the executor, or the thread
// that reported the previous batch done; never under the batcher's lock.
// Ownership: the batcher's state lives until the last posted flush and the
// last `done` ran, so `done` may be called after the batcher is destroyed
// (items waiting then are sent by that call, or dropped with the state if
// none is pending: destroy it only after its producers stopped).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace sluice {

template <typename T>
class TurnBatcher {
 public:
  // Reports a sent batch done; call exactly once, from any thread (inline
  // inside `send` too).
  using Done = std::function<void()>;

  struct Options {
    Executor* executor = nullptr;  // required; runs the end-of-turn flush
    size_t max_batch = 256;        // items per batch; >= 1
    size_t max_in_flight = 1;      // batches sent and not done before items wait; >= 1
    // Longest an item waits for others to join its batch; 0 = until the end
    // of the executor turn. >= 0.
    Micros max_delay{0};
    // Passes one batch on (required). It must call `done` once the batch
    // has been handled and must not block.
    std::function<void(std::vector<T>, Done)> send;
  };

  struct Stats {
    uint64_t items = 0;    // items sent
    uint64_t batches = 0;  // calls of `send`
  };

  // Errors: kInvalidArgument naming the field.
  static Result<std::unique_ptr<TurnBatcher>> Create(Options options) {
    if (options.executor == nullptr) return InvalidArgument("batcher: executor required");
    if (!options.send) return InvalidArgument("batcher: send required");
    if (options.max_batch < 1) return InvalidArgument("batcher: max_batch must be >= 1");
    if (options.max_in_flight < 1) return InvalidArgument("batcher: max_in_flight must be >= 1");
    if (options.max_delay.count() < 0) return InvalidArgument("batcher: max_delay must be >= 0");
    return std::unique_ptr<TurnBatcher>(new TurnBatcher(std::move(options)));
  }

  void Add(T item) {
    std::vector<T> batch;
    bool schedule = false;
    {
      std::lock_guard lock(state_->mu);
      state_->waiting.push_back(std::move(item));
      if (state_->waiting.size() >= state_->options.max_batch) {
        batch = TakeLocked(*state_);
      } else if (!state_->scheduled) {
        state_->scheduled = true;
        schedule = true;
      }
    }
    if (!batch.empty()) Send(state_, std::move(batch));
    if (!schedule) return;
    Executor* ex = state_->options.executor;
    if (state_->options.max_delay.count() == 0) {
      ex->Post([state = state_] { EndOfTurn(state); });
    } else {
      ex->RunAt(ex->clock().Now() + state_->options.max_delay,
                [state = state_] { EndOfTurn(state); });
    }
  }

  Stats stats() const {
    return {state_->items.load(std::memory_order_relaxed),
            state_->batches.load(std::memory_order_relaxed)};
  }

 private:
  struct State {
    explicit State(Options o) : options(std::move(o)) {}
    const Options options;
    std::mutex mu;
    std::vector<T> waiting;  // GUARDED_BY(mu)
    size_t in_flight = 0;    // GUARDED_BY(mu)
    bool scheduled = false;  // GUARDED_BY(mu); an EndOfTurn is pending
    bool due = false;        // GUARDED_BY(mu); waiting items may go at the next done
    std::atomic<uint64_t> items{0};
    std::atomic<uint64_t> batches{0};
  };

  explicit TurnBatcher(Options options) : state_(std::make_shared<State>(std::move(options))) {}

  // Takes up to max_batch waiting items as the next batch (counted in flight).
  static std::vector<T> TakeLocked(State& s) {
    std::vector<T> batch;
    s.due = false;
    if (s.waiting.size() <= s.options.max_batch) {
      batch.swap(s.waiting);
    } else {
      auto end = s.waiting.begin() + static_cast<std::ptrdiff_t>(s.options.max_batch);
      batch.assign(std::make_move_iterator(s.waiting.begin()), std::make_move_iterator(end));
      s.waiting.erase(s.waiting.begin(), end);
    }
    ++s.in_flight;
    return batch;
  }

  static void EndOfTurn(const std::shared_ptr<State>& s) {
    std::vector<T> batch;
    {
      std::lock_guard lock(s->mu);
      s->scheduled = false;
      if (!s->waiting.empty()) {
        if (s->in_flight < s->options.max_in_flight) {
          batch = TakeLocked(*s);
        } else {
          s->due = true;  // the next done sends them
        }
      }
    }
    if (!batch.empty()) Send(s, std::move(batch));
  }

  static void OnDone(const std::shared_ptr<State>& s) {
    std::vector<T> batch;
    {
      std::lock_guard lock(s->mu);
      --s->in_flight;
      // Items that waited for this round trip go now (with max_delay, once
      // it has passed for them); a pending EndOfTurn would send them too,
      // but later.
      const bool may_go = s->due || s->options.max_delay.count() == 0;
      if (!s->waiting.empty() && may_go && s->in_flight < s->options.max_in_flight) {
        batch = TakeLocked(*s);
      }
    }
    if (!batch.empty()) Send(s, std::move(batch));
  }

  static void Send(const std::shared_ptr<State>& s, std::vector<T> batch) {
    s->items.fetch_add(batch.size(), std::memory_order_relaxed);
    s->batches.fetch_add(1, std::memory_order_relaxed);
    s->options.send(std::move(batch), [s] { OnDone(s); });
  }

  std::shared_ptr<State> state_;
};

}  // namespace sluice
