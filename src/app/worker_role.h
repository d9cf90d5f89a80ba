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
#include <vector>

#include "app/drainer.h"
#include "common/status.h"
#include "config/config.h"
#include "http/front_door.h"

namespace sluice {

class ScaleOutProcess;

// What GET /internal/health of `sluice worker` says (RenderWorkerHealth).
struct WorkerHealth {
  // "healthy"; "degraded" (some slots out of service); "unavailable" (no
  // slot in service, or Redis not up; 503); "draining" (shutting down; 503).
  std::string status = "healthy";
  std::string worker_id, model, endpoint;
  std::string redis;  // the client's: "up", "connecting" or "down"
  size_t slots = 0, healthy_slots = 0, busy_slots = 0;
  size_t batches_in_flight = 0;  // claimed and not yet answered
  double utilization = 0;        // busy fraction of its slots, last 10 s
  double throughput_rps = 0;     // measured full-batch rate of its healthy slots
  std::vector<http::EndpointHealth> endpoints;
};

// {"status","worker_id","model","endpoint","redis","slots","healthy_slots",
//  "busy_slots","batches_in_flight","utilization","throughput_rps",
//  "endpoints":[{"name","breaker","slots"}]}
std::string RenderWorkerHealth(const WorkerHealth& h);

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

  WorkerHealth Health() const;

 private:
  struct Parts;
  explicit WorkerRole(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

// "<host>-<pid>-<model>[-<endpoint index>]"
std::string DefaultWorkerId(const std::string& model, std::optional<size_t> endpoint);

}  // namespace sluice
