// Redis wiring shared by `sluice gateway` and `sluice worker`: connection
// and subscriber options from the config's `redis:` section, and the
// connection's counters as metrics. Construction helpers; no state.
#pragma once

#include <string>

#include "config/config.h"
#include "metrics/registry.h"
#include "redis/connection.h"
#include "redis/subscriber.h"

namespace sluice {

// `client_name` shows in Redis's CLIENT LIST.
redis::RedisConnection::Options RedisConnectionOptions(const RedisConfig& config,
                                                       std::string client_name);
// Server and timeouts only (channels and callbacks are the caller's).
redis::RedisSubscriber::Options RedisSubscriberOptions(const RedisConfig& config);

// sluice_redis_up, sluice_redis_commands_total, sluice_redis_round_trips_total
// and sluice_redis_errors_total{kind} for `connection` (borrowed; must
// outlive every render of `registry`).
void AddRedisConnectionMetrics(metrics::Registry& registry,
                               const redis::RedisConnection& connection);

}  // namespace sluice
