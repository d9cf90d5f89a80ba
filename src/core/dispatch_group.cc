#include "core/dispatch_group.h"

#include <algorithm>
#include <cmath>

#include "common/utf8.h"

namespace sluice {

uint64_t NextBatchId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

InferenceOutcome ErrorOutcome(Status status, std::string detail) {
  InferenceOutcome o;
  o.status = std::move(status);
  o.detail = std::move(detail);
  return o;
}

std::string FailureDetail(const std::string& backend, const Status& error) {
  const std::string& m = error.message();
  // HTTP backends start their messages with their name; timeouts name it too.
  return SanitizeUtf8(m.find(backend) != std::string::npos ? m : backend + ": " + m,
                      kMaxFailureDetailBytes);
}

Result<std::unique_ptr<DispatchGroup>> DispatchGroup::Create(
    const Options& options, std::vector<std::unique_ptr<Backend>> slots) {
  if (options.executor == nullptr || options.router == nullptr) {
    return InvalidArgument("dispatch group needs an executor and a router");
  }
  if (options.max_batch_size == 0 || options.max_batch_size > 4096) {
    return InvalidArgument("max_batch_size must be in 1..4096");
  }
  if (options.max_batch_delay_us < 0) return InvalidArgument("max_batch_delay_us must be >= 0");
  if (options.async_fill_max_batch_size > options.max_batch_size) {
    return InvalidArgument("async_fill_max_batch_size must be at most max_batch_size");
  }
  if (!(options.batching_headroom >= 0)) return InvalidArgument("batching_headroom must be >= 0");
  if (options.rate_time_constant_ms < 1)
    return InvalidArgument("rate_time_constant_ms must be >= 1");
  if (options.cost_model != nullptr &&
      options.cost_model->max_batch_size() != options.max_batch_size) {
    return InvalidArgument("the cost model's max_batch_size must be the group's");
  }
  if (options.accelerator_timeout_us <= 0) {
    return InvalidArgument("accelerator_timeout_us must be > 0");
  }
  if (options.expiry_check_interval_us <= 0) {
    return InvalidArgument("expiry_check_interval_us must be > 0");
  }
  if (slots.empty()) return InvalidArgument("model '" + options.model + "' has no devices");
  for (auto& s : slots) {
    if (!s) return InvalidArgument("null backend slot");
  }
  if (Status st = options.retry.Validate(); !st.ok()) return st;
  if (Status st = CircuitBreaker::Validate(options.breaker); !st.ok()) return st;
  if (!options.slot_endpoints.empty()) {
    if (options.slot_endpoints.size() != slots.size()) {
      return InvalidArgument("slot_endpoints must name an endpoint for every slot");
    }
    size_t endpoints = 0;
    for (size_t e : options.slot_endpoints) endpoints = std::max(endpoints, e + 1);
    std::vector<bool> seen(endpoints, false);
    for (size_t e : options.slot_endpoints) seen[e] = true;
    if (std::find(seen.begin(), seen.end(), false) != seen.end()) {
      return InvalidArgument("slot_endpoints must use every endpoint index 0..E-1");
    }
    if (!options.endpoint_names.empty() && options.endpoint_names.size() != endpoints) {
      return InvalidArgument("endpoint_names must name every endpoint");
    }
  } else if (!options.endpoint_names.empty() && options.endpoint_names.size() != slots.size()) {
    return InvalidArgument("endpoint_names must name every endpoint");
  }
  return std::unique_ptr<DispatchGroup>(new DispatchGroup(options, std::move(slots)));
}

DispatchGroup::DispatchGroup(const Options& options, std::vector<std::unique_ptr<Backend>> slots)
    : options_(options),
      async_fill_max_(options.async_fill_max_batch_size != 0
                          ? options.async_fill_max_batch_size
                          : (options.max_batch_size * 3 + 3) / 4),
      ex_(*options.executor),
      queue_(options.queue),
      rng_(options.retry_seed != 0 ? options.retry_seed : std::random_device{}()),
      self_(std::make_shared<DispatchGroup*>(this)) {
  cost_model_ = options.cost_model;
  if (cost_model_ == nullptr) {
    BatchCostModel::Options c;
    c.max_batch_size = options.max_batch_size;
    c.clock = &ex_.clock();
    own_cost_model_ = std::move(BatchCostModel::Create(c)).value();
    cost_model_ = own_cost_model_.get();
  }
  slots_.resize(slots.size());
  slot_enabled_ = std::make_unique<std::atomic<bool>[]>(slots.size());
  slot_end_us_ = std::make_unique<std::atomic<int64_t>[]>(slots.size());
  slot_cost_us_ = std::make_unique<std::atomic<int64_t>[]>(slots.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    slots_[i].backend = std::move(slots[i]);
    slots_[i].endpoint = options.slot_endpoints.empty() ? i : options.slot_endpoints[i];
    slot_enabled_[i].store(true);
    size_t e = slots_[i].endpoint;
    while (endpoints_.size() <= e) endpoints_.push_back({"", {}, CircuitBreaker(options.breaker)});
    endpoints_[e].slots.push_back(i);
  }
  for (size_t e = 0; e < endpoints_.size(); ++e) {
    endpoints_[e].name = options.endpoint_names.empty()
                             ? slots_[endpoints_[e].slots.front()].backend->name()
                             : options.endpoint_names[e];
  }
  enabled_.store(slots_.size());
}

DispatchGroup::~DispatchGroup() {
  // Its wake-up only: a group never started registered none, and the queue
  // may be serving another (a reload's group that was not installed).
  if (queue_ != nullptr && started_) queue_->ClearNotify();
  self_.reset();
  CancelDelayTimer();
  if (sweep_timer_) ex_.Cancel(sweep_timer_);
  if (retry_timer_) ex_.Cancel(retry_timer_);
  for (auto& s : slots_) {
    if (s.timeout_timer) ex_.Cancel(s.timeout_timer);
  }
  for (auto& e : endpoints_) {
    if (e.probe_timer) ex_.Cancel(e.probe_timer);
  }
}

void DispatchGroup::Start() {
  ex_.Post(Guarded([](DispatchGroup* g) {
    if (g->started_) return;
    g->started_ = true;
    // A slot switched off before the start stays out of service.
    for (size_t i = 0; i < g->slots_.size(); ++i) {
      if (g->slots_[i].enabled) g->free_slots_.push_back(i);
    }
    g->TryCollect();
  }));
}

void DispatchGroup::TryCollect() {
  if (!started_) return;
  RunHanded(ex_.clock().Now());
  if (queue_ == nullptr || collecting_) return;
  if (!PickSlot(ex_.clock().Now(), {}, /*take=*/false)) return WatchWhileUnservable();
  collecting_ = true;
  Evaluate();
}

void DispatchGroup::CancelDelayTimer() {
  if (delay_timer_ != 0) ex_.Cancel(delay_timer_);
  delay_timer_ = 0;
}

void DispatchGroup::Dispatch(TimePoint now) {
  CancelDelayTimer();
  queue_->ClearNotify();
  collecting_ = false;
  std::optional<size_t> slot = PickSlot(now, {}, /*take=*/true);
  if (!slot) return;  // the last usable endpoint's breaker opened meanwhile
  std::vector<RequestPtr> batch, dropped;
  batch.reserve(options_.max_batch_size);
  queue_->PopBatch(BatchSizeFor(*slot, now), now, &batch, &dropped);
  CountDispatched(batch.size() + dropped.size(), now);
  AnswerDropped(dropped, now);
  if (!batch.empty()) {
    RunOnSlot(*slot, std::move(batch), now);
  } else {
    free_slots_.push_front(*slot);
  }
  TryCollect();
}

size_t DispatchGroup::BatchSizeFor(size_t slot, TimePoint now) const {
  const size_t max = options_.max_batch_size;
  const size_t depth = queue_->Depth();
  const size_t async = queue_->AsyncDepth();
  // Synchronous requests go first in the queue: the batch takes them all.
  const size_t sync = depth - std::min(depth, async);
  const size_t most = AsyncFillLimit(now, sync > 0);
  // A quarter of a batch at least, unless the limit is lower.
  const size_t least = std::max({sync, std::min(max / 4, most), size_t{1}});
  if (async == 0 || least >= max) return max;
  return StaggeredSize(least, most, slot, now);
}

size_t DispatchGroup::AsyncFillSize(TimePoint now) const {
  const size_t most = AsyncFillLimit(now, /*sync_queued=*/false);
  const size_t least = std::max<size_t>(std::min(options_.max_batch_size / 4, most), 1);
  if (busy_slots() < available_slots()) return StaggeredSize(least, most, slots_.size(), now);
  // Every slot busy: the batch runs on the one expected to free first, then.
  const auto [slot, end] = ExpectedEnd();
  return StaggeredSize(least, most, slot, slot == slots_.size() ? now : std::max(now, end));
}

size_t DispatchGroup::AsyncFillLimit(TimePoint now, bool sync_queued) const {
  const int64_t last_us = last_sync_us_.load(std::memory_order_relaxed);
  const bool flowing = sync_queued || (last_us != 0 && ToMicros(now.time_since_epoch()) - last_us <
                                                           ToMicros(kSyncFlowWindow));
  return flowing ? async_fill_max_ : options_.max_batch_size;
}

std::optional<TimePoint> DispatchGroup::NextFreeSlotAt(TimePoint now) const {
  if (busy_slots() < available_slots()) return now;
  const auto [slot, end] = ExpectedEnd();
  if (slot == slots_.size()) return std::nullopt;
  // Run for twice its expected time: a slow or hung device.
  if (end + Micros(slot_cost_us_[slot].load(std::memory_order_relaxed)) < now) {
    return TimePoint::max();
  }
  return end;
}

std::pair<size_t, TimePoint> DispatchGroup::ExpectedEnd() const {
  size_t soonest = slots_.size();
  int64_t soonest_us = INT64_MAX;
  for (size_t i = 0; i < slots_.size(); ++i) {
    const int64_t end_us = slot_end_us_[i].load(std::memory_order_relaxed);
    if (end_us != 0 && end_us < soonest_us) {
      soonest = i;
      soonest_us = end_us;
    }
  }
  if (soonest == slots_.size()) return {soonest, TimePoint()};
  return {soonest, TimePoint(Micros(soonest_us))};
}

size_t DispatchGroup::StaggeredSize(size_t least, size_t most, size_t except, TimePoint now) const {
  const size_t max = std::max(least, most);
  // The other busy slots' expected ends, and their next ones after a batch
  // of `max`: this batch should end as far from all of them as it can.
  const double full_us = cost_model_->BatchMicros(max);
  const int64_t now_us = ToMicros(now.time_since_epoch());
  std::vector<double> ends_us;  // from now
  for (size_t i = 0; i < slots_.size(); ++i) {
    const int64_t end_at_us = slot_end_us_[i].load(std::memory_order_relaxed);
    if (i == except || end_at_us == 0) continue;
    const double end_us = static_cast<double>(end_at_us - now_us);
    ends_us.push_back(end_us);
    ends_us.push_back(end_us + full_us);
  }
  if (ends_us.empty()) return max;
  auto spacing = [&](size_t size) {
    const double end_us = cost_model_->BatchMicros(size);
    double nearest = full_us;
    for (double e : ends_us) nearest = std::min(nearest, std::abs(end_us - e));
    return nearest;
  };
  // Largest first: a smaller batch must end strictly farther from the rest.
  size_t best = max;
  double best_spacing = spacing(max);
  for (size_t size = max; size-- > least;) {
    if (const double s = spacing(size); s > best_spacing) {
      best = size;
      best_spacing = s;
    }
  }
  return best;
}

void DispatchGroup::AnswerDropped(std::vector<RequestPtr>& dropped, TimePoint now) {
  for (auto& r : dropped) {
    if (r->cancelled()) {
      r->Complete(ErrorOutcome(
          Status(ErrorCode::kCancelled,
                 "client closed the connection; request dropped before the accelerator")));
    } else {
      double waited_ms = ToMillis(now - r->arrival);
      r->Complete(ErrorOutcome(DeadlineExceeded(
          "deadline passed after " + std::to_string(static_cast<int64_t>(waited_ms)) +
          " ms in queue; request not sent to the accelerator")));
    }
  }
}

void DispatchGroup::RunOnSlot(size_t slot_index, std::vector<RequestPtr> batch, TimePoint now,
                              std::vector<size_t> tried) {
  Slot& slot = slots_[slot_index];
  slot.tried_endpoints = std::move(tried);
  slot.tried_endpoints.push_back(slot.endpoint);
  slot.busy = true;
  slot.timed_out = false;
  endpoints_[slot.endpoint].breaker.OnDispatch();
  slot.batch_id = NextBatchId();
  slot.started = now;
  const auto cost_us = static_cast<int64_t>(cost_model_->BatchMicros(batch.size()));
  slot_cost_us_[slot_index].store(cost_us, std::memory_order_relaxed);
  // Never 0 (that means "no batch to stagger against").
  slot_end_us_[slot_index].store(std::max<int64_t>(1, ToMicros(now.time_since_epoch()) + cost_us),
                                 std::memory_order_relaxed);
  busy_.fetch_add(1, std::memory_order_relaxed);
  batches_.fetch_add(1, std::memory_order_relaxed);
  // Only the accelerator timeout fails a batch; a request's own deadline
  // is answered alone (ExpireInFlight).
  const TimePoint timeout_at = now + Micros(options_.accelerator_timeout_us);
  slot.earliest_total = TimePoint::max();
  bool sync = false;
  for (auto& r : batch) {
    sync = sync || !r->async;
    r->dispatched_at = now;
    ++r->attempts;
    r->MarkDispatched();
    slot.earliest_total = std::min(slot.earliest_total, r->total_deadline);
  }
  if (sync) {
    // Never 0 (that means "never").
    last_sync_us_.store(std::max<int64_t>(1, ToMicros(now.time_since_epoch())),
                        std::memory_order_relaxed);
  }
  EnsureSweep();
  uint64_t id = slot.batch_id;
  slot.timeout_timer =
      ex_.RunAt(timeout_at,
                Guarded([slot_index, id](DispatchGroup* g) { g->OnBatchTimeout(slot_index, id); }));
  slot.batch = std::move(batch);
  StartBatchSpan(slot);
  slot.backend->RunBatch(slot.batch, [ex = &ex_, weak = std::weak_ptr<DispatchGroup*>(self_),
                                      slot_index, id](BatchResult&& result) {
    // Runs on the backend's thread: hop onto the group's strand.
    auto shared = std::make_shared<BatchResult>(std::move(result));
    ex->Post([weak, slot_index, id, shared] {
      if (auto self = weak.lock()) (*self)->OnBatchDone(slot_index, id, std::move(*shared));
    });
  });
}

void DispatchGroup::OnBatchTimeout(size_t slot_index, uint64_t batch_id) {
  Slot& slot = slots_[slot_index];
  if (!slot.busy || slot.batch_id != batch_id || slot.timed_out) return;
  slot.timeout_timer = 0;
  // An answer streaming to its client runs to its end (InferenceRequest::
  // MarkStreaming): its backend bounds the wait for each piece.
  if (std::all_of(slot.batch.begin(), slot.batch.end(),
                  [](const RequestPtr& r) { return r->streaming(); })) {
    return;
  }
  slot.timed_out = true;  // stays busy until the backend answers: one batch per device
  slot_end_us_[slot_index].store(0, std::memory_order_relaxed);
  TimePoint now = ex_.clock().Now();
  RecordOutcome(slot_index, /*ok=*/false, now);
  const std::string waited =
      std::to_string(static_cast<int64_t>(ToMillis(now - slot.started))) + " ms";
  EndBatchSpan(slot, slot.batch, BackendError("no reply within " + waited));
  HandleFailedBatch(slot_index, std::move(slot.batch),
                    BackendError("no reply from " + slot.backend->name() + " within " + waited),
                    "no reply within " + waited, now);
  slot.batch.clear();
  DispatchRetries(now);
}

void DispatchGroup::OnBatchDone(size_t slot_index, uint64_t batch_id, BatchResult&& result) {
  Slot& slot = slots_[slot_index];
  if (!slot.busy || slot.batch_id != batch_id) return;
  if (slot.timeout_timer) ex_.Cancel(slot.timeout_timer);
  slot.timeout_timer = 0;
  // Before the answers go: a worker's claim loop, woken by them, must not
  // stagger its next batch against this one.
  slot_end_us_[slot_index].store(0, std::memory_order_relaxed);
  TimePoint now = ex_.clock().Now();
  std::vector<RequestPtr> batch = std::move(slot.batch);
  slot.batch.clear();
  bool wrong_length = result.status.ok() && result.items.size() != batch.size();
  bool ok = result.status.ok() && !wrong_length;
  if (ok && !slot.timed_out) cost_model_->Record(batch.size(), now - slot.started);
  if (options_.observer) {
    options_.observer->OnBatchDone(slot_index, batch.size(), now - slot.started, ok);
  }
  if (options_.log) {
    LogBatch(slot_index, slot.timed_out ? 0 : batch.size(), now,
             !result.status.ok() ? result.status
             : wrong_length      ? BackendError("wrong number of results")
             : slot.timed_out    ? BackendError("late reply after the accelerator timeout")
                                 : Status::Ok());
  }
  if (slot.timed_out) {
    // Its requests were already retried or answered; the slot is free again.
  } else if (!ok) {
    RecordOutcome(slot_index, false, now);
    Status error = !result.status.ok()
                       ? result.status
                       : BackendError(slot.backend->name() + " returned " +
                                      std::to_string(result.items.size()) +
                                      " results for a batch of " + std::to_string(batch.size()));
    EndBatchSpan(slot, batch, error);
    // What the client may read: the kind of failure, not the backend's words.
    const std::string summary =
        !result.status.ok() ? "the backend reported an error"
                            : "the backend returned " + std::to_string(result.items.size()) +
                                  " results for a batch of " + std::to_string(batch.size());
    HandleFailedBatch(slot_index, std::move(batch), error, summary, now);
  } else {
    RecordOutcome(slot_index, true, now);
    EndBatchSpan(slot, batch, Status::Ok());
    DeliverResults(slot_index, batch_id, batch, result, now);
  }
  slot.busy = false;
  slot.timed_out = false;
  busy_.fetch_sub(1, std::memory_order_relaxed);
  if (slot.enabled) free_slots_.push_back(slot_index);
  DispatchRetries(now);
  TryCollect();
}

void DispatchGroup::DeliverResults(size_t slot_index, uint64_t batch_id,
                                   std::vector<RequestPtr>& batch, BatchResult& result,
                                   TimePoint now) {
  Slot& slot = slots_[slot_index];
  std::vector<InferenceOutcome> outcomes(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    InferenceOutcome& o = outcomes[i];
    o.batch_id = batch_id;
    o.batch_size = static_cast<uint32_t>(batch.size());
    o.queue_wait = batch[i]->dispatched_at - batch[i]->arrival;
    o.accelerator_time = now - slot.started;
    ItemResult& item = result.items[i];
    // A per-item error is the model's answer: the client sees it (protocols
    // keep it valid UTF-8 and short); the log also learns who answered.
    if (!item.status.ok()) o.detail = "item failed on " + slot.backend->name();
    o.status = std::move(item.status);
    o.output = std::move(item.output);
    o.tokens_used = item.tokens_used;
    o.prompt_tokens = item.prompt_tokens;
    o.model_version = result.model_version;
  }
  options_.router->Deliver(batch, outcomes);
}

void DispatchGroup::LogBatch(size_t slot_index, size_t size, TimePoint now, const Status& error) {
  const Slot& slot = slots_[slot_index];
  BatchRecord b;
  b.batch_id = slot.batch_id;
  b.model = options_.model;
  b.worker_id = slot.backend->name();
  b.size = static_cast<uint32_t>(size);
  b.completed_at = std::chrono::system_clock::now();
  b.started_at = b.completed_at - std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                      now - slot.started);
  b.duration_ms = ToMillis(now - slot.started);
  b.ok = error.ok();
  b.error = SanitizeUtf8(error.message(), kMaxFailureDetailBytes);
  options_.log->OnBatchDone(b);
}

