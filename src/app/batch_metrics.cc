#include "app/batch_metrics.h"

#include <optional>

#include <spdlog/spdlog.h>

namespace sluice {

BatchMetrics::BatchMetrics(Options options) : options_(std::move(options)), busy_(options_.clock) {
  metrics::Registry* registry = options_.registry;
  const std::string& model = options_.model;
  metrics::Labels labels{{"model", model}};
  std::vector<double> sizes;
  for (size_t b = 1; b < options_.max_batch_size; b *= 2) sizes.push_back(static_cast<double>(b));
  sizes.push_back(static_cast<double>(options_.max_batch_size));
  batch_size_ =
      registry->GetHistogram("sluice_batch_size", "Requests per dispatched batch.", labels, sizes);
  batch_seconds_ = registry->GetHistogram("sluice_accelerator_batch_seconds",
                                          "Time a batch spent on the accelerator.", labels,
                                          metrics::ExponentialBuckets(0.0005, 2, 14));
  batches_ok_ = registry->GetCounter("sluice_batches_total", "Batches run, by outcome.",
                                     {{"model", model}, {"outcome", "ok"}});
  batches_failed_ = registry->GetCounter("sluice_batches_total", "Batches run, by outcome.",
                                         {{"model", model}, {"outcome", "failed"}});
  retries_ = registry->GetCounter("sluice_batch_retry_requests_total",
                                  "Requests of failed batches scheduled for a retry.", labels);
  dead_letters_ = registry->GetCounter(
      "sluice_dead_letters_total",
      "Requests that failed every retry, moved to the dead-letter queue (answered 502).", labels);
  AddEndpoints(options_.endpoint_names);
}

metrics::Counter* BatchMetrics::BreakerOpened(const std::string& endpoint) {
  return options_.registry->GetCounter("sluice_circuit_breaker_opened_total",
                                       "Times an endpoint's circuit breaker opened.",
                                       {{"model", options_.model}, {"endpoint", endpoint}});
}

void BatchMetrics::AddEndpoints(const std::vector<std::string>& names) {
  for (const std::string& name : names) BreakerOpened(name);
}

void BatchMetrics::OnBatchDone(size_t slot, size_t batch_size,
                               SteadyClock::duration accelerator_time, bool ok) {
  busy_.AddBusy(accelerator_time);
  batch_size_->Observe(static_cast<double>(batch_size));
  batch_seconds_->Observe(std::chrono::duration<double>(accelerator_time).count());
  (ok ? batches_ok_ : batches_failed_)->Inc();
  if (ok && options_.on_batch_ok) options_.on_batch_ok(batch_size, accelerator_time);
}

void BatchMetrics::OnBatchFailed(size_t slot, const Status& error) {
  // A backend failing every batch fails hundreds a second: one line per
  // interval, with the backend's own words (clients never see them).
  if (std::optional<uint64_t> held_back = failure_warnings_.Allow()) {
    spdlog::warn("model '{}': batch on slot {} failed: {} ({} more failed batches not logged)",
                 options_.model, slot, error.message(), *held_back);
  }
}

void BatchMetrics::OnRetry(size_t slot, size_t requests) { retries_->Inc(requests); }

void BatchMetrics::OnDeadLetter(size_t requests) {
  dead_letters_->Inc(requests);
  if (std::optional<uint64_t> held_back = dead_letter_warnings_.Allow()) {
    spdlog::error(
        "model '{}': {} request(s) failed every retry; moved to the dead-letter queue ({} more "
        "such events not logged)",
        options_.model, requests, *held_back);
  }
}

void BatchMetrics::OnBreakerChange(size_t /*endpoint*/, const std::string& name,
                                   BreakerState state) {
  if (state == BreakerState::kOpen) {
    BreakerOpened(name)->Inc();  // rare: the registry's lookup is cheap enough
    spdlog::warn("model '{}': circuit breaker for {} opened; its slots pull no work",
                 options_.model, name);
  } else {
    spdlog::info("model '{}': circuit breaker for {} is {}", options_.model, name,
                 BreakerStateName(state));
  }
}

}  // namespace sluice
