// RedisWorkerRegistry: workers announce themselves with heartbeats that
// expire; gateways read, per model, how many workers are healthy and how
// much they can serve, for admission control.
//
// A heartbeat (scripts::Heartbeat) stores the worker's info in
// sluice:{m}:workers and its expiry (server time + heartbeat_ttl_ms) in
// sluice:{m}:workers:exp. ReadModel (scripts::ReadWorkers) drops expired
// workers and returns the live ones, summed. A worker that dies stops
// counting heartbeat_ttl_ms after its last heartbeat: with heartbeats every
// second and a 3 s TTL, every gateway sees it gone within ~3 s of its last
// beat (plus the gateway's read period). Deregister() removes a worker at
// once on a clean shutdown.
//
// Thread-safety: thread-safe. Ownership: `connection` is not owned and must
// outlive the registry. Blocking: the *Async forms never block; the others
// block for one round trip.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "redis/client.h"
#include "redis/keys.h"

namespace sluice::redis {

struct WorkerHeartbeat {
  std::string worker_id;       // unique per worker process + endpoint
  std::string model;           // the model it serves
  std::string endpoint;        // accelerator endpoint (URL), informational
  double utilisation = 0;      // busy fraction of its slots, 0..1
  double throughput_rps = 0;   // measured requests/s it can serve
  uint32_t healthy_slots = 0;  // batch slots that can take a batch now (a probing endpoint counts)
};

struct ModelCapacity {
  size_t healthy_workers = 0;            // live workers with healthy_slots > 0
  uint32_t healthy_slots = 0;            // summed over live workers
  double throughput_rps = 0;             // summed over healthy workers
  std::vector<WorkerHeartbeat> workers;  // every live worker
};

class RedisWorkerRegistry {
 public:
  struct Options {
    RedisClient* connection = nullptr;  // required; not owned
    KeySpace keys;                      // key names (prefix)
    // A worker counts until this long after its last heartbeat; > 0.
    // Heartbeat at least every third of it.
    int64_t heartbeat_ttl_ms = 3'000;
  };
  using Done = std::function<void(Status)>;
  using ReadDone = std::function<void(Result<ModelCapacity>)>;

  // Errors: kInvalidArgument naming the field.
  static Result<std::unique_ptr<RedisWorkerRegistry>> Create(const Options& options);

  void HeartbeatAsync(const WorkerHeartbeat& beat, Done done);
  Status Heartbeat(const WorkerHeartbeat& beat);
  Status Deregister(const std::string& model, const std::string& worker_id);

  void ReadModelAsync(const std::string& model, ReadDone done);
  Result<ModelCapacity> ReadModel(const std::string& model);

 private:
  explicit RedisWorkerRegistry(const Options& options) : options_(options) {}

  const Options options_;
};

}  // namespace sluice::redis
