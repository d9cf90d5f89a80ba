#include "app/claim_loop.h"

#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include "common/thread_name.h"
#include "redis/keys.h"

namespace sluice {

ClaimLoop::ClaimLoop(const Options& options) : options_(options) {}

ClaimLoop::~ClaimLoop() {
  Stop();
  Join();
}

void ClaimLoop::Start() {
  thread_ = std::thread([this] {
    SetCurrentThreadName("claim-loop");
    Run();
  });
}

void ClaimLoop::Stop() {
  stopping_.store(true, std::memory_order_release);
  std::lock_guard lock(state_->mu);
  state_->cv.notify_all();
}

void ClaimLoop::Join() {
  if (thread_.joinable()) thread_.join();
}

ClaimLoop::Stats ClaimLoop::stats() const {
  Stats s;
  s.batches = batches_.load();
  s.requests = requests_.load();
  s.expired = expired_.load();
  s.claim_errors = claim_errors_.load();
  s.fill_waits = fill_waits_.load();
  s.complete_calls = state_->complete_calls.load();
  s.complete_errors = state_->complete_errors.load();
  s.complete_retries = state_->complete_retries.load();
  s.answers_expired_unsent = state_->answers_expired_unsent.load();
  s.renew_calls = state_->renew_calls.load();
  s.renew_errors = state_->renew_errors.load();
  return s;
}

bool ClaimLoop::WaitForRoom() {
  std::unique_lock lock(state_->mu);
  // Re-checked at least every 100 ms: batch_room() changes on the group's
  // strand without telling us (a breaker closing or turning half-open).
  for (;;) {
    if (stopping_.load(std::memory_order_acquire)) return false;
    // No room while every endpoint is open and none probes yet: the queue
    // stays in Redis for healthy workers.
    const size_t room = options_.group->batch_room();
    const size_t in_flight = state_->batches_in_flight.load();
    claiming_ahead_ = false;
    if (in_flight < room) return true;
    SteadyClock::duration wait = std::chrono::milliseconds(100);
    if (room > 0 && in_flight == room) {
      if (options_.group->handed_waiting() > 0) {
        // A batch on its way to a slot (one just freed): look again once it
        // runs, in time to claim the next one ahead of it.
        wait = std::chrono::milliseconds(5);
      } else {
        const std::optional<SteadyClock::duration> ahead = TimeToClaimAhead();
        if (ahead && *ahead <= SteadyClock::duration::zero()) {
          claiming_ahead_ = true;
          return true;
        }
        if (ahead) wait = std::min(wait, *ahead);
      }
    }
    lock.unlock();
    RenewLeasesIfDue();  // the batches in flight may run for a long time
    RetryFailedCompletes();
    lock.lock();
    // A batch answered meanwhile (under mu) is not missed.
    state_->cv.wait_for(lock, wait, [&] {
      return stopping_.load(std::memory_order_acquire) ||
             state_->batches_in_flight.load() < in_flight;
    });
  }
}

void ClaimLoop::RenewLeasesIfDue() {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_renewal_) return;
  next_renewal_ = now + std::chrono::milliseconds(options_.renew_interval_ms);
  std::vector<redis::RedisBatchClaimer::Lease> leases;
  {
    std::lock_guard lock(state_->mu);
    for (const auto& [id, held] : state_->held) leases.push_back({id, held.shard});
  }
  if (leases.empty()) return;
  state_->renew_calls.fetch_add(1, std::memory_order_relaxed);
  options_.claimer->RenewAsync(leases, [state = state_](Result<int64_t> renewed) {
    // A failed renewal is retried at the next interval; past the lease the
    // reaper re-queues, and the complete script keeps one answer per id.
    if (!renewed.ok()) state->renew_errors.fetch_add(1, std::memory_order_relaxed);
  });
}

