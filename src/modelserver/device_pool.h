// DevicePool: the simulated accelerators behind `sluice model-server`.
//
// `devices` SimBackend instances (the embedded simulator's cost model and
// deterministic outputs), each running one batch at a time. Submit() runs a
// batch on the next free device; while all are busy, batches wait in FIFO
// order, as they would in front of a real fixed inference API. An added
// latency (fault injection) holds the device before the batch starts.
//
// Thread-safe: every call is posted to `executor` (a strand), and `done` runs
// there. The executor must outlive the pool and its pending batches.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "backends/sim/sim_backend.h"
#include "common/clock.h"

namespace sluice::modelserver {

class DevicePool {
 public:
  struct Options {
    std::string model;                  // seeds the simulated outputs
    std::string model_version;          // reported with every batch
    int devices = 1;                    // concurrent batch slots, >= 1
    int64_t fixed_latency_us = 34'000;  // per batch
    int64_t per_item_latency_us = 500;  // per item
    double jitter = 0.0;                // 0..1, uniform +/- fraction
    uint64_t seed = 1;                  // jitter RNG seed
    Executor* executor = nullptr;       // REQUIRED
  };
  using DoneFn = std::function<void(BatchResult&&)>;

  static Result<std::unique_ptr<DevicePool>> Create(const Options& options);

  // REQUIRES: batch non-empty; added_latency_us >= 0.
  void Submit(std::vector<RequestPtr> batch, int64_t added_latency_us, DoneFn done);

 private:
  struct Job {
    std::vector<RequestPtr> batch;
    int64_t added_latency_us = 0;
    DoneFn done;
  };
  explicit DevicePool(const Options& options) : options_(options) {}
  void StartNext();  // on the executor

  const Options options_;
  std::vector<std::unique_ptr<SimBackend>> devices_;
  std::vector<size_t> free_;  // indices of idle devices; executor only
  std::deque<Job> waiting_;   // executor only
};

}  // namespace sluice::modelserver
