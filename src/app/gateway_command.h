// `sluice gateway`: the HTTP front door only — the same routes, auth,
// validation, errors and rate-limit headers as `sluice serve` — with queues,
// results and rate limits in Redis (config `redis:`), served by
// `sluice worker` processes.
//
// Per request: ONE Redis round trip (the enqueue script, which also checks
// the key's rate limit on a single Redis), then the answer arrives on this
// gateway's result channel (one message per batch) and completes the
// waiting connection; a local timer answers 504 at the request's total
// deadline if no result came. Admission control uses the worker registry
// (healthy slots, measured throughput), read once a second. While Redis is
// down every inference request is answered 503 "redis_unavailable" at once;
// the connections reconnect by themselves and the gateway recovers when
// Redis is back. /internal/health adds "redis" (state, gateway id, pending
// requests) and "workers"; /metrics adds sluice_redis_* series.
//
// RunGateway() blocks until SIGTERM/SIGINT and a graceful drain (stop
// accepting; wait up to server.drain_timeout_ms for pending requests; answer
// the rest 503). Prints "sluice: listening on http://ADDR:PORT" on stdout
// once ready. Returns the process exit code (2: bad configuration).
#pragma once

#include "config/config.h"

namespace sluice {

int RunGateway(const AppConfig& config);

}  // namespace sluice
