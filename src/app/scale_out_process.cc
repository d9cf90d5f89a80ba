#include "app/scale_out_process.h"

#include "app/front_door_setup.h"
#include "app/redis_setup.h"
#include "app/reload_signal.h"
#include "app/request_log_factory.h"
#include "redis/dead_letters.h"
#include "redis/event_loop_connection.h"
#include "redis/redis_rate_limiter.h"

namespace sluice {

ScaleOutProcess::ScaleOutProcess(const AppConfig& config)
    : config_(config), pool_(config.server.io_threads), control_(pool_.main()) {}

ScaleOutProcess::~ScaleOutProcess() { CloseRedis(); }

Result<std::unique_ptr<ScaleOutProcess>> ScaleOutProcess::Create(const AppConfig& config,
                                                                 const std::string& role,
                                                                 const std::string& client_name,
                                                                 const std::string& log_worker_id) {
  if (!config.redis.configured) return InvalidArgument("needs a `redis:` section in its config");
  std::unique_ptr<ScaleOutProcess> p(new ScaleOutProcess(config));
  // Caught from now on; handled on the run loop, where drainer_ is set.
  p->signals_ = std::make_unique<ShutdownSignals>(p->pool_.main(), p->control_, [raw = p.get()] {
    if (raw->drainer_) raw->drainer_->Begin();
  });
  auto auth = MakeAuthenticator(config);
  if (!auth.ok()) return auth.status();
  p->auth_ = std::make_unique<AuthenticatorSlot>(
      std::shared_ptr<const Authenticator>(std::move(auth).value()));
  if (!config.source_path.empty()) {
    auto reloader = ConfigReloader::Create(config, p->auth_.get());
    if (!reloader.ok()) return reloader.status();
    p->reloader_ = std::move(reloader).value();
    // SIGHUP reloads from now on, each process its own file.
    p->reload_signal_ = std::make_unique<ReloadSignal>(p->pool_.main(), p->reloader_.get());
  }
  auto log = MakeRequestLog(config, &p->registry_, log_worker_id);
  if (!log.ok()) return InvalidArgument("request_log: " + log.status().message());
  p->log_ = std::move(log).value();
  auto tracing = ProcessTracing::Create(config.tracing, role, client_name, &p->registry_);
  if (!tracing.ok()) return tracing.status();
  p->tracing_ = std::move(tracing).value();
  auto client = MakeRedisClient(config.redis, client_name);
  if (!client.ok()) return client.status();
  p->redis_ = std::move(client).value();
  p->client_name_ = client_name;
  const redis::KeySpace keys(config.redis.key_prefix);
  p->separate_limiter_ = SeparateRateLimiter(config.redis, p->redis_.get(), keys);
  AddRedisConnectionMetrics(p->registry_, [raw = p.get()] { return raw->RedisClients(); });
  std::vector<std::string> models;
  for (const ModelConfig& m : config.models) models.push_back(m.name);
  auto shared = redis::RedisDeadLetters::Create({p->redis_.get(), keys, models,
                                                 config.server.dead_letter_capacity,
                                                 static_cast<size_t>(config.redis.queue_shards)});
  if (!shared.ok()) return shared.status();
  p->shared_dead_letters_ = std::move(shared).value();
  DeadLetterQueue::Options dlo;
  dlo.capacity = config.server.dead_letter_capacity;
  dlo.on_add = [raw = p.get()](const DeadLetter& d) {
    if (raw->shared_dead_letters_) raw->shared_dead_letters_->Push(d);  // not after CloseRedis()
  };
  auto dl = DeadLetterQueue::Create(dlo);
  if (!dl.ok()) return dl.status();
  p->dead_letters_ = std::move(dl).value();
  p->registry_.AddCallbackGauge(
      "sluice_dead_letter_queue_size", "Requests held in the dead-letter queue (bounded).", {},
      [d = p->dead_letters_.get()] { return static_cast<double>(d->size()); });
  return p;
}

void ScaleOutProcess::Run(Drainer::Options drain) {
  drain.executor = &control_;
  drain.stop = [this] { pool_.Stop(); };
  drainer_ = std::make_unique<Drainer>(std::move(drain));
  pool_.Run();
}

std::vector<const redis::RedisClient*> ScaleOutProcess::RedisClients() const {
  if (loop_redis_ == nullptr) return {redis_.get()};
  return {redis_.get(), loop_redis_.get()};
}

Result<redis::RedisClient*> ScaleOutProcess::event_loop_redis() {
  if (!config_.redis.cluster_nodes.empty()) return redis_.get();
  if (loop_redis_ == nullptr) {
    auto c = redis::EventLoopConnection::Create(
        pool_.main(), RedisConnectionOptions(config_.redis, client_name_ + "-loop"));
    if (!c.ok()) return c.status();
    loop_redis_ = std::move(c).value();
  }
  return loop_redis_.get();
}

void ScaleOutProcess::CloseRedis() {
  // The clients first: destroying one fails the commands still queued, and
  // their callbacks may use the limiter (token refunds). The event loop's
  // closes on this thread once the loops have stopped (they have, after
  // Run(); before it, nothing runs them).
  pool_.Stop();
  loop_redis_.reset();
  redis_.reset();
  separate_limiter_.reset();
  shared_dead_letters_.reset();
}

}  // namespace sluice
