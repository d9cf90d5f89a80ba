#include "backends/sim/sim_backend.h"

#include "backends/sim/sim_model.h"

namespace sluice {

Result<std::unique_ptr<SimBackend>> SimBackend::Create(const Options& options) {
  if (options.executor == nullptr) return InvalidArgument("sim backend needs an executor");
  if (options.fixed_latency_us < 0 || options.per_item_latency_us < 0) {
    return InvalidArgument("sim latencies must be >= 0");
  }
  if (options.jitter < 0 || options.jitter > 1) return InvalidArgument("sim jitter must be 0..1");
  return std::unique_ptr<SimBackend>(new SimBackend(options));
}

SimBackend::SimBackend(const Options& options)
    : options_(options),
      name_("sim:" + options.model + "/" + std::to_string(options.device_index)),
      rng_(options.seed * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(options.device_index)) {}

int64_t SimBackend::NominalLatencyUs(size_t n) const {
  return options_.fixed_latency_us + options_.per_item_latency_us * static_cast<int64_t>(n);
}

void SimBackend::RunBatch(const std::vector<RequestPtr>& batch, DoneFn done) {
  if (busy_.exchange(true)) {
    BatchResult r;
    r.status = Internal(name_ + " is already running a batch");
    options_.executor->Post(
        [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
    return;
  }
  int64_t latency_us = NominalLatencyUs(batch.size());
  if (options_.jitter > 0 && latency_us > 0) {
    std::lock_guard lock(rng_mu_);
    std::uniform_real_distribution<double> dist(-options_.jitter, options_.jitter);
    latency_us = static_cast<int64_t>(static_cast<double>(latency_us) * (1.0 + dist(rng_)));
  }
  // The completion holds its own references to the requests.
  auto complete = [this, batch, done = std::move(done)]() mutable {
    BatchResult result;
    result.model_version = options_.model_version;
    result.items.reserve(batch.size());
    for (const auto& req : batch) {
      if (options_.embedding_dimensions > 0) {
        result.items.push_back(
            ItemResult{Status::Ok(),
                       sim::EmbeddingJson(sim::SimulateEmbedding(options_.model, req->input,
                                                                 options_.embedding_dimensions)),
                       sim::InputTokens(req->input)});
        continue;
      }
      sim::SimCompletion c =
          sim::SimulateCompletion(options_.model, req->input, req->params.max_tokens);
      result.items.push_back(ItemResult{Status::Ok(), std::move(c.output), c.tokens_used});
    }
    busy_.store(false);
    done(std::move(result));
  };
  if (latency_us <= 0) {
    options_.executor->Post(std::move(complete));
  } else {
    TimePoint at = options_.executor->clock().Now() + Micros(latency_us);
    options_.executor->RunAt(at, std::move(complete));
  }
}

}  // namespace sluice
