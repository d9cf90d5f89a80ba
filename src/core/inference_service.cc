#include "core/inference_service.h"

#include <algorithm>

#include "core/tokens.h"

namespace sluice {

Result<std::unique_ptr<InferenceService>> InferenceService::Create(const Options& options) {
  if (options.tiers.empty()) return InvalidArgument("no tiers configured");
  if (options.models.empty()) return InvalidArgument("no models configured");
  for (const Model& m : options.models) {
    if (m.queue == nullptr) return InvalidArgument("model '" + m.name + "' has no queue");
    if (m.default_max_tokens < 1 || m.default_max_tokens > m.max_tokens_limit) {
      return InvalidArgument("model '" + m.name + "': default_max_tokens out of range");
    }
    if (m.queue_charges && (m.cache != nullptr || m.collapser != nullptr)) {
      return InvalidArgument("model '" + m.name +
                             "': a queue that charges cannot charge what a cache or a collapser "
                             "answers without it");
    }
  }
  Options o = options;
  if (o.clock == nullptr) o.clock = SystemClock();
  return std::unique_ptr<InferenceService>(new InferenceService(o));
}

int InferenceService::FindModel(std::string_view name) const {
  for (size_t i = 0; i < options_.models.size(); ++i) {
    if (options_.models[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int64_t InferenceService::TokenCost(size_t model, std::string_view input, int max_tokens) const {
  int64_t out = max_tokens > 0 ? max_tokens : options_.models[model].default_max_tokens;
  return EstimateInputTokens(input) + out;
}

RateLimitDecision InferenceService::ChargeRateLimit(const Principal& principal, int64_t tokens,
                                                    int model, bool async) {
  const RateLimitPolicy& policy = principal.rate_limit;
  if (options_.limiter == nullptr || QueueCharges(model, async) ||
      (policy.requests_per_minute == 0 && policy.tokens_per_minute == 0)) {
    return RateLimitDecision{};
  }
  Result<RateLimitDecision> d = options_.limiter->Check(principal.key_id, policy, tokens);
  if (!d.ok()) return RateLimitDecision{};  // fail open: limits protect, never break serving
  return std::move(d).value();
}

const char* InferenceService::UnavailableReason(const AdmissionDecision& admission) const {
  // BeginShutdown() is one-way, so a refusal because of it is seen here.
  if (shutting_down()) return "shutting_down";
  return admission.admitted ? "queue_full" : AdmissionRejectName(admission.reason);
}

void InferenceService::RefundTokens(const Principal& principal, int64_t charged, int model,
                                    bool async) {
  if (options_.limiter == nullptr || charged <= 0 || principal.rate_limit.tokens_per_minute <= 0 ||
      QueueCharges(model, async)) {
    return;
  }
  options_.limiter->Reconcile(principal.key_id, principal.rate_limit, charged, 0);
}

void InferenceService::Finish(const InferenceRequest& req, const InferenceOutcome& outcome,
                              double latency_ms) {
  if (options_.limiter != nullptr && req.charged_tokens > 0 &&
      req.principal.rate_limit.tokens_per_minute > 0 &&
      !QueueCharges(static_cast<int>(req.model_index), req.async)) {
    int64_t used = outcome.status.ok() ? outcome.tokens_used : 0;
    options_.limiter->Reconcile(req.principal.key_id, req.principal.rate_limit, req.charged_tokens,
                                used);
  }
  if (options_.log) options_.log->OnFinished(req, outcome, latency_ms);
  // One store per answer: not again for each request that shared it.
  if (outcome.status.ok() && !outcome.cached && !outcome.collapsed && !req.cache_key.empty()) {
    if (ResultCache* cache = options_.models[req.model_index].cache) {
      cache->Store(req.cache_key,
                   CachedAnswer{outcome.output, outcome.tokens_used, outcome.model_version});
    }
  }
}

Status InferenceService::Submit(const RequestPtr& req, int64_t client_timeout_us,
                                AdmissionDecision* admission) {
  if (shutting_down()) return Unavailable("the gateway is shutting down");
  const Model& m = options_.models[req->model_index];
  if (req->params.max_tokens == 0) req->params.max_tokens = m.default_max_tokens;
  if (req->params.max_tokens < 1 || req->params.max_tokens > m.max_tokens_limit) {
    return InvalidArgument("parameters.max_tokens: must be between 1 and " +
                           std::to_string(m.max_tokens_limit) + " for model '" + m.name + "'");
  }
  const bool shareable = m.deterministic || req->params.temperature == 0.0;
  if (shareable && (m.cache != nullptr || m.collapser != nullptr)) {
    req->cache_key = ResultCacheKey(m.name, m.version, req->input, req->params);
  }
  // Before Push, joining or completing: afterwards other threads may hold it.
  auto admit = [&] {
    req->admitted = true;
    if (options_.log) options_.log->OnAdmitted(req);
  };
  if (m.cache != nullptr && !req->cache_key.empty()) {
    if (std::optional<CachedAnswer> hit = m.cache->Lookup(req->cache_key)) {
      req->arrival = options_.clock->Now();
      admit();
      InferenceOutcome outcome;
      outcome.output = std::move(hit->output);
      outcome.tokens_used = hit->tokens_used;
      outcome.model_version = std::move(hit->model_version);
      outcome.cached = true;
      req->Complete(std::move(outcome));
      return Status::Ok();
    }
  }
  const TierPolicy& tier = options_.tiers[req->principal.tier];
  const int64_t sync_budget = std::min(tier.latency_budget_us, tier.max_queue_age_us);
  const int64_t tier_budget = req->async ? tier.async_budget_us : sync_budget;
  int64_t budget = tier_budget;
  int64_t total =
      req->async ? tier.async_budget_us + std::max<int64_t>(0, tier.total_timeout_us - sync_budget)
                 : tier.total_timeout_us;
  if (client_timeout_us > 0) {
    if (m.admission != nullptr) {
      // A deadline no batch can meet is refused now, not queued to expire.
      const double shortest_us = m.admission->cost_model().BatchMicros(1);
      if (static_cast<double>(client_timeout_us) < shortest_us) {
        return InvalidArgument("X-Request-Timeout-Ms: " + std::to_string(client_timeout_us / 1000) +
                               " ms is shorter than the fastest batch of model '" + m.name + "' (" +
                               std::to_string(static_cast<int64_t>(shortest_us / 1000)) + " ms)");
      }
    }
    budget = std::min(budget, client_timeout_us);
    total = std::min(total, client_timeout_us);
  }
  req->arrival = options_.clock->Now();
  req->priority_deadline = req->arrival + Micros(tier_budget);
  req->dispatch_deadline = req->arrival + Micros(budget);
  req->total_deadline = req->arrival + Micros(total);
  RequestCollapser* collapser = req->cache_key.empty() ? nullptr : m.collapser;
  // Joining adds nothing to the queue or the accelerator's work: admission
  // has nothing to weigh.
  if (collapser != nullptr && collapser->TryJoin(req, admit)) return Status::Ok();
  if (m.admission != nullptr) {
    const TierIndex tier_index = req->principal.tier;
    // Async work overtakes nobody: it is no tier's demand.
    if (!req->async) m.admission->OnArrival(tier_index);
    AdmissionQuery q;
    q.tier = tier_index;
    // The async backlog waits behind every synchronous request: it makes
    // no queue too deep (what is ahead of a request still counts below).
    const size_t depth = m.queue->Depth();
    q.queue_depth = depth - std::min(depth, m.queue->AsyncDepth());
    q.queued_ahead = m.queue->QueuedAhead(tier_index, req->priority_deadline);
    q.time_to_deadline = req->dispatch_deadline - req->arrival;
    q.time_to_total_deadline = req->total_deadline - req->arrival;
    AdmissionDecision d = m.admission->Admit(q);
    if (!d.admitted) {
      if (admission) *admission = d;
      return d.ToStatus();
    }
  }
  admit();
  return collapser != nullptr ? collapser->Start(req) : m.queue->Push(req);
}

void InferenceService::Withdraw(const RequestPtr& req) {
  req->Cancel();
  const Model& m = options_.models[req->model_index];
  if (m.collapser != nullptr && !req->cache_key.empty() && m.collapser->Leave(req)) return;
  m.queue->Withdraw(req);
}

size_t InferenceService::QueueDepth(uint32_t model_index) const {
  return options_.models[model_index].queue->Depth();
}

size_t InferenceService::TotalQueueDepth() const {
  size_t total = 0;
  for (const Model& m : options_.models) total += m.queue->Depth();
  return total;
}

}  // namespace sluice
