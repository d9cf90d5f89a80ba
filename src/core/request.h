// InferenceRequest: one client request on its way through Sluice.
//
// Created by the front door once the request is authenticated and parsed;
// shared (std::shared_ptr) by the waiting session, the queue and the
// dispatcher. Immutable after admission except for the timing fields the
// dispatcher stamps and the one-shot completion. Complete() is thread-safe and
// exactly-once: the first call wins, later calls return false and do nothing,
// so a late accelerator reply after a 504 can never produce a second answer.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "limits/rate_limiter.h"
#include "tracing/trace_context.h"

namespace sluice {

// Index into the configured tier table (see TierPolicy).
using TierIndex = uint8_t;

// Who sent the request: resolved from the API key by the authenticator.
struct Principal {
  std::string key_id;          // stable, non-secret id of the key (from config)
  TierIndex tier = 0;          // index into the tier table
  std::string tier_name;       // "free", "paid", "enterprise", ...
  RateLimitPolicy rate_limit;  // the tier's limits, or the key's overrides
};

// The request's "parameters" object, validated.
struct InferenceParams {
  int max_tokens = 16;                // output token cap, 1..limit
  std::optional<double> temperature;  // 0..2 when present
  // The object as sent, its members in key order (one text per object, for
  // the result cache's key), when it holds parameters besides the typed
  // ones (forwarded to backends); empty otherwise.
  std::string json;
};

// What the client gets back: a result or an error.
//
// status.message() is sent to the client, so it speaks of the request only
// ("model 'm' failed after 3 attempts"): never a backend's name, URL or
// address, nor a backend's own error text. Per-item errors of a protocol are
// the model's answer for that item and stay in status (valid UTF-8, bounded).
// What operators need to find the cause goes to `detail`.
struct InferenceOutcome {
  Status status;               // OK or the error to report (client-safe)
  std::string output;          // model output when OK
  uint32_t tokens_used = 0;    // input + output tokens when OK
  uint32_t prompt_tokens = 0;  // of those, the input's when the backend said (ItemResult)
  std::string model_version;   // from the backend when OK
  uint64_t batch_id = 0;       // 0 when never batched
  uint32_t batch_size = 0;
  int64_t retry_after_s = 0;     // for 429/503: when to come back (0 = default)
  const char* reason = nullptr;  // machine-readable detail of an error, e.g. "backends_unavailable"
  // Internal: which backend failed and what it said (valid UTF-8, bounded),
  // for logs, the dead-letter queue and the request log's error column;
  // never sent to the client. Empty when status.message() says it all.
  std::string detail;
  SteadyClock::duration queue_wait{};        // arrival -> dispatch, when batched
  SteadyClock::duration accelerator_time{};  // dispatch -> batch result, when batched
  bool cached = false;  // answered from the model's result cache, not the accelerator
  // Answered with the batch item of an identical request that waited at the
  // same time (core/request_collapser.h), not one of its own.
  bool collapsed = false;
};

class InferenceRequest {
 public:
  using CompletionFn = std::function<void(InferenceOutcome&&)>;

  std::string id;  // "req_" + 32 hex digits (see common/ids.h): unique across processes
  Principal principal;
  uint32_t model_index = 0;  // index into the configured model table
  std::string model;         // model name as requested
  std::string input;
  InferenceParams params;
  TimePoint arrival;            // when the front door admitted it
  TimePoint dispatch_deadline;  // must reach the accelerator before this, else 504
  // Queue order: arrival + the tier's budget. A client's shorter deadline
  // moves dispatch_deadline only, never this, so no header buys priority.
  // Unset (epoch): dispatch_deadline is the order.
  TimePoint priority_deadline;
  TimePoint total_deadline;      // must be answered before this, else 504
  uint64_t seq = 0;              // FIFO tie-break, assigned by the queue
  int64_t charged_tokens = 0;    // tokens charged to the key's limit at admission
  RateLimitDecision rate_limit;  // the key's limit state at admission (for headers)
  TimePoint dispatched_at;       // stamped by the dispatcher (its strand only)
  int attempts = 0;              // batches it was sent in (the dispatcher's strand only)
  bool admitted = false;         // set by the service before the request enters the queue
  // Its result cache key (ResultCacheKey()) when its answer may be shared
  // and its model caches or collapses; empty otherwise. Set by
  // InferenceService::Submit().
  std::string cache_key;
  // Submitted asynchronously (its answer is read later): scheduled with its
  // tier's async budget, behind the synchronous requests.
  bool async = false;
  // Receives the output in pieces as a streaming backend produces them
  // (backends/http/chat_backend.h), in order and before the completion,
  // which still carries the whole output. Set before Submit(); runs on the
  // backend's thread and must not block. Null: nobody listens (batch
  // backends never call it; in scale-out a worker's backend cannot reach it).
  std::function<void(std::string_view piece)> on_piece;
  // Its span at the gateway (tracing/): what its batches' spans link to,
  // and whether its trace is sampled. Invalid when tracing is off. Set
  // before Submit() (a worker: from the queue entry).
  tracing::SpanContext trace;
  // The traceparent of the batch span it is in, for HTTP backends to send;
  // "" when tracing is off. Stamped by the dispatcher with dispatched_at;
  // a backend reads it in RunBatch() only (a retry restamps it).
  std::string batch_traceparent;

  // Where it stands in an earliest-deadline-first queue: priority_deadline,
  // or dispatch_deadline when that is unset.
  TimePoint queue_order() const {
    return priority_deadline == TimePoint{} ? dispatch_deadline : priority_deadline;
  }

  // `on_complete` runs once, on the completing thread; it must not block.
  void set_on_complete(CompletionFn fn) { on_complete_ = std::move(fn); }

  // Delivers the outcome iff nothing was delivered before. Thread-safe.
  bool Complete(InferenceOutcome&& outcome) {
    if (done_.exchange(true, std::memory_order_acq_rel)) return false;
    if (on_complete_) on_complete_(std::move(outcome));
    on_complete_ = nullptr;  // drop captures (the session) promptly
    return true;
  }
  bool completed() const { return done_.load(std::memory_order_acquire); }

  // Set by the dispatcher when the request leaves for the accelerator;
  // readable from any thread (for /internal/requests/{id}).
  void MarkDispatched() { dispatched_.store(true, std::memory_order_release); }
  bool dispatched() const { return dispatched_.load(std::memory_order_acquire); }

  // Set by a streaming backend as it hands on_piece the first piece: the
  // answer has begun to reach the client. From then on the request is never
  // retried (its client would get the text twice), and neither its
  // deadlines nor the accelerator timeout cut it short: the backend's wait
  // for each piece bounds it. Readable from any thread.
  void MarkStreaming() { streaming_.store(true, std::memory_order_release); }
  bool streaming() const { return streaming_.load(std::memory_order_acquire); }

  // Marks the request as abandoned by its client (connection closed); the
  // dispatcher drops it instead of sending it to the accelerator (a
  // streaming backend abandons its call at the next piece).
  void Cancel() { cancelled_.store(true, std::memory_order_release); }
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> done_{false};
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> dispatched_{false};
  std::atomic<bool> streaming_{false};
  CompletionFn on_complete_;
};

using RequestPtr = std::shared_ptr<InferenceRequest>;

}  // namespace sluice
