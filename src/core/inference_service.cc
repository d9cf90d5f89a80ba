#include "core/inference_service.h"

#include <algorithm>

namespace sluice {

Result<std::unique_ptr<InferenceService>> InferenceService::Create(const Options& options) {
  if (options.tiers.empty()) return InvalidArgument("no tiers configured");
  if (options.models.empty()) return InvalidArgument("no models configured");
  for (const Model& m : options.models) {
    if (m.queue == nullptr) return InvalidArgument("model '" + m.name + "' has no queue");
    if (m.default_max_tokens < 1 || m.default_max_tokens > m.max_tokens_limit) {
      return InvalidArgument("model '" + m.name + "': default_max_tokens out of range");
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

Status InferenceService::Submit(const RequestPtr& req, int64_t client_timeout_us) {
  if (shutting_down()) return Unavailable("the gateway is shutting down");
  const Model& m = options_.models[req->model_index];
  if (req->params.max_tokens == 0) req->params.max_tokens = m.default_max_tokens;
  if (req->params.max_tokens < 1 || req->params.max_tokens > m.max_tokens_limit) {
    return InvalidArgument("parameters.max_tokens: must be between 1 and " +
                           std::to_string(m.max_tokens_limit) + " for model '" + m.name + "'");
  }
  const TierPolicy& tier = options_.tiers[req->principal.tier];
  int64_t budget = std::min(tier.latency_budget_us, tier.max_queue_age_us);
  int64_t total = tier.total_timeout_us;
  if (client_timeout_us > 0) {
    budget = std::min(budget, client_timeout_us);
    total = std::min(total, client_timeout_us);
  }
  req->arrival = options_.clock->Now();
  req->dispatch_deadline = req->arrival + Micros(budget);
  req->total_deadline = req->arrival + Micros(total);
  if (options_.log) options_.log->OnAdmitted(req);
  return m.queue->Push(req);
}

size_t InferenceService::TotalQueueDepth() const {
  size_t total = 0;
  for (const Model& m : options_.models) total += m.queue->Depth();
  return total;
}

}  // namespace sluice
