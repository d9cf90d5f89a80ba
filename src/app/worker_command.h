// `sluice worker`: the dispatchers of ONE model on one accelerator endpoint
// (config `redis:` required), pulling whole batches from Redis.
//
// The model's backend slots are built as `sluice serve` builds them (sim
// devices, or the connections to one http/openai/kserve endpoint chosen by
// --endpoint-index) and run by the same DispatchGroup: batch-level failures
// are retried on the worker (model.retry: at most max_retries, then the
// local dead-letter queue and 502), breakers per endpoint, 504 for requests
// past their deadlines. Batches are formed once, in the claim from Redis
// (ClaimLoop: wait for the group's adaptive target or max_batch_delay_us,
// blocking BLPOP wake-up), run whole (DispatchGroup::Submit, no local
// queue) and answered with one script call per batch.
//
// Crash safety: a claimed batch is leased for redis.lease_ms; the worker
// runs the reaper every worker.reap_interval_ms (default lease_ms / 4), so
// requests of a worker killed with SIGKILL go back to the queue (attempts +
// 1; after model.retry.max_retries re-queues: dead letter, 502
// "worker_lost") and each is answered exactly once.
//
// Registry: a heartbeat every heartbeat_ttl_ms / 3 with the healthy slots,
// utilisation and measured full-batch throughput; Deregister on shutdown.
// SIGTERM/SIGINT: stop claiming, finish the batches in flight and send
// their answers (bounded by server.drain_timeout_ms; what is left is
// reaped), deregister, exit 0.
//
// Serves GET /internal/health and GET /metrics (service token) on
// server.listen_address:--port (default 0: any free port) and prints
// "sluice: listening on http://ADDR:PORT" once claiming.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "config/config.h"

namespace sluice {

struct WorkerFlags {
  std::string model;                     // empty = the config's first model
  std::optional<size_t> endpoint_index;  // http kinds: serve this endpoint only
  uint16_t port = 0;                     // health/metrics port; 0 = any free port
};

int RunWorker(const AppConfig& config, const WorkerFlags& flags);

}  // namespace sluice
