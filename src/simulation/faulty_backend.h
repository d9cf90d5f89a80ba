// FaultyBackend: a Backend that can be switched "down", for fault scenarios
// of the simulator (a device that crashed, a host that lost its network).
//
// While up it forwards every batch to the wrapped backend unchanged. While
// down it fails every new batch as a whole, as a dead endpoint does: after
// `failure_delay_us` (the time to get "connection refused") it answers a
// batch-level kBackendError, so the dispatch group retries the batch
// elsewhere and the endpoint's circuit breaker counts the failure. A batch
// already running on the wrapped backend when the device goes down still
// completes normally (its reply was on the way).
//
// Thread-safety: SetDown() and down() are thread-safe (an atomic);
// RunBatch() follows the Backend contract. Completions of failed batches run
// on `executor` (a timer), never on the caller's stack. Ownership: owns the
// wrapped backend; `executor` is borrowed and must outlive this object.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "common/clock.h"
#include "core/backend.h"

namespace sluice {

class FaultyBackend final : public Backend {
 public:
  struct Options {
    // Time a down device takes to refuse a batch (connect + refusal); >= 0.
    int64_t failure_delay_us = 1'000;
    Executor* executor = nullptr;  // required; runs the failures
  };

  // Errors: kInvalidArgument (no executor, no backend, negative delay).
  static Result<std::unique_ptr<FaultyBackend>> Create(const Options& options,
                                                       std::unique_ptr<Backend> inner);

  void RunBatch(const std::vector<RequestPtr>& batch, DoneFn done) override;
  const std::string& name() const override { return inner_->name(); }

  // Takes the device down (every later batch fails) or brings it back.
  void SetDown(bool down) { down_.store(down, std::memory_order_relaxed); }
  bool down() const { return down_.load(std::memory_order_relaxed); }
  // Batches refused while down (any thread).
  uint64_t refused_batches() const { return refused_.load(std::memory_order_relaxed); }

 private:
  FaultyBackend(const Options& options, std::unique_ptr<Backend> inner)
      : options_(options), inner_(std::move(inner)) {}

  const Options options_;
  const std::unique_ptr<Backend> inner_;
  std::atomic<bool> down_{false};
  std::atomic<uint64_t> refused_{0};
};

}  // namespace sluice
