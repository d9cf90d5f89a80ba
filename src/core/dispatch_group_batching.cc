// DispatchGroup, part three: when a batch leaves — the collector's rule
// (the adaptive target, a full batch when one is due within the delay, the
// dispatch rate they follow) — and batches formed elsewhere, handed over
// whole. See dispatch_group.h.
#include <algorithm>
#include <cmath>

#include "core/dispatch_group.h"

namespace sluice {

void DispatchGroup::Submit(std::vector<RequestPtr> batch) {
  ex_.Post(Guarded([batch = std::move(batch)](DispatchGroup* g) mutable {
    if (batch.empty()) return;
    // Retired since the caller looked it up (two reloads in a row).
    if (g->hand_over_) return g->hand_over_(std::move(batch));
    const TimePoint now = g->ex_.clock().Now();
    g->CountDispatched(batch.size(), now);  // the rate the adaptive target follows
    g->handed_requests_.fetch_add(batch.size(), std::memory_order_relaxed);
    const size_t max = g->options_.max_batch_size;
    for (size_t at = 0; at < batch.size(); at += max) {
      const auto from = batch.begin() + static_cast<std::ptrdiff_t>(at);
      const auto to = batch.begin() + static_cast<std::ptrdiff_t>(std::min(at + max, batch.size()));
      g->handed_.emplace_back(std::make_move_iterator(from), std::make_move_iterator(to));
    }
    if (g->started_) {
      g->DispatchRetries(now);  // due retries first, as when a slot frees
      g->RunHanded(now);
    }
    if (g->handed_.empty()) return;
    g->EnsureSweep();  // its deadlines, and RefuseUnservable() while stuck
    if (g->batch_room() == 0) g->RefuseUnservable(now);
  }));
}

void DispatchGroup::RunHanded(TimePoint now) {
  while (!handed_.empty()) {
    std::optional<size_t> slot = PickSlot(now, {}, /*take=*/true);
    if (!slot) return;  // the next free slot takes it (TryCollect)
    std::vector<RequestPtr> batch, dropped;
    for (RequestPtr& r : handed_.front()) {
      (r->cancelled() || r->dispatch_deadline <= now ? dropped : batch).push_back(std::move(r));
    }
    handed_.pop_front();
    handed_requests_.fetch_sub(batch.size() + dropped.size(), std::memory_order_relaxed);
    AnswerDropped(dropped, now);
    if (batch.empty()) {
      free_slots_.push_front(*slot);
    } else {
      RunOnSlot(*slot, std::move(batch), now);
    }
  }
}

void DispatchGroup::TakeHanded(TimePoint until, std::vector<RequestPtr>* out) {
  for (std::vector<RequestPtr>& batch : handed_) {
    const auto keep = std::stable_partition(
        batch.begin(), batch.end(),
        [until](const RequestPtr& r) { return r->dispatch_deadline > until; });
    handed_requests_.fetch_sub(static_cast<size_t>(batch.end() - keep), std::memory_order_relaxed);
    out->insert(out->end(), std::make_move_iterator(keep), std::make_move_iterator(batch.end()));
    batch.erase(keep, batch.end());
  }
  handed_.erase(std::remove_if(handed_.begin(), handed_.end(),
                               [](const std::vector<RequestPtr>& b) { return b.empty(); }),
                handed_.end());
}

void DispatchGroup::Evaluate() {
  if (!collecting_ || queue_ == nullptr) return;
  DispatchQueue& q = *queue_;
  // Runs on the pushing thread: only hop onto the strand.
  auto wake = [ex = &ex_, again = Guarded([](DispatchGroup* g) { g->Evaluate(); })] {
    ex->Post(again);
  };
  size_t depth = q.Depth();
  if (depth == 0) {
    CancelDelayTimer();
    if (!q.NotifyAtDepth(1, wake)) ex_.Post(Guarded([](DispatchGroup* g) { g->Evaluate(); }));
    return;
  }
  EnsureSweep();
  TimePoint now = ex_.clock().Now();
  auto oldest = q.OldestArrival();
  auto earliest = q.EarliestDeadline();
  if (!oldest || !earliest) {  // drained between calls: look again
    ex_.Post(Guarded([](DispatchGroup* g) { g->Evaluate(); }));
    return;
  }
  const size_t target =
      BatchToWaitFor(now, depth, *oldest + Micros(options_.max_batch_delay_us) - now);
  if (depth >= target) return Dispatch(now);
  TimePoint fire_at = std::min(*oldest + Micros(options_.max_batch_delay_us),
                               *earliest - Micros(options_.deadline_guard_us));
  if (fire_at <= now) return Dispatch(now);
  if (delay_timer_ == 0 || delay_timer_at_ != fire_at) {
    CancelDelayTimer();
    delay_timer_at_ = fire_at;
    delay_timer_ = ex_.RunAt(fire_at, Guarded([](DispatchGroup* g) {
                               g->delay_timer_ = 0;
                               g->Evaluate();
                             }));
  }
  if (!q.NotifyAtDepth(target, wake)) ex_.Post(Guarded([](DispatchGroup* g) { g->Evaluate(); }));
}

size_t DispatchGroup::TargetBatchSize(TimePoint now) const {
  const size_t max = options_.max_batch_size;
  if (options_.batching == BatchingMode::kStatic) return max;
  const double lambda = RateAt(now) * (1 + options_.batching_headroom);
  const double slots = static_cast<double>(std::max<size_t>(available_slots(), 1));
  const double fixed_s = cost_model_->FixedMicros() / 1e6;
  const double per_item_s = cost_model_->PerItemMicros() / 1e6;
  const double room = slots - lambda * per_item_s;
  if (room <= 0) return max;
  const double n = std::ceil(lambda * fixed_s / room);
  return static_cast<size_t>(std::clamp(n, 1.0, static_cast<double>(max)));
}

size_t DispatchGroup::BatchToWaitFor(TimePoint now, size_t depth,
                                     SteadyClock::duration delay_left) const {
  const size_t target = TargetBatchSize(now);
  const size_t max = options_.max_batch_size;
  if (target >= max || depth >= max) return target;
  return TimeToQueue(now, max - depth) <= delay_left ? max : target;
}

SteadyClock::duration DispatchGroup::TimeToQueue(TimePoint now, size_t more) const {
  if (more == 0) return SteadyClock::duration::zero();
  const double rate = RateAt(now);
  const double seconds = static_cast<double>(more) / rate;
  // Beyond a day is as good as never (and keeps the conversion in range).
  if (!(rate > 0) || seconds > 86'400) return SteadyClock::duration::max();
  return std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(seconds));
}

double DispatchGroup::RateAt(TimePoint now) const {
  const double tau_s = static_cast<double>(options_.rate_time_constant_ms) / 1e3;
  const int64_t now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  const double age_s = std::max(
      0.0, static_cast<double>(now_ns - rate_at_ns_.load(std::memory_order_relaxed)) / 1e9);
  return dispatch_rate_.load(std::memory_order_relaxed) * std::exp(-age_s / tau_s);
}

void DispatchGroup::CountDispatched(size_t n, TimePoint now) {
  // A decayed count: each request adds 1/tau, decaying with time constant tau.
  const double tau_s = static_cast<double>(options_.rate_time_constant_ms) / 1e3;
  const double rate = RateAt(now) + static_cast<double>(n) / tau_s;
  rate_at_ns_.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count(),
      std::memory_order_relaxed);
  dispatch_rate_.store(rate, std::memory_order_relaxed);
}

}  // namespace sluice