bool DispatchGroup::SetSlotEnabled(size_t slot_index, bool enabled) {
  if (slot_index >= slots_.size()) return false;
  // Visible to available_slots() at once; the strand catches up below.
  slot_enabled_[slot_index].store(enabled, std::memory_order_relaxed);
  ex_.Post(Guarded([slot_index, enabled](DispatchGroup* g) {
    Slot& slot = g->slots_[slot_index];
    if (slot.enabled == enabled) return;
    slot.enabled = enabled;
    g->enabled_.fetch_add(enabled ? 1 : static_cast<size_t>(-1), std::memory_order_relaxed);
    auto& free = g->free_slots_;
    if (!enabled) {
      free.erase(std::remove(free.begin(), free.end(), slot_index), free.end());
      if (!g->started_) return;  // Start() looks at what can serve
      g->StopCollectingIfNoSlot(g->ex_.clock().Now());
      g->RefuseUnservable(g->ex_.clock().Now());
    } else if (!slot.busy && g->started_) {
      free.push_back(slot_index);
      g->DispatchRetries(g->ex_.clock().Now());
      g->TryCollect();
    }
  }));
  return true;
}

void DispatchGroup::EnsureSweep() {
  if (sweep_timer_ != 0) return;
  TimePoint at = ex_.clock().Now() + Micros(options_.expiry_check_interval_us);
  sweep_timer_ = ex_.RunAt(at, Guarded([](DispatchGroup* g) {
                             g->sweep_timer_ = 0;
                             g->Sweep();
                           }));
}

