// Redis wiring shared by `sluice gateway` and `sluice worker`: the client
// (one server, or Redis Cluster when redis.cluster_nodes is set) and the
// subscriber from the config's `redis:` section, and the client's counters
// as metrics. Construction helpers; no state.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "config/config.h"
#include "metrics/registry.h"
#include "redis/client.h"
#include "redis/connection.h"
#include "redis/keys.h"
#include "redis/reaper.h"
#include "redis/redis_rate_limiter.h"
#include "redis/subscriber.h"

namespace sluice {

// `client_name` shows in Redis's CLIENT LIST.
redis::RedisConnection::Options RedisConnectionOptions(const RedisConfig& config,
                                                       std::string client_name);
// A RedisConnection to redis.host:port, or a RedisClusterClient seeded
// with redis.cluster_nodes. Errors: kInvalidArgument naming the field.
Result<std::unique_ptr<redis::RedisClient>> MakeRedisClient(const RedisConfig& config,
                                                            std::string client_name);
// "host:port", or "cluster host:port,host:port..." for log lines.
std::string RedisTargetName(const RedisConfig& config);
// The reaper of a worker (or `serve` with Redis) for config's queue.
redis::RedisReaper::Options ReaperOptions(redis::RedisClient* client, const redis::KeySpace& keys,
                                          const AppConfig& config, int max_retries);
// Redis Cluster: the limiter with which rate limits are checked (gateway)
// and token charges settled (worker) in their own calls, since their keys
// live in other slots than the queues'; null on a single server (the queue
// scripts do both). `client` is borrowed and must outlive it.
std::unique_ptr<redis::RedisRateLimiter> SeparateRateLimiter(const RedisConfig& config,
                                                             redis::RedisClient* client,
                                                             const redis::KeySpace& keys);
// Server(s) and timeouts only (channels and callbacks are the caller's). On
// a cluster: the first node, the others as fallbacks (every node delivers
// every PUBLISH).
redis::RedisSubscriber::Options RedisSubscriberOptions(const RedisConfig& config);

// sluice_redis_up, sluice_redis_commands_total, sluice_redis_round_trips_total,
// sluice_redis_errors_total{kind}, sluice_redis_redirects_total and
// sluice_redis_slot_map_refreshes_total (both 0 on a single server), summed
// over the clients `clients` returns at each render (null entries count
// nothing; sluice_redis_up is 1 while every one is up). `clients` must stay
// callable for as long as `registry` is rendered.
using RedisClientsFn = std::function<std::vector<const redis::RedisClient*>()>;
void AddRedisConnectionMetrics(metrics::Registry& registry, RedisClientsFn clients);

}  // namespace sluice
