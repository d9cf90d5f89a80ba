// BatchCostModel: what a batch of n requests costs on one accelerator slot
// of a model, learnt from the batches the slots actually ran — the one cost
// model that admission (how long until a request is dispatched), adaptive
// batching (is waiting for a fuller batch needed to keep up) and capacity
// planning read. One instance per model, shared by its AdmissionController
// and DispatchGroup.
//
// The estimate is BatchThroughputEstimator's (throughput_estimator.h): the
// prior line fixed + per_item * n until batches are measured, then a fit of
// that line over the recent batches (or the prior scaled by the measured
// speed when the batch sizes are too alike to split the cost).
//
// Thread-safety: Record() takes a short mutex; every reader is lock-free
// (atomics published by Record()). Nothing blocks. Ownership: `clock` is not
// owned and must outlive the model.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "common/clock.h"
#include "common/status.h"
#include "limits/throughput_estimator.h"

namespace sluice {

class BatchCostModel {
 public:
  struct Options {
    size_t max_batch_size = 32;             // >= 1; the full batch
    int64_t prior_batch_fixed_us = 34'000;  // prior: a batch of 0 items, >= 0
    int64_t prior_batch_per_item_us = 500;  // prior: added per item, >= 0; sum > 0
    int64_t time_constant_ms = 1'000;       // how fast old batches fade, >= 1
    const Clock* clock = nullptr;           // default: SystemClock()
  };

  // Errors: kInvalidArgument naming the field.
  static Result<std::unique_ptr<BatchCostModel>> Create(const Options& options);

  // A successful batch of `batch_size` requests that took `duration` on its
  // slot. Failed batches are not costs and are not recorded.
  void Record(size_t batch_size, SteadyClock::duration duration);

  // Learnt (or prior) cost of a batch of `batch_size` requests.
  double BatchMicros(size_t batch_size) const {
    return fixed_us_.load(std::memory_order_relaxed) +
           per_item_us_.load(std::memory_order_relaxed) * static_cast<double>(batch_size);
  }
  double FixedMicros() const { return fixed_us_.load(std::memory_order_relaxed); }
  double PerItemMicros() const { return per_item_us_.load(std::memory_order_relaxed); }
  // Requests per second one slot completes running full batches.
  double FullBatchRps() const {
    // A zero-cost backend still takes some time (no infinite capacity).
    return static_cast<double>(options_.max_batch_size) * 1e6 /
           std::max(BatchMicros(options_.max_batch_size), 1.0);
  }
  // Measured / prior time of the recent batches (1 before any).
  double speed_factor() const { return speed_factor_.load(std::memory_order_relaxed); }
  // False until a batch was recorded (the prior is in use).
  bool measured() const { return measured_.load(std::memory_order_relaxed); }
  size_t max_batch_size() const { return options_.max_batch_size; }

 private:
  explicit BatchCostModel(const Options& options);
  void Publish();  // REQUIRES: mu_

  const Options options_;
  std::mutex mu_;
  BatchThroughputEstimator estimator_;  // GUARDED_BY(mu_)
  std::atomic<double> fixed_us_{0};
  std::atomic<double> per_item_us_{0};
  std::atomic<double> speed_factor_{1};
  std::atomic<bool> measured_{false};
};

}  // namespace sluice
