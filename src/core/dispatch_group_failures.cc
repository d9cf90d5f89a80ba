// DispatchGroup, part two: slot choice under circuit breakers, retries of
// failed batches, the dead-letter queue. See dispatch_group.h.
#include <algorithm>

#include "core/dispatch_group.h"

namespace sluice {

namespace {
std::string AttemptsText(int attempts) {
  return std::to_string(attempts) + (attempts == 1 ? " attempt" : " attempts");
}
}  // namespace

size_t DispatchGroup::available_slots() const {
  size_t n = 0;
  for (size_t i = 0; i < slots_.size(); ++i) {
    n += slot_enabled_[i].load(std::memory_order_relaxed) &&
         endpoints_[slots_[i].endpoint].breaker.state() == BreakerState::kClosed;
  }
  return n;
}

size_t DispatchGroup::probing_endpoints() const {
  size_t n = 0;
  for (const Endpoint& e : endpoints_) {
    if (e.breaker.state() != BreakerState::kHalfOpen) continue;
    n += std::any_of(e.slots.begin(), e.slots.end(), [this](size_t slot) {
      return slot_enabled_[slot].load(std::memory_order_relaxed);
    });
  }
  return n;
}

std::optional<TimePoint> DispatchGroup::next_probe_at() const {
  const int64_t ns = next_probe_ns_.load(std::memory_order_relaxed);
  if (ns < 0) return std::nullopt;
  return TimePoint(std::chrono::duration_cast<SteadyClock::duration>(std::chrono::nanoseconds(ns)));
}

void DispatchGroup::PublishProbeTime() {
  std::optional<TimePoint> next;
  for (const Endpoint& e : endpoints_) {
    if (e.breaker.state() != BreakerState::kOpen) continue;
    if (!next || e.breaker.reopens_at() < *next) next = e.breaker.reopens_at();
  }
  next_probe_ns_.store(
      next ? std::chrono::duration_cast<std::chrono::nanoseconds>(next->time_since_epoch()).count()
           : -1,
      std::memory_order_relaxed);
}

void DispatchGroup::RefuseUnservable(TimePoint now) {
  std::vector<RequestPtr> refused;
  if (available_slots() == 0) {
    // Retries never run as probes (PickSlot), so with no closed endpoint
    // they would wait and end as 502s or 504s: refuse them now.
    for (PendingRetry& pending : retries_) {
      for (RequestPtr& r : pending.batch) refused.push_back(std::move(r));
    }
    retries_.clear();
    retry_requests_.store(0, std::memory_order_relaxed);
  }
  // What could still be served: dispatched at the next probe, or never when
  // nothing is open (every slot disabled).
  std::optional<TimePoint> probe = next_probe_at();
  const bool stuck = batch_room() == 0 && (QueueDepth() > 0 || !handed_.empty());
  if (stuck && probe) {
    const TimePoint horizon =
        std::max(*probe, now) +
        Micros(static_cast<int64_t>(cost_model_->BatchMicros(options_.max_batch_size)));
    if (queue_ != nullptr) queue_->RemoveExpired(horizon, &refused);
    TakeHanded(horizon, &refused);
  } else if (stuck) {
    if (queue_ != nullptr) queue_->RemoveAll(&refused);
    TakeHanded(TimePoint::max(), &refused);
  }
  if (refused.empty()) return;
  const int64_t retry_s =
      probe ? std::max<int64_t>(1, (ToMicros(*probe - now) + 999'999) / 1'000'000) : 30;
  for (RequestPtr& r : refused) {
    if (r->completed()) continue;
    InferenceOutcome o =
        ErrorOutcome(Unavailable("no accelerator endpoint of model '" + options_.model +
                                 "' can take work before this request's deadline; retry in " +
                                 std::to_string(retry_s) + " s"));
    o.reason = "backends_unavailable";
    o.retry_after_s = retry_s;
    r->Complete(std::move(o));
  }
}

std::optional<size_t> DispatchGroup::PickSlot(TimePoint now, const std::vector<size_t>& avoid,
                                              bool take, bool closed_only) {
  auto usable = [&](size_t slot) {
    CircuitBreaker& breaker = endpoints_[slots_[slot].endpoint].breaker;
    if (closed_only && breaker.state() != BreakerState::kClosed) return false;
    return breaker.Allow(now);
  };
  auto pick = [&](bool allow_avoided) -> std::optional<size_t> {
    for (auto it = free_slots_.begin(); it != free_slots_.end(); ++it) {
      if (!allow_avoided &&
          std::find(avoid.begin(), avoid.end(), slots_[*it].endpoint) != avoid.end()) {
        continue;
      }
      if (!usable(*it)) continue;
      size_t slot = *it;
      if (take) free_slots_.erase(it);
      return slot;
    }
    return std::nullopt;
  };
  if (auto slot = pick(false)) return slot;
  if (avoid.empty()) return std::nullopt;
  // An endpoint it has not failed on is busy but healthy: wait for it rather
  // than try a failing one again.
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (std::find(avoid.begin(), avoid.end(), slots_[i].endpoint) != avoid.end()) continue;
    if (slots_[i].enabled &&
        endpoints_[slots_[i].endpoint].breaker.state() == BreakerState::kClosed) {
      return std::nullopt;
    }
  }
  return pick(true);
}

void DispatchGroup::StopCollectingIfNoSlot(TimePoint now) {
  if (!collecting_ || PickSlot(now, {}, /*take=*/false)) return;
  collecting_ = false;  // nobody left to take a batch
  CancelDelayTimer();
  queue_->ClearNotify();
  WatchWhileUnservable();
}

void DispatchGroup::WatchWhileUnservable() {
  if (batch_room() > 0) return;  // a slot will return or a probe will run
  // Nothing will pop the queue: the sweep must see what arrives, to refuse it.
  if (QueueDepth() > 0 || !handed_.empty()) return EnsureSweep();
  if (queue_ == nullptr) return;  // Submit() refuses what is handed over
  auto wake = [ex = &ex_, sweep = Guarded([](DispatchGroup* g) { g->EnsureSweep(); })] {
    ex->Post(sweep);
  };
  if (!queue_->NotifyAtDepth(1, wake)) EnsureSweep();
}

void DispatchGroup::RecordOutcome(size_t slot_index, bool ok, TimePoint now) {
  size_t e = slots_[slot_index].endpoint;
  Endpoint& endpoint = endpoints_[e];
  bool changed = ok ? endpoint.breaker.OnSuccess(now) : endpoint.breaker.OnFailure(now);
  if (!changed) return;
  BreakerState state = endpoint.breaker.state();
  PublishProbeTime();
  if (state == BreakerState::kOpen) {
    ArmProbeTimer(e);
    StopCollectingIfNoSlot(now);
  } else if (endpoint.probe_timer) {
    ex_.Cancel(endpoint.probe_timer);
    endpoint.probe_timer = 0;
  }
  if (options_.observer && !retired()) {
    options_.observer->OnBreakerChange(e, endpoint.name, state);
  }
  if (state == BreakerState::kOpen) {
    RefuseUnservable(now);
    EnsureSweep();
  }
}

void DispatchGroup::ArmProbeTimer(size_t e) {
  Endpoint& endpoint = endpoints_[e];
  if (endpoint.probe_timer) ex_.Cancel(endpoint.probe_timer);
  endpoint.probe_timer =
      ex_.RunAt(endpoint.breaker.reopens_at(), Guarded([e](DispatchGroup* g) {
                  g->endpoints_[e].probe_timer = 0;
                  TimePoint now = g->ex_.clock().Now();
                  // Allow() turns it half-open: one probe batch may go.
                  const bool allowed = g->endpoints_[e].breaker.Allow(now);
                  g->PublishProbeTime();
                  if (allowed && g->options_.observer && !g->retired()) {
                    g->options_.observer->OnBreakerChange(e, g->endpoints_[e].name,
                                                          g->endpoints_[e].breaker.state());
                  }
                  g->DispatchRetries(now);
                  g->TryCollect();
                }));
}

void DispatchGroup::HandleFailedBatch(size_t slot_index, std::vector<RequestPtr> batch,
                                      const Status& error, std::string_view summary,
                                      TimePoint now) {
  const RetryPolicy& policy = options_.retry;
  const Slot& slot = slots_[slot_index];
  if (options_.observer) options_.observer->OnBatchFailed(slot_index, error);
  // Clients read `summary`; the backend's name and words stay internal.
  const std::string detail = FailureDetail(slot.backend->name(), error);
  const std::string last = "; last: " + std::string(summary) + ")";
  std::vector<RequestPtr> retry;
  size_t dead = 0;
  int attempts = 0;
  int64_t backoff_us = -1;
  for (auto& r : batch) {
    if (r->completed()) continue;  // answered already (e.g. shutdown)
    attempts = std::max(attempts, r->attempts);
    if (r->cancelled()) {
      r->Complete(ErrorOutcome(Status(ErrorCode::kCancelled, "client closed the connection")));
    } else if (r->streaming()) {
      // Part of its answer has reached the client: a retry would send it twice.
      r->Complete(ErrorOutcome(
          BackendError("model '" + options_.model + "' failed while its answer streamed (" +
                       std::string(summary) + ")"),
          detail));
    } else if (now + Micros(options_.deadline_guard_us) >= r->total_deadline) {
      r->Complete(ErrorOutcome(DeadlineExceeded("deadline passed while the batch was on the "
                                                "accelerator (" +
                                                AttemptsText(r->attempts) + last),
                               detail));
    } else if (r->attempts > policy.max_retries) {
      if (options_.dead_letters) {
        options_.dead_letters->Add(*r, r->attempts, error, slot.backend->name());
      }
      ++dead;
      r->Complete(
          ErrorOutcome(BackendError("model '" + options_.model + "' failed after " +
                                    AttemptsText(r->attempts) + " (" + std::string(summary) + ")"),
                       detail));
    } else {
      if (backoff_us < 0) backoff_us = policy.BackoffUs(r->attempts, rng_);
      if (now + Micros(backoff_us + options_.deadline_guard_us) >= r->total_deadline) {
        r->Complete(ErrorOutcome(DeadlineExceeded("deadline would pass before a retry (" +
                                                  AttemptsText(r->attempts) + last),
                                 detail));
      } else {
        retry.push_back(std::move(r));
      }
    }
  }
  if (dead > 0 && options_.observer) options_.observer->OnDeadLetter(dead);
  if (retry.empty()) return;
  if (options_.observer) options_.observer->OnRetry(slot_index, retry.size());
  if (hand_over_) return HandOverRetry(std::move(retry));  // retired: its successor runs it
  retry_requests_.fetch_add(retry.size(), std::memory_order_relaxed);
  PendingRetry pending{now + Micros(backoff_us), std::move(retry), slot.tried_endpoints, detail};
  auto at = std::upper_bound(retries_.begin(), retries_.end(), pending.ready_at,
                             [](TimePoint t, const PendingRetry& p) { return t < p.ready_at; });
  retries_.insert(at, std::move(pending));
  EnsureSweep();
  ArmRetryTimer();
}

void DispatchGroup::ArmRetryTimer() {
  if (retries_.empty()) return;
  TimePoint at = retries_.front().ready_at;
  if (retry_timer_ != 0 && retry_timer_at_ == at) return;
  if (retry_timer_ != 0) ex_.Cancel(retry_timer_);
  retry_timer_at_ = at;
  retry_timer_ = ex_.RunAt(at, Guarded([](DispatchGroup* g) {
                             g->retry_timer_ = 0;
                             g->DispatchRetries(g->ex_.clock().Now());
                           }));
}

void DispatchGroup::DispatchRetries(TimePoint now) {
  if (!started_) return;
  while (!retries_.empty() && retries_.front().ready_at <= now) {
    std::optional<size_t> slot =
        PickSlot(now, retries_.front().failed_endpoints, /*take=*/true, /*closed_only=*/true);
    if (!slot) break;  // waits for the next free slot (or its deadline: see Sweep)
    PendingRetry pending = std::move(retries_.front());
    retries_.erase(retries_.begin());
    retry_requests_.fetch_sub(pending.batch.size(), std::memory_order_relaxed);
    std::vector<RequestPtr> batch;
    for (auto& r : pending.batch) {
      if (r->completed()) continue;
      if (r->cancelled()) {
        r->Complete(ErrorOutcome(Status(ErrorCode::kCancelled, "client closed the connection")));
      } else if (now + Micros(options_.deadline_guard_us) >= r->total_deadline) {
        r->Complete(ErrorOutcome(DeadlineExceeded("deadline passed while waiting for a retry (" +
                                                  AttemptsText(r->attempts) + ")"),
                                 pending.last_detail));
      } else {
        batch.push_back(std::move(r));
      }
    }
    if (batch.empty()) {
      free_slots_.push_front(*slot);
      continue;
    }
    RunOnSlot(*slot, std::move(batch), now, std::move(pending.failed_endpoints));
  }
  StopCollectingIfNoSlot(now);
  if (retry_timer_ != 0 && (retries_.empty() || retry_timer_at_ != retries_.front().ready_at)) {
    ex_.Cancel(retry_timer_);
    retry_timer_ = 0;
  }
  // A retry that is due but found no slot is picked up when one frees.
  if (!retries_.empty() && retries_.front().ready_at > now) ArmRetryTimer();
}

void DispatchGroup::ExpireRetries(TimePoint now) {
  for (auto& pending : retries_) {
    auto expired = [&](const RequestPtr& r) {
      if (r->completed()) return true;
      if (now + Micros(options_.deadline_guard_us) < r->total_deadline) return false;
      r->Complete(ErrorOutcome(DeadlineExceeded("deadline passed while waiting for a retry (" +
                                                AttemptsText(r->attempts) + ")"),
                               pending.last_detail));
      return true;
    };
    size_t before = pending.batch.size();
    pending.batch.erase(std::remove_if(pending.batch.begin(), pending.batch.end(), expired),
                        pending.batch.end());
    retry_requests_.fetch_sub(before - pending.batch.size(), std::memory_order_relaxed);
  }
  retries_.erase(std::remove_if(retries_.begin(), retries_.end(),
                                [](const PendingRetry& p) { return p.batch.empty(); }),
                 retries_.end());
}

}  // namespace sluice
