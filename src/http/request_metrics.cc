#include "http/request_metrics.h"

namespace sluice::http {

namespace {
constexpr const char* kShedReasons[] = {"queue_full", "queue_depth_threshold",
                                        "backends_unavailable", "deadline_unreachable",
                                        "shutting_down"};
constexpr size_t kShedReasonCount = sizeof(kShedReasons) / sizeof(kShedReasons[0]);
}  // namespace

RequestMetrics::RequestMetrics(metrics::Registry* registry, const std::vector<std::string>& models,
                               const std::vector<std::string>& tiers, const Clock* clock)
    : n_models_(models.size() + 1), n_tiers_(tiers.size() + 1), rate_(clock) {
  auto model_name = [&](size_t i) { return i == 0 ? std::string("unknown") : models[i - 1]; };
  auto tier_name = [&](size_t i) { return i == 0 ? std::string("none") : tiers[i - 1]; };
  // Latency buckets: 100 us .. ~52 s, doubling.
  const auto seconds = metrics::ExponentialBuckets(0.0001, 2, 20);
  const auto micro = metrics::ExponentialBuckets(0.000005, 2, 16);  // 5 us .. ~160 ms
  for (const char* credential : {"api_key", "service_token"}) {
    auth_failures_.push_back(registry->GetCounter(
        "sluice_auth_failures_total",
        "Requests refused (401) for a missing or unknown credential, by credential kind.",
        {{"credential", credential}}));
  }
  for (size_t t = 0; t < n_tiers_; ++t) {
    for (const char* limit : {"requests_per_minute", "tokens_per_minute"}) {
      rate_limited_.push_back(registry->GetCounter(
          "sluice_rate_limited_total", "Requests refused (429) by a per-key rate limit.",
          {{"tier", tier_name(t)}, {"limit", limit}}));
    }
  }
  for (size_t m = 0; m < n_models_; ++m) {
    for (size_t t = 0; t < n_tiers_; ++t) {
      for (int status : kStatuses) {
        counts_.push_back(registry->GetCounter(
            "sluice_requests_total", "Inference requests answered, by model, tier and HTTP status.",
            {{"model", model_name(m)},
             {"tier", tier_name(t)},
             {"status", status == 0 ? "other" : std::to_string(status)}}));
      }
      duration_.push_back(registry->GetHistogram(
          "sluice_request_duration_seconds",
          "End-to-end latency of inference requests, from the full request read to the answer.",
          {{"model", model_name(m)}, {"tier", tier_name(t)}}, seconds));
    }
    for (size_t t = 0; t < n_tiers_; ++t) {
      for (const char* reason : kShedReasons) {
        shed_.push_back(registry->GetCounter(
            "sluice_shed_total", "Requests refused before queueing (queue full or admission).",
            {{"model", model_name(m)}, {"tier", tier_name(t)}, {"reason", reason}}));
      }
    }
    queue_wait_.push_back(registry->GetHistogram(
        "sluice_queue_wait_seconds", "Time from admission to dispatch onto an accelerator.",
        {{"model", model_name(m)}}, seconds));
    overhead_.push_back(registry->GetHistogram(
        "sluice_gateway_overhead_seconds",
        "Time a request spent in Sluice itself: end to end minus queue wait and accelerator time.",
        {{"model", model_name(m)}}, micro));
  }
}

void RequestMetrics::RecordRateLimited(int tier, RateLimitKind kind) {
  size_t t = static_cast<size_t>(tier + 1);
  if (t >= n_tiers_) t = 0;
  rate_limited_[t * 2 + (kind == RateLimitKind::kTokens ? 1 : 0)]->Inc();
}

uint64_t RequestMetrics::RecordAuthFailure(bool service_token) {
  metrics::Counter* c = auth_failures_[service_token ? 1 : 0];
  c->Inc();
  return c->value();
}

void RequestMetrics::RecordShed(int model, int tier, const char* reason) {
  size_t m = static_cast<size_t>(model + 1), t = static_cast<size_t>(tier + 1);
  if (m >= n_models_) m = 0;
  if (t >= n_tiers_) t = 0;
  size_t r = 0;
  for (size_t i = 0; i < kShedReasonCount; ++i) {
    if (std::string_view(kShedReasons[i]) == reason) r = i;
  }
  shed_[(m * n_tiers_ + t) * kShedReasonCount + r]->Inc();
}

size_t RequestMetrics::StatusSlot(int http_status) const {
  for (size_t i = 0; i + 1 < kStatuses.size(); ++i) {
    if (kStatuses[i] == http_status) return i;
  }
  return kStatuses.size() - 1;
}

void RequestMetrics::Record(int model, int tier, int http_status, double total_seconds,
                            double queue_wait_seconds, double overhead_seconds) {
  size_t m = static_cast<size_t>(model + 1), t = static_cast<size_t>(tier + 1);
  if (m >= n_models_) m = 0;
  if (t >= n_tiers_) t = 0;
  counts_[(m * n_tiers_ + t) * kStatuses.size() + StatusSlot(http_status)]->Inc();
  if (total_seconds >= 0) duration_[m * n_tiers_ + t]->Observe(total_seconds);
  if (queue_wait_seconds >= 0) queue_wait_[m]->Observe(queue_wait_seconds);
  if (overhead_seconds >= 0) overhead_[m]->Observe(overhead_seconds);
  rate_.Mark();
}

}  // namespace sluice::http
