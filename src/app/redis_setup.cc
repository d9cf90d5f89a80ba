#include "app/redis_setup.h"

namespace sluice {

redis::RedisConnection::Options RedisConnectionOptions(const RedisConfig& config,
                                                       std::string client_name) {
  redis::RedisConnection::Options o;
  o.host = config.host;
  o.port = config.port;
  o.connect_timeout_ms = config.connect_timeout_ms;
  o.command_timeout_ms = config.command_timeout_ms;
  o.client_name = std::move(client_name);
  o.username = config.username;
  o.password = config.password;
  return o;
}

redis::RedisSubscriber::Options RedisSubscriberOptions(const RedisConfig& config) {
  redis::RedisSubscriber::Options o;
  o.host = config.host;
  o.port = config.port;
  o.connect_timeout_ms = config.connect_timeout_ms;
  o.command_timeout_ms = config.command_timeout_ms;
  o.username = config.username;
  o.password = config.password;
  return o;
}

void AddRedisConnectionMetrics(metrics::Registry& registry,
                               const redis::RedisConnection& connection) {
  const redis::RedisConnection* c = &connection;
  registry.AddCallbackGauge(
      "sluice_redis_up", "1 while the Redis connection is up, else 0.", {},
      [c] { return c->state() == redis::RedisConnection::State::kUp ? 1.0 : 0.0; });
  registry.AddCallbackGauge("sluice_redis_commands_total", "Commands written to Redis.", {},
                            [c] { return static_cast<double>(c->stats().commands_sent); });
  registry.AddCallbackGauge("sluice_redis_round_trips_total",
                            "Pipelines written to Redis (round trips).", {},
                            [c] { return static_cast<double>(c->stats().pipelines); });
  const std::pair<const char*, uint64_t redis::RedisConnection::Stats::*> kinds[] = {
      {"io", &redis::RedisConnection::Stats::io_errors},
      {"error_reply", &redis::RedisConnection::Stats::error_replies},
      {"rejected_while_down", &redis::RedisConnection::Stats::rejected_while_down}};
  for (const auto& [kind, field] : kinds) {
    registry.AddCallbackGauge(
        "sluice_redis_errors_total",
        "Redis failures: lost connections, error replies, commands "
        "refused while down.",
        {{"kind", kind}}, [c, field = field] { return static_cast<double>(c->stats().*field); });
  }
}

}  // namespace sluice
