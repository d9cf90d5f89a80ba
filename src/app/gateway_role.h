// GatewayRole: the scale-out front door as a component — the same routes,
// auth, validation, errors and rate-limit headers as `sluice serve`, with
// queues, results and rate limits in Redis (what it does per request is in
// gateway_command.h). `sluice gateway` runs one; `sluice serve` with a
// `redis:` section runs one beside its workers, on the same process parts
// (scale_out_process.h: io_context, metrics registry, Redis client, request
// log, for its request rows).
//
// Life cycle: Create() builds everything and registers the role's metrics
// (sluice_redis_* gateway series, request metrics, listeners'); Listen()
// binds the listeners; Start() waits (bounded by redis.connect_timeout_ms)
// for Redis and the result channel, starts the capacity feed and accepts,
// printing "sluice: listening on http://ADDR:PORT". JoinDrain() adds its
// part to the Drainer; Close() ends its result-listener thread and must be
// called after the run loop stopped and before the Redis client is
// destroyed (the client's callbacks reach into this role).
//
// Thread-safety: Start/Close from the runner's thread; the rest runs on the
// io_context and the Redis threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "app/drainer.h"
#include "common/status.h"

namespace sluice {

class ScaleOutProcess;

class GatewayRole {
 public:
  struct Options {
    ScaleOutProcess* process = nullptr;  // required; outlives the role
    std::string gateway_id;              // required: its result channel
  };

  // Errors: kInvalidArgument (bad configuration).
  static Result<std::unique_ptr<GatewayRole>> Create(const Options& options);
  ~GatewayRole();

  Status Listen();  // binds the public (and admin) listener
  // Create() then Listen(); on failure logs why, sets *exit_code (2: bad
  // configuration, 1: cannot listen) and returns null.
  static std::unique_ptr<GatewayRole> CreateListening(const Options& options, int* exit_code);
  void Start();
  // Adds its stage (stop accepting; wait for its pending answers; at the
  // deadline answer the rest 503) and the grace for writing the last ones.
  void JoinDrain(Drainer::Options& drain);
  void Close();

 private:
  struct Parts;
  explicit GatewayRole(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

// A random "gw-xxxxxxxx" for a gateway whose config names none.
std::string RandomGatewayId();

}  // namespace sluice
