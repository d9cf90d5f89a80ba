// DispatchGroup, part five: retirement, when a reload replaces the group
// (see "Retirement" in dispatch_group.h).
#include "core/dispatch_group.h"

namespace sluice {

void DispatchGroup::Retire(std::function<void(std::vector<RequestPtr>)> hand_over) {
  ex_.Post(Guarded([hand_over = std::move(hand_over)](DispatchGroup* g) mutable {
    if (g->retired()) return;
    g->hand_over_ = std::move(hand_over);
    g->retired_.store(true, std::memory_order_release);
    // The queue is the successor's now: nothing here may pop it, or clear
    // the wake-up the successor registers there.
    if (g->queue_ != nullptr) g->queue_->ClearNotify();
    g->queue_ = nullptr;
    g->CancelDelayTimer();
    g->collecting_ = false;
    g->free_slots_.clear();
    for (size_t i = 0; i < g->slots_.size(); ++i) {
      g->slots_[i].enabled = false;  // a slot whose batch ends stays idle
      g->slot_enabled_[i].store(false, std::memory_order_relaxed);
    }
    g->enabled_.store(0, std::memory_order_relaxed);
    if (g->retry_timer_ != 0) g->ex_.Cancel(g->retry_timer_);
    g->retry_timer_ = 0;
    std::vector<PendingRetry> retries = std::move(g->retries_);
    g->retries_.clear();
    g->retry_requests_.store(0, std::memory_order_relaxed);
    std::deque<std::vector<RequestPtr>> handed = std::move(g->handed_);
    g->handed_.clear();
    g->handed_requests_.store(0, std::memory_order_relaxed);
    for (PendingRetry& r : retries) g->HandOverRetry(std::move(r.batch));
    for (std::vector<RequestPtr>& batch : handed) g->hand_over_(std::move(batch));
  }));
}

void DispatchGroup::HandOverRetry(std::vector<RequestPtr> batch) {
  // Handed batches obey their dispatch deadline; a retry, its total one
  // (less the guard, as DispatchRetries() sends none later).
  for (RequestPtr& r : batch) {
    r->dispatch_deadline = r->total_deadline - Micros(options_.deadline_guard_us);
  }
  hand_over_(std::move(batch));
}

void DispatchGroup::CarryOverLoad(const DispatchGroup& previous) {
  dispatch_rate_.store(previous.dispatch_rate_.load(std::memory_order_relaxed),
                       std::memory_order_relaxed);
  rate_at_ns_.store(previous.rate_at_ns_.load(std::memory_order_relaxed),
                    std::memory_order_relaxed);
  last_sync_us_.store(previous.last_sync_us_.load(std::memory_order_relaxed),
                      std::memory_order_relaxed);
}

}  // namespace sluice
