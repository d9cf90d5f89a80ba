// InferenceService: admits authenticated, parsed requests into their model's
// queue. The front door's only entry into the domain.
//
// Submit() resolves the deadlines from the caller's tier (a client timeout
// may shorten them, never lengthen), applies model limits to the
// parameters, records the request in the log, and pushes it. On OK the
// request will be completed exactly once through its on_complete callback;
// on error nothing was queued and the caller answers with the status.
// Thread-safe; never blocks beyond the queue's short lock.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "core/request_collapser.h"
#include "core/request_log.h"
#include "core/request_queue.h"
#include "core/result_cache.h"
#include "core/tier.h"
#include "limits/admission_controller.h"
#include "limits/rate_limiter.h"

namespace sluice {

class InferenceService {
 public:
  struct Model {
    std::string name;                          // as clients send it
    std::string version;                       // reported as model_version
    int max_tokens_limit = 4096;               // largest parameters.max_tokens accepted
    int default_max_tokens = 16;               // when the client sends none
    FrontDoorQueue* queue = nullptr;           // required; not owned
    AdmissionController* admission = nullptr;  // optional; not owned
    // Answers kept for repeats; optional (none: nothing cached); not owned.
    ResultCache* cache = nullptr;
    // An answer may be shared (cache, collapser) when the model's outputs
    // are deterministic, or when the request asks for temperature 0.
    bool deterministic = false;
    // Joins identical requests waiting at the same time into one queue
    // place and batch item; optional (none: each request queues); not owned.
    RequestCollapser* collapser = nullptr;
    // The queue checks and charges each synchronous request's rate limit
    // itself, and settles its tokens (a gateway's Redis queue: the enqueue
    // script): ChargeRateLimit(), RefundTokens() and Finish() then leave
    // those to it. Only for a model that neither caches nor collapses (their
    // answers skip the queue). Async requests are charged by
    // Options::limiter all the same: a gateway may hold them back before
    // its queue (core/async_backlog.h), and a key over its limit is told at
    // submission.
    bool queue_charges = false;
  };
  struct Options {
    std::vector<TierPolicy> tiers;   // index = TierIndex
    std::vector<Model> models;       // index = model_index
    RequestLog* log = nullptr;       // optional; not owned
    RateLimiter* limiter = nullptr;  // optional (no limits); not owned
    const Clock* clock = nullptr;    // default: SystemClock()
  };

  static Result<std::unique_ptr<InferenceService>> Create(const Options& options);

  // Index of the model called `name`, or -1.
  int FindModel(std::string_view name) const;
  const Model& model(size_t index) const { return options_.models[index]; }
  size_t model_count() const { return options_.models.size(); }
  const std::vector<TierPolicy>& tiers() const { return options_.tiers; }
  const Clock& clock() const { return *options_.clock; }

  // Tokens a request is charged at admission: the input's estimated tokens
  // plus max_tokens (0 = the model's default).
  int64_t TokenCost(size_t model, std::string_view input, int max_tokens) const;

  // Charges one request and `tokens` tokens to the principal's key (both or
  // neither) for model `model` (-1: none found), asynchronous or not.
  // Allowed without a charge when the model's queue charges it
  // (Model::queue_charges), or no limiter or no limit is configured; fails
  // open if the limiter errs.
  RateLimitDecision ChargeRateLimit(const Principal& principal, int64_t tokens, int model,
                                    bool async);
  // Gives back the `charged` tokens of such a request that ran nothing (a
  // replay of an earlier answer, a refusal). Thread-safe.
  void RefundTokens(const Principal& principal, int64_t charged, int model, bool async);

  // Admits a request that passed its rate limit: capacity-aware admission
  // (when the model has a controller), then the queue. A request its
  // model's result cache can answer is completed here, before Submit()
  // returns OK, with outcome.cached set: it takes no queue place, no
  // admission and no accelerator time (the request log records it
  // admitted and finished as any other). One identical to a request that
  // waits in the model's collapser joins it, also without queue place or
  // admission; a collapser carries the rest to the queue (its answer then
  // has outcome.collapsed set for all but the request it ran for).
  // REQUIRES: req->principal, model_index, model, input set; params.max_tokens
  // 0 means "use the model default". client_timeout_us: 0 = none.
  // Errors: kInvalidArgument (parameters over model limits), kUnavailable
  // (shed by admission — then *admission says why and when to retry —,
  // queue full, shutting down).
  Status Submit(const RequestPtr& req, int64_t client_timeout_us,
                AdmissionDecision* admission = nullptr);

  // The machine-readable reason of a kUnavailable status Submit() returned,
  // given the `admission` the same call filled: "shutting_down" once
  // BeginShutdown() was called, the admission controller's reason when it
  // refused ("queue_depth_threshold", ...), else "queue_full". For the JSON
  // error's "reason" and the shed metric's label. Thread-safe.
  const char* UnavailableReason(const AdmissionDecision& admission) const;

  // Bookkeeping once a request's answer is known: reconciles the tokens
  // charged to its key with those used (unless its queue does) (failures use none; a cached answer
  // uses what the answer it repeats used), records it in the request log
  // (which keeps outcome.detail, the internal side of a failure, next to
  // the client's message), and keeps a successful answer in the model's
  // result cache when the request may be cached. Thread-safe; never blocks
  // beyond the cache's own bounds.
  void Finish(const InferenceRequest& req, const InferenceOutcome& outcome, double latency_ms);

  // From now on Submit() answers kUnavailable ("shutting down"; reason
  // "shutting_down", see UnavailableReason()).
  void BeginShutdown() { shutting_down_.store(true, std::memory_order_release); }
  bool shutting_down() const { return shutting_down_.load(std::memory_order_acquire); }

  // The client of `req` (submitted here) went away: marks it cancelled and
  // lets its model's collapser or queue drop it (RequestCollapser::Leave,
  // RequestQueue::Withdraw). Thread-safe.
  void Withdraw(const RequestPtr& req);

  // Sum of all model queues' depths.
  size_t TotalQueueDepth() const;
  // Requests queued for model `model_index` now. REQUIRES: a valid index.
  size_t QueueDepth(uint32_t model_index) const;

 private:
  explicit InferenceService(const Options& options) : options_(options) {}
  // Whether model `model`'s queue charges such a request (Model::queue_charges).
  bool QueueCharges(int model, bool async) const {
    return model >= 0 && options_.models[model].queue_charges && !async;
  }

  const Options options_;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace sluice
