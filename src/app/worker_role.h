// WorkerRole: the dispatchers of one model on one accelerator endpoint,
// pulling whole batches from Redis (what it does is in worker_command.h),
// as a component. `sluice worker` runs one with its own health/metrics
// port; `sluice serve` with a `redis:` section runs one per model beside its
// gateway, on the same process parts (scale_out_process.h: io_context,
// metrics registry — its series are labelled by model —, Redis client,
// request log, for its batch rows).
//
// Life cycle: Create() builds the backend slots, the DispatchGroup, the
// claimer, the reaper and the claim loop and registers the role's metrics;
// Start() waits (bounded by redis.connect_timeout_ms) for Redis, sends the
// first heartbeat, then claims, heartbeats and reaps. DrainStage() stops
// claiming and waits for the batches in flight and their answers. Close()
// (after the run loop stopped, before the Redis client is destroyed) joins
// the claim thread, deregisters the worker and ends its Redis users.
//
// Thread-safety: Start/Close from the runner's thread; HealthJson() from
// any thread; the rest runs on the io_context, the claim thread and the
// Redis threads.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "app/drainer.h"
#include "common/status.h"
#include "config/config.h"

namespace sluice {

class ScaleOutProcess;

class WorkerRole {
 public:
  struct Options {
    ScaleOutProcess* process = nullptr;    // required; outlives the role
    const ModelConfig* model = nullptr;    // required; one of the config's models
    std::optional<size_t> endpoint_index;  // http kinds: which endpoint (else all)
    std::string worker_id;                 // required
  };

  // Errors: kInvalidArgument (bad configuration), or the backend's own.
  static Result<std::unique_ptr<WorkerRole>> Create(const Options& options);
  ~WorkerRole();

  void Start();
  Drainer::Stage DrainStage();
  void Close();

  // {"status","worker_id","model","endpoint","redis","slots",...} for
  // GET /internal/health of `sluice worker`.
  std::string HealthJson() const;

 private:
  struct Parts;
  explicit WorkerRole(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

// "<host>-<pid>-<model>[-<endpoint index>]"
std::string DefaultWorkerId(const std::string& model, std::optional<size_t> endpoint);

}  // namespace sluice
