// RequestMetrics: the front door's per-request metrics, with every labelled
// series resolved at start-up so that recording is a few relaxed atomic
// adds (no map lookups, no locks on the hot path).
//
// Series: sluice_requests_total{model,tier,status},
// sluice_request_duration_seconds{model,tier} (end to end),
// sluice_queue_wait_seconds{model}, sluice_gateway_overhead_seconds{model}
// (end to end minus queue wait and accelerator time),
// sluice_rate_limited_total{tier,limit}, sluice_shed_total{model,tier,reason},
// sluice_auth_failures_total{credential} (api_key, service_token).
// Requests that never
// resolved a model or key are labelled model="unknown" / tier="none".
// Thread-safe.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "common/clock.h"
#include "limits/rate_limiter.h"
#include "metrics/rate_meter.h"
#include "metrics/registry.h"

namespace sluice::http {

class RequestMetrics {
 public:
  // HTTP statuses with their own series; others are counted as "other".
  // 499: the client went away before its answer (dropped before the accelerator).
  static constexpr std::array<int, 15> kStatuses = {200, 400, 401, 403, 404, 405, 413, 429,
                                                    431, 499, 500, 502, 503, 504, 0};

  RequestMetrics(metrics::Registry* registry, const std::vector<std::string>& models,
                 const std::vector<std::string>& tiers, const Clock* clock);

  // model / tier: index, or -1 when unknown. Durations < 0 are not recorded.
  void Record(int model, int tier, int http_status, double total_seconds, double queue_wait_seconds,
              double overhead_seconds);

  // A request refused by its key's rate limit (`kind`: which limit).
  void RecordRateLimited(int tier, RateLimitKind kind);
  // A request refused (401) for a missing or unknown API key or service
  // token; returns the failures of that kind so far.
  uint64_t RecordAuthFailure(bool service_token);
  // A request refused before queueing: `reason` is "queue_full" or an
  // AdmissionRejectName().
  void RecordShed(int model, int tier, const char* reason);

  // Responses per second over the last 10 s (every status).
  double RequestsPerSecond() const { return rate_.PerSecond(); }

 private:
  size_t StatusSlot(int http_status) const;

  size_t n_models_, n_tiers_;
  // [model+1][tier+1][status slot]; index 0 = unknown.
  std::vector<metrics::Counter*> counts_;
  std::vector<metrics::Histogram*> duration_;     // [model+1][tier+1]
  std::vector<metrics::Histogram*> queue_wait_;   // [model+1]
  std::vector<metrics::Histogram*> overhead_;     // [model+1]
  std::vector<metrics::Counter*> rate_limited_;   // [tier+1][requests, tokens]
  std::vector<metrics::Counter*> auth_failures_;  // [api_key, service_token]
  std::vector<metrics::Counter*> shed_;           // [model+1][tier+1][reason]
  metrics::RateMeter rate_;
};

}  // namespace sluice::http
