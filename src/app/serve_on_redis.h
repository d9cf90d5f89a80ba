// RunServeOnRedis: `sluice serve` when the config names Redis — the front
// door and the dispatchers still run in one process, but through Redis (as
// `sluice gateway` plus one `sluice worker` per model), so more gateways and
// workers can join the same queues. Blocks until SIGTERM/SIGINT has drained
// both roles; returns the exit code.
#pragma once

#include "config/config.h"

namespace sluice {

int RunServeOnRedis(const AppConfig& config);

}  // namespace sluice