void DispatchGroup::Sweep() {
  TimePoint now = ex_.clock().Now();
  std::vector<RequestPtr> expired;
  if (queue_ != nullptr) queue_->RemoveExpired(now, &expired);
  TakeHanded(now, &expired);
  AnswerDropped(expired, now);
  ExpireInFlight(now);
  ExpireRetries(now);
  RefuseUnservable(now);
  if (QueueDepth() > 0 || !handed_.empty() || busy_.load(std::memory_order_relaxed) > 0 ||
      !retries_.empty()) {
    EnsureSweep();
  }
}

void DispatchGroup::ExpireInFlight(TimePoint now) {
  for (Slot& slot : slots_) {
    if (!slot.busy || slot.timed_out || slot.earliest_total > now) continue;
    slot.earliest_total = TimePoint::max();
    for (const RequestPtr& r : slot.batch) {
      if (r->streaming()) continue;  // its deadline was for the first piece, which came
      if (r->total_deadline > now) {
        slot.earliest_total = std::min(slot.earliest_total, r->total_deadline);
      } else if (!r->completed()) {
        r->Cancel();  // a streaming backend need not go on
        r->Complete(ErrorOutcome(
            DeadlineExceeded("deadline passed after " +
                             std::to_string(static_cast<int64_t>(ToMillis(now - r->arrival))) +
                             " ms, while its batch was on the accelerator")));
      }
    }
  }
}

void DispatchGroup::AbortInFlight(Status status) {
  ex_.Post(Guarded([status](DispatchGroup* g) {
    for (auto& slot : g->slots_) {
      for (auto& r : slot.batch) r->Complete(ErrorOutcome(status));
    }
    for (auto& retry : g->retries_) {
      for (auto& r : retry.batch) r->Complete(ErrorOutcome(status));
    }
    g->retries_.clear();
    g->retry_requests_.store(0, std::memory_order_relaxed);
    for (auto& handed : g->handed_) {
      for (auto& r : handed) r->Complete(ErrorOutcome(status));
    }
    g->handed_.clear();
    g->handed_requests_.store(0, std::memory_order_relaxed);
  }));
}

}  // namespace sluice
