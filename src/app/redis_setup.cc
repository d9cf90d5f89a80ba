#include "app/redis_setup.h"

#include "redis/cluster_client.h"

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

Result<std::unique_ptr<redis::RedisClient>> MakeRedisClient(const RedisConfig& config,
                                                            std::string client_name) {
  redis::RedisConnection::Options node = RedisConnectionOptions(config, std::move(client_name));
  if (config.cluster_nodes.empty()) {
    auto c = redis::RedisConnection::Create(node);
    if (!c.ok()) return c.status();
    return std::unique_ptr<redis::RedisClient>(std::move(c).value());
  }
  redis::RedisClusterClient::Options o;
  o.seeds = config.cluster_nodes;
  o.node = std::move(node);
  auto c = redis::RedisClusterClient::Create(std::move(o));
  if (!c.ok()) return c.status();
  return std::unique_ptr<redis::RedisClient>(std::move(c).value());
}

redis::RedisReaper::Options ReaperOptions(redis::RedisClient* client, const redis::KeySpace& keys,
                                          const AppConfig& config, int max_retries) {
  redis::RedisReaper::Options o;
  o.connection = client;
  o.keys = keys;
  o.tier_count = config.tiers.size();
  o.max_retries = max_retries;
  o.queue_shards = static_cast<size_t>(config.redis.queue_shards);
  return o;
}

std::unique_ptr<redis::RedisRateLimiter> SeparateRateLimiter(const RedisConfig& config,
                                                             redis::RedisClient* client,
                                                             const redis::KeySpace& keys) {
  if (config.cluster_nodes.empty() || client == nullptr) return nullptr;
  // Keys' states spread over 16 slots: a batch's checks take at most 16
  // calls, and the slots spread over the masters.
  constexpr size_t kKeyShards = 16;
  auto limiter =
      redis::RedisRateLimiter::Create({client, keys, kKeyShards});  // fails only without a client
  return limiter.ok() ? std::move(limiter).value() : nullptr;
}

std::string RedisTargetName(const RedisConfig& config) {
  if (config.cluster_nodes.empty()) return config.host + ":" + std::to_string(config.port);
  std::string out = "cluster ";
  for (size_t i = 0; i < config.cluster_nodes.size(); ++i) {
    out += (i == 0 ? "" : ",") + config.cluster_nodes[i];
  }
  return out;
}

redis::RedisSubscriber::Options RedisSubscriberOptions(const RedisConfig& config) {
  redis::RedisSubscriber::Options o;
  o.host = config.host;
  o.port = config.port;
  for (size_t i = 0; i < config.cluster_nodes.size(); ++i) {
    const std::string& n = config.cluster_nodes[i];  // validated host:port
    const size_t colon = n.rfind(':');
    std::pair<std::string, int> server{n.substr(0, colon), std::stoi(n.substr(colon + 1))};
    if (i == 0) {
      std::tie(o.host, o.port) = server;
    } else {
      o.fallbacks.push_back(std::move(server));
    }
  }
  o.connect_timeout_ms = config.connect_timeout_ms;
  o.command_timeout_ms = config.command_timeout_ms;
  o.username = config.username;
  o.password = config.password;
  return o;
}

void AddRedisConnectionMetrics(metrics::Registry& registry, RedisClientsFn clients) {
  // Summed over the process's clients; one that is gone counts nothing.
  auto sum = [clients](uint64_t redis::RedisClient::Stats::*field) {
    return [clients, field] {
      uint64_t total = 0;
      for (const redis::RedisClient* c : clients()) {
        if (c != nullptr) total += c->stats().*field;
      }
      return static_cast<double>(total);
    };
  };
  registry.AddCallbackGauge("sluice_redis_up", "1 while every Redis connection is up, else 0.", {},
                            [clients] {
                              for (const redis::RedisClient* c : clients()) {
                                if (c == nullptr || c->state() != redis::RedisClient::State::kUp)
                                  return 0.0;
                              }
                              return 1.0;
                            });
  registry.AddCallbackCounter("sluice_redis_commands_total", "Commands written to Redis.", {},
                              sum(&redis::RedisClient::Stats::commands_sent));
  registry.AddCallbackCounter("sluice_redis_round_trips_total",
                              "Pipelines written to Redis (round trips).", {},
                              sum(&redis::RedisClient::Stats::pipelines));
  registry.AddCallbackCounter("sluice_redis_redirects_total",
                              "Redis Cluster MOVED / ASK redirects followed.", {},
                              sum(&redis::RedisClient::Stats::redirects));
  registry.AddCallbackCounter("sluice_redis_slot_map_refreshes_total",
                              "Redis Cluster slot map changes read (CLUSTER SLOTS).", {},
                              sum(&redis::RedisClient::Stats::slot_map_refreshes));
  const std::pair<const char*, uint64_t redis::RedisClient::Stats::*> kinds[] = {
      {"io", &redis::RedisClient::Stats::io_errors},
      {"error_reply", &redis::RedisClient::Stats::error_replies},
      {"rejected_while_down", &redis::RedisClient::Stats::rejected_while_down}};
  for (const auto& [kind, field] : kinds) {
    registry.AddCallbackCounter("sluice_redis_errors_total",
                                "Redis failures: lost connections, error replies, commands "
                                "refused while down.",
                                {{"kind", kind}}, sum(field));
  }
}

}  // namespace sluice