void ClaimLoop::Run() {
  redis::RedisBatchClaimer::ClaimOptions claim;
  claim.max_batch = options_.max_batch_size;
  claim.max_batch_delay_us = options_.max_batch_delay_us;
  int64_t errors_in_a_row = 0;
  std::optional<Filling> filling;  // the last claim found a batch filling
  while (WaitForRoom()) {
    RenewLeasesIfDue();
    RetryFailedCompletes();
    // The batch the load needs (DispatchGroup: adaptive or static); after a
    // look at a filling batch, the one the collector would wait for at the
    // depth seen then (a full one when it is due within the delay anyway).
    // Never more than a full one.
    const TimePoint now = SystemClock()->Now();
    const size_t want =
        filling ? options_.group->BatchToWaitFor(now, filling->depth, filling->until - now)
                : options_.group->TargetBatchSize(now);
    claim.min_batch = std::clamp<size_t>(want, 1, options_.max_batch_size);
    // Asynchronous fill sized so that the slots finish in turn (as a
    // process's own dispatcher sizes it).
    claim.async_fill_to = options_.group->AsyncFillSize(now);
    const TimePoint claim_start = SystemClock()->Now();
    Result<redis::RedisBatchClaimer::Batch> batch = options_.claimer->TryClaim(claim);
    if (batch.ok()) {
      // The claim's round trip, smoothed (ClaimLead()).
      const SteadyClock::duration took = SystemClock()->Now() - claim_start;
      const double us = static_cast<double>(ToMicros(took));
      claim_us_ = claim_us_ == 0 ? us : 0.8 * claim_us_ + 0.2 * us;
      if (options_.tracer != nullptr && !batch->requests.empty()) TraceClaim(*batch, took);
    }
    if (batch.ok() && batch->empty() && batch->depth > 0 && batch->wait_us > 0) {
      fill_waits_.fetch_add(1, std::memory_order_relaxed);
      const TimePoint at = SystemClock()->Now();
      const size_t depth = batch->depth;
      const SteadyClock::duration left = Micros(batch->wait_us);
      std::optional<SteadyClock::duration> last_nap;
      if (filling && depth <= filling->depth) last_nap = filling->nap;  // nothing came
      const SteadyClock::duration nap = FillNap(
          left,
          options_.group->TimeToQueue(at, claim.min_batch > depth ? claim.min_batch - depth : 0),
          Micros(options_.max_batch_delay_us), last_nap);
      filling = Filling{depth, at + left, nap};
      WaitWhileFilling(nap);
      continue;
    }
    filling.reset();
    if (batch.ok() && batch->empty() && claiming_ahead_) {
      // Nothing queued for the batch ahead: wait for the slot to free (its
      // answers wake the loop), leaving the wake list's tokens to workers
      // that can run a batch now.
      std::unique_lock lock(state_->mu);
      state_->cv.wait_for(lock, std::chrono::milliseconds(100), [this] {
        return stopping_.load(std::memory_order_acquire) ||
               state_->batches_in_flight.load() < options_.group->batch_room();
      });
      continue;
    }
    if (batch.ok() && batch->empty()) {
      // Nothing queued: block until an enqueue pushes a wake token (BLPOP
      // returns at once then; only its timeout has Redis's hz granularity).
      redis::ReplyResult woken = options_.wait_connection->Call(
          {"BLPOP", options_.wake_key, std::to_string(options_.claim_timeout_ms / 1000.0)});
      if (woken.ok() && !woken->is_error()) continue;
      if (!woken.ok() && woken.status().code() == ErrorCode::kUnavailable &&
          options_.claimer->options().queue_shards > 1) {
        // The home shard's master is down, the other shards answered: not
        // a failed claim; look at them again shortly.
        std::unique_lock lock(state_->mu);
        state_->cv.wait_for(lock,
                            std::chrono::milliseconds(
                                std::min(options_.error_backoff_ms, options_.claim_timeout_ms)),
                            [this] { return stopping_.load(std::memory_order_acquire); });
        continue;
      }
      batch = woken.ok() ? Status(Internal("BLPOP: " + woken->str)) : woken.status();
    }
    if (!batch.ok()) {
      claim_errors_.fetch_add(1, std::memory_order_relaxed);
      if (errors_in_a_row++ % 50 == 0) {
        spdlog::warn("claim failed: {} (retrying every {} ms)", batch.status().message(),
                     options_.error_backoff_ms);
      }
      std::unique_lock lock(state_->mu);
      state_->cv.wait_for(lock, std::chrono::milliseconds(options_.error_backoff_ms),
                          [this] { return stopping_.load(std::memory_order_acquire); });
      continue;
    }
    if (errors_in_a_row > 0) spdlog::info("claiming again after {} failure(s)", errors_in_a_row);
    errors_in_a_row = 0;
    Hand(*batch);
  }
  // Answers still waiting for a retry are left to the reaper.
  std::vector<redis::WireResult> left;
  {
    std::lock_guard lock(state_->mu);
    left.swap(state_->retry);
    state_->retry_closed = true;  // failures from now on go to the reaper
  }
  if (!left.empty()) {
    spdlog::warn("stopping with {} answer(s) not completed; their leases will be reaped",
                 left.size());
    state_->answers_in_flight.fetch_sub(left.size());
  }
  finished_.store(true, std::memory_order_release);
}

