// SimBackend: one simulated accelerator device (GPU) behind the Backend
// interface — the default backend of `sluice serve`.
//
// Cost model of a GPU batch endpoint: a batch of n items takes
// fixed_latency_us + n * per_item_latency_us, times (1 +/- jitter). One batch
// at a time: a second RunBatch() while busy fails that batch with
// kInternal (the dispatcher never does this). Outputs come from
// SimulateCompletion(), so they are deterministic per (model, input,
// max_tokens); an embedding model's (embedding_dimensions > 0) from
// SimulateEmbedding() as a JSON array, charged its input's tokens. RunBatch() returns at once;
// completion runs on `executor` (a timer), never on the caller's stack. Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include "common/clock.h"
#include "core/backend.h"

namespace sluice {

class SimBackend final : public Backend {
 public:
  struct Options {
    std::string model;                  // model name, seeds the outputs
    std::string model_version;          // reported with every batch
    int device_index = 0;               // for name()
    int64_t fixed_latency_us = 34'000;  // per batch
    int64_t per_item_latency_us = 500;  // per item
    double jitter = 0.0;                // 0..1, uniform +/- fraction
    uint64_t seed = 1;                  // jitter RNG seed (mixed with device_index)
    Executor* executor = nullptr;       // required; runs completions
    int embedding_dimensions = 0;       // > 0: an embedding model with vectors this long
  };

  static Result<std::unique_ptr<SimBackend>> Create(const Options& options);

  void RunBatch(const std::vector<RequestPtr>& batch, DoneFn done) override;
  const std::string& name() const override { return name_; }

  // Latency the next batch of n items would take, before jitter.
  int64_t NominalLatencyUs(size_t n) const;

 private:
  explicit SimBackend(const Options& options);

  const Options options_;
  const std::string name_;
  std::atomic<bool> busy_{false};
  std::mutex rng_mu_;
  std::mt19937_64 rng_;  // GUARDED_BY(rng_mu_)
};

}  // namespace sluice
