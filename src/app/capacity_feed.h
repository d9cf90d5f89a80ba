// CapacityFeed: a gateway's view of the workers behind it. About once a
// period it reads, per model, the worker registry (healthy workers, healthy
// slots, their measured throughput) and the queue depth from Redis, and
// feeds them to the model's AdmissionController:
//   SetHealthySlots(healthy slots of live workers)  — a dead worker stops
//       counting within heartbeat TTL + one period;
//   OnBatch(max_batch, max_batch / per-slot throughput)  — a synthetic full
//       batch that sets the controller's per-slot estimate to the workers'
//       measured throughput (throughput_estimator.h: a full batch's time is
//       all it needs).
// When Redis cannot be read, the last figures stand (the gateway answers
// 503 on its own while Redis is down: enqueue fails at once).
//
// Thread-safety: Start/Stop on the caller's thread; Snapshot() and stats
// from any thread. Callbacks run on the Redis connection's thread. Lifetime:
// every pointer in Options must outlive the feed AND every callback in
// flight — destroy the Redis connection before them.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "limits/admission_controller.h"
#include "redis/client.h"
#include "redis/redis_request_queue.h"
#include "redis/worker_registry.h"

namespace sluice {

class CapacityFeed {
 public:
  struct Model {
    std::string name;
    size_t max_batch_size = 32;
    AdmissionController* admission = nullptr;   // optional (admission off)
    BatchCostModel* cost_model = nullptr;       // with `admission`: the one it reads
    redis::RedisRequestQueue* queue = nullptr;  // required
  };
  struct Options {
    redis::RedisWorkerRegistry* registry = nullptr;  // required; not owned
    redis::RedisClient* connection = nullptr;        // required; for queue depths
    size_t tier_count = 3;
    int64_t period_ms = 1'000;  // > 0
    std::vector<Model> models;
  };
  // The last figures read for one model.
  struct Snapshot {
    bool known = false;  // read at least once
    redis::ModelCapacity capacity;
  };

  CapacityFeed(boost::asio::io_context& ioc, Options options);

  // Reads once at once, then every period.
  void Start();
  void Stop();

  // REQUIRES: model < models.size().
  Snapshot snapshot(size_t model) const;
  uint64_t read_errors() const { return state_->read_errors.load(std::memory_order_relaxed); }

 private:
  struct State {
    mutable std::mutex mu;
    std::vector<Snapshot> snapshots;  // GUARDED_BY(mu)
    std::atomic<uint64_t> read_errors{0};
  };

  void Tick();
  void Arm();

  const Options options_;
  boost::asio::steady_timer timer_;
  std::atomic<bool> stopped_{false};
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

}  // namespace sluice