std::optional<SteadyClock::duration> ClaimLoop::TimeToClaimAhead() const {
  const TimePoint now = SystemClock()->Now();
  const std::optional<TimePoint> free_at = options_.group->NextFreeSlotAt(now);
  // No expected end in sight: a slot is free while a batch is on its way to
  // it, a retry waits out its backoff, or a batch is being answered. Look
  // again shortly (a batch that ends wakes the loop anyway).
  if (!free_at || *free_at == now) return std::chrono::milliseconds(5);
  // A slow or hung device: nothing ahead; the queue stays in Redis for
  // other workers until its batch ends.
  if (*free_at == TimePoint::max()) return std::nullopt;
  return *free_at - ClaimLead() - now;
}

SteadyClock::duration ClaimLoop::ClaimLead() const {
  return Micros(static_cast<int64_t>(std::clamp(2 * claim_us_, 200.0, 5'000.0)));
}

SteadyClock::duration FillNap(SteadyClock::duration left, SteadyClock::duration to_fill,
                              SteadyClock::duration delay,
                              std::optional<SteadyClock::duration> last_nap) {
  SteadyClock::duration nap = std::min(to_fill, delay / 4);
  if (last_nap) nap = std::max(nap, std::min(*last_nap, delay) * 2);
  return std::min(std::max<SteadyClock::duration>(nap, Micros(200)), left);
}

void ClaimLoop::WaitWhileFilling(SteadyClock::duration nap) {
  if (nap >= std::chrono::seconds(1)) {
    // A long wait (a long max_batch_delay_us, or no rate yet): block on the
    // wake list instead, so that the next enqueue brings a look at once.
    // Its timeout (Redis checks those every 1000/hz ms) is bounded by
    // claim_timeout_ms, well under the nap. A failure shows in the next claim.
    const auto timeout = std::min<int64_t>(ToMicros(nap) / 1000, options_.claim_timeout_ms);
    options_.wait_connection->Call(
        {"BLPOP", options_.wake_key, std::to_string(static_cast<double>(timeout) / 1000.0)});
    return;
  }
  std::unique_lock lock(state_->mu);
  state_->cv.wait_for(lock, nap, [this] { return stopping_.load(std::memory_order_acquire); });
}

void ClaimLoop::TraceClaim(const redis::RedisBatchClaimer::Batch& batch,
                           SteadyClock::duration took) const {
  tracing::Span span;
  for (const redis::WireRequest& w : batch.requests) {
    if (auto member = tracing::ParseTraceparent(w.traceparent)) {
      span.links.push_back(*member);
      span.context.sampled = span.context.sampled || member->sampled;
    }
  }
  if (!span.context.sampled) return;
  span.context = tracing::Tracer::Root(true);
  span.name = "sluice.redis.claim";
  span.kind = tracing::SpanKind::kClient;
  span.end_unix_nanos = tracing::NowUnixNanos();
  span.start_unix_nanos =
      span.end_unix_nanos - std::chrono::duration_cast<std::chrono::nanoseconds>(took).count();
  span.attributes = {{"db.system", std::string("redis")},
                     {"sluice.worker.id", options_.worker_id},
                     {"sluice.batch_size", static_cast<int64_t>(batch.requests.size())}};
  options_.tracer->End(std::move(span));
}

void ClaimLoop::Hand(redis::RedisBatchClaimer::Batch& batch) {
  const std::shared_ptr<State>& state = state_;
  if (!batch.expired.empty()) {
    std::vector<redis::WireResult> late;
    for (const redis::WireRequest& w : batch.expired) {
      redis::WireResult r;
      r.id = w.id;
      r.queue_tier = static_cast<int32_t>(w.tier);
      r.owner_gateway_id = w.gateway_id;
      r.lease = w.lease;
      r.first_attempt = w.attempts == 0;
      r.charged_key_id = w.key_id;  // none used: all refunded
      r.charged_tokens = w.charged_tokens;
      r.tokens_per_minute = w.tokens_per_minute;
      r.code = ErrorCode::kDeadlineExceeded;
      r.message = "request waited in the queue past its dispatch deadline";
      r.worker_id = options_.worker_id;
      late.push_back(std::move(r));
    }
    expired_.fetch_add(late.size(), std::memory_order_relaxed);
    const size_t n = late.size();
    state->answers_in_flight.fetch_add(n);
    state->complete_calls.fetch_add(1, std::memory_order_relaxed);
    options_.claimer->CompleteAsync(late, [state, n](auto result) {
      if (!result.ok()) state->complete_errors.fetch_add(1, std::memory_order_relaxed);
      state->answers_in_flight.fetch_sub(n);
    });
  }
  if (batch.requests.empty()) return;
  batches_.fetch_add(1, std::memory_order_relaxed);
  requests_.fetch_add(batch.requests.size(), std::memory_order_relaxed);
  state->batches_in_flight.fetch_add(1);
  auto remaining = std::make_shared<std::atomic<size_t>>(batch.requests.size());
  const redis::WallClockAnchor anchor = redis::WallClockAnchor::Now(*SystemClock());
  std::vector<RequestPtr> requests;
  requests.reserve(batch.requests.size());
  {
    std::lock_guard lock(state->mu);
    state->held[batch.lease.id] = HeldLease{batch.lease.shard, batch.requests.size()};
  }
  for (const redis::WireRequest& w : batch.requests) {
    RequestPtr req = redis::FromWireRequest(w, anchor);
    if (w.attempts > 0) {
      // Re-queued after its worker was lost: dispatched once already, so,
      // like an in-process retry, only its total deadline bounds it.
      req->dispatch_deadline = req->total_deadline;
      req->attempts = static_cast<int>(w.attempts);
    }
    req->set_on_complete([state, remaining, claimer = options_.claimer, strand = options_.strand,
                          worker = options_.worker_id, id = w.id, tier = w.tier,
                          owner = w.gateway_id, key = w.key_id, charged = w.charged_tokens,
                          tpm = w.tokens_per_minute, lease = w.lease, fresh = w.attempts == 0,
                          deadline = req->total_deadline](InferenceOutcome&& outcome) {
      redis::WireResult result = redis::ToWireResult(id, outcome, worker);
      result.lease = lease;
      result.first_attempt = fresh;
      result.queue_tier = static_cast<int32_t>(tier);
      result.owner_gateway_id = owner;
      result.charged_key_id = key;
      result.charged_tokens = charged;
      result.tokens_per_minute = tpm;
      result.total_deadline = deadline;
      bool first = false;
      {
        std::lock_guard lock(state->mu);
        first = state->outbox.empty();
        if (auto held = state->held.find(lease);
            held != state->held.end() && --held->second.unanswered == 0) {
          state->held.erase(held);
        }
        state->outbox.push_back(std::move(result));
        state->answers_in_flight.fetch_add(1);
        if (remaining->fetch_sub(1) == 1) {
          state->batches_in_flight.fetch_sub(1);
          state->cv.notify_all();
        }
      }
      // Answers given in one strand turn (a batch) leave in one call.
      if (first) strand->Post([state, claimer] { Flush(state, claimer); });
    });
    requests.push_back(std::move(req));
  }
  // Batched already (by the claim): the group runs it whole.
  options_.group->Submit(std::move(requests));
}

void ClaimLoop::Flush(const std::shared_ptr<State>& state, redis::RedisBatchClaimer* claimer) {
  std::vector<redis::WireResult> out;
  {
    std::lock_guard lock(state->mu);
    out.swap(state->outbox);
  }
  if (out.empty()) return;
  // One call per queue shard, so that a shard whose master is failing over
  // holds back only its own answers.
  const size_t shards = claimer->options().queue_shards;
  std::vector<std::vector<redis::WireResult>> by_shard(shards);
  for (redis::WireResult& r : out) {
    by_shard[redis::ShardOfRequest(r.id, shards)].push_back(std::move(r));
  }
  for (std::vector<redis::WireResult>& part : by_shard) {
    if (!part.empty()) CompleteOrKeep(state, claimer, std::move(part));
  }
}

void ClaimLoop::CompleteOrKeep(const std::shared_ptr<State>& state,
                               redis::RedisBatchClaimer* claimer,
                               std::vector<redis::WireResult> out) {
  const size_t n = out.size();
  state->complete_calls.fetch_add(1, std::memory_order_relaxed);
  // A copy of those that may be sent again (CompleteAsync takes `out`).
  auto sent = std::make_shared<std::vector<redis::WireResult>>();
  for (const redis::WireResult& r : out) {
    if (r.total_deadline != TimePoint::max()) sent->push_back(r);
  }
  claimer->CompleteAsync(out, [state, n, sent](auto result) {
    size_t done = n;
    if (!result.ok()) {
      state->complete_errors.fetch_add(1, std::memory_order_relaxed);
      if (result.status().code() == ErrorCode::kUnavailable && !sent->empty()) {
        // Kept in flight: the claim thread sends them again, each until its
        // total deadline (not once it has ended).
        std::lock_guard lock(state->mu);
        if (!state->retry_closed) {
          done = n - sent->size();
          state->retry.insert(state->retry.end(), std::make_move_iterator(sent->begin()),
                              std::make_move_iterator(sent->end()));
        }
      }
      if (done > 0) {
        spdlog::warn("completing {} answer(s) failed: {}; their leases will be reaped", done,
                     result.status().message());
      }
    }
    state->answers_in_flight.fetch_sub(done);
  });
}

void ClaimLoop::RetryFailedCompletes() {
  const TimePoint now = SystemClock()->Now();
  size_t expired = 0;
  bool resend = false;
  {
    std::lock_guard lock(state_->mu);
    if (state_->retry.empty()) return;
    for (redis::WireResult& r : state_->retry) {
      if (r.total_deadline <= now) {
        ++expired;
      } else {
        state_->outbox.push_back(std::move(r));
        resend = true;
      }
    }
    state_->retry.clear();
  }
  if (expired > 0) {
    spdlog::warn(
        "{} answer(s) not completed before their requests' total deadline; their leases will be "
        "reaped",
        expired);
    state_->answers_expired_unsent.fetch_add(expired, std::memory_order_relaxed);
    state_->answers_in_flight.fetch_sub(expired);
  }
  if (!resend) return;
  state_->complete_retries.fetch_add(1, std::memory_order_relaxed);
  Flush(state_, options_.claimer);
}

}  // namespace sluice
