// ScaleOutProcess: what the roles of one scale-out process share — its
// event loops (an IoContextPool of server.io_threads), one metrics registry, the authenticator,
// one Redis client, plus the gateway's event-loop connection (the
// sluice_redis_* connection metrics sum both), the Redis
// Cluster rate limiter when there is one, one request log, one dead-letter
// queue (sluice_dead_letter_queue_size, as in `serve`; every entry is also
// pushed to its model's list in Redis, which any gateway serves) — and the
// run loop with its graceful shutdown. `sluice gateway`, `sluice worker` and
// `sluice serve` with a `redis:` section each build one and put their roles
// on it.
//
// Order of use: Create(); build the roles on its parts; Run() until the
// Drainer stops it; Close() every role; CloseRedis(); then destroy the
// roles, then this object (the request log flushes last).
#pragma once

#include <memory>
#include <string>

#include "app/config_reloader.h"
#include "app/drainer.h"
#include "app/process_tracing.h"
#include "app/reload_signal.h"
#include "app/shutdown_signals.h"
#include "common/asio_executor.h"
#include "common/io_context_pool.h"
#include "common/status.h"
#include "config/config.h"
#include "core/authenticator.h"
#include "core/dead_letter_queue.h"
#include "core/request_log.h"
#include "metrics/registry.h"

namespace sluice {
namespace redis {
class RedisClient;
class RedisDeadLetters;
class RedisRateLimiter;
}  // namespace redis

class ScaleOutProcess {
 public:
  // `role`: gateway, worker or serve (its spans' sluice.role);
  // `client_name`: the Redis CLIENT SETNAME of its connections (and its
  // spans' service.instance.id); `log_worker_id`: stored on the batch rows
  // of its request log. Errors: kInvalidArgument (bad configuration,
  // request log cannot open).
  static Result<std::unique_ptr<ScaleOutProcess>> Create(const AppConfig& config,
                                                         const std::string& role,
                                                         const std::string& client_name,
                                                         const std::string& log_worker_id);
  ~ScaleOutProcess();

  const AppConfig& config() const { return config_; }
  // The main event loop (timers, strands, listeners); connections run on
  // all of pool().
  boost::asio::io_context& ioc() { return pool_.main(); }
  IoContextPool& pool() { return pool_; }
  metrics::Registry& registry() { return registry_; }
  // The keys in force: SIGHUP and POST /internal/reload replace them.
  const AuthenticatorSlot* auth() const { return auth_.get(); }
  // Re-reads the config file (keys, tier limits); null when the config
  // was not read from a file.
  ConfigReloader* reloader() const { return reloader_.get(); }
  redis::RedisClient* redis() const { return redis_.get(); }
  // The client for calls made on the event loop (the gateway's enqueue and
  // withdraw calls): on a single server a second connection whose I/O runs
  // on ioc() (redis/event_loop_connection.h), so those calls cost no thread
  // hand-off; with Redis Cluster, redis(). Made on the first call, which
  // must come before Run(). Errors: as MakeRedisClient's.
  Result<redis::RedisClient*> event_loop_redis();
  redis::RedisRateLimiter* separate_limiter() const { return separate_limiter_.get(); }
  RequestLog* log() const { return log_.get(); }
  // Null when tracing is off (no tracing.otlp_endpoint).
  const tracing::Tracer* tracer() const { return tracing_->tracer(); }
  // The workers' dead letters (kept here and pushed to Redis).
  DeadLetterQueue* dead_letters() const { return dead_letters_.get(); }
  // Every model's dead letters in Redis (workers' and reapers').
  redis::RedisDeadLetters* shared_dead_letters() const { return shared_dead_letters_.get(); }
  // The Drainer's executor (a strand on ioc()).
  Executor& control() { return control_; }

  // Runs the event loops on server.io_threads threads until `drain` calls
  // stop(); SIGINT/SIGTERM call drain.Begin() (caught from Create() on, so
  // a signal that arrives while the roles start is not lost).
  // options.executor and options.stop are filled in here.
  void Run(Drainer::Options drain);
  // Ends the Redis client's threads. After every role's Close().
  void CloseRedis();

 private:
  explicit ScaleOutProcess(const AppConfig& config);
  std::vector<const redis::RedisClient*> RedisClients() const;

  const AppConfig& config_;
  std::string client_name_;
  IoContextPool pool_;
  metrics::Registry registry_;
  AsioExecutor control_;
  std::unique_ptr<AuthenticatorSlot> auth_;
  std::unique_ptr<ConfigReloader> reloader_;
  std::unique_ptr<ReloadSignal> reload_signal_;  // SIGHUP
  std::unique_ptr<RequestLog> log_;              // before the client: outlives its callbacks
  std::unique_ptr<ProcessTracing> tracing_;
  std::unique_ptr<redis::RedisClient> redis_;
  std::unique_ptr<redis::RedisClient> loop_redis_;  // event_loop_redis(); closed first
  std::unique_ptr<redis::RedisRateLimiter> separate_limiter_;
  std::unique_ptr<redis::RedisDeadLetters> shared_dead_letters_;
  std::unique_ptr<DeadLetterQueue> dead_letters_;
  std::unique_ptr<Drainer> drainer_;  // set by Run()
  std::unique_ptr<ShutdownSignals> signals_;
};

}  // namespace sluice
