#include "app/scale_out_process.h"

#include "app/front_door_setup.h"
#include "app/redis_setup.h"
#include "app/request_log_factory.h"
#include "redis/dead_letters.h"
#include "redis/redis_rate_limiter.h"

namespace sluice {

ScaleOutProcess::ScaleOutProcess(const AppConfig& config)
    : config_(config), pool_(config.server.io_threads), control_(pool_.main()) {}

ScaleOutProcess::~ScaleOutProcess() { CloseRedis(); }

Result<std::unique_ptr<ScaleOutProcess>> ScaleOutProcess::Create(const AppConfig& config,
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
  p->auth_ = std::move(auth).value();
  auto log = MakeRequestLog(config, &p->registry_, log_worker_id);
  if (!log.ok()) return InvalidArgument("request_log: " + log.status().message());
  p->log_ = std::move(log).value();
  auto client = MakeRedisClient(config.redis, client_name);
  if (!client.ok()) return client.status();
  p->redis_ = std::move(client).value();
  const redis::KeySpace keys(config.redis.key_prefix);
  p->separate_limiter_ = SeparateRateLimiter(config.redis, p->redis_.get(), keys);
  AddRedisConnectionMetrics(p->registry_, *p->redis_);
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

void ScaleOutProcess::CloseRedis() {
  // The client first: destroying it fails the commands still queued, and
  // their callbacks may use the limiter (token refunds).
  redis_.reset();
  separate_limiter_.reset();
  shared_dead_letters_.reset();
}

}  // namespace sluice
