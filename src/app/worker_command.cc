#include "app/worker_command.h"

#include <unistd.h>

#include <cstdio>
#include <functional>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "app/backend_slots.h"
#include "app/batch_metrics.h"
#include "app/claim_loop.h"
#include "app/front_door_setup.h"
#include "app/redis_setup.h"
#include "app/request_log_factory.h"
#include "common/asio_executor.h"
#include "config/scheduler_options.h"
#include "core/dead_letter_queue.h"
#include "core/memory_queue.h"
#include "http/front_door.h"
#include "limits/throughput_estimator.h"
#include "metrics/rate_meter.h"
#include "redis/dead_letters.h"
#include "redis/reaper.h"
#include "redis/redis_rate_limiter.h"
#include "redis/worker_registry.h"

namespace sluice {

namespace asio = boost::asio;

namespace {

// The worker's measured throughput per slot, for its heartbeats: fed on
// the group's strand after each successful batch, read by the heartbeat
// timer.
class ThroughputFeed {
 public:
  explicit ThroughputFeed(const ModelConfig& model) : estimator_(EstimatorOptions(model)) {}

  void AddBatch(size_t batch_size, SteadyClock::duration time) {
    std::lock_guard lock(mu_);
    estimator_.AddBatch(SystemClock()->Now(), batch_size, time);
  }
  double PerSlotRps() const {
    std::lock_guard lock(mu_);
    return estimator_.ItemsPerSecond();
  }

 private:
  static BatchThroughputEstimator::Options EstimatorOptions(const ModelConfig& m) {
    BatchThroughputEstimator::Options o;
    o.max_batch_size = m.max_batch_size;
    if (m.backend.kind == "sim") {
      o.prior_batch_fixed_us = std::max<int64_t>(1, m.backend.sim.fixed_latency_us);
      o.prior_batch_per_item_us = m.backend.sim.per_item_latency_us;
    }
    return o;
  }

  mutable std::mutex mu_;
  BatchThroughputEstimator estimator_;  // GUARDED_BY(mu_)
};

// GET /internal/health and GET /metrics (service token) of a worker.
class WorkerStatusHandler final : public http::RequestHandler {
 public:
  WorkerStatusHandler(const Authenticator* auth, std::function<std::string()> health,
                      std::function<std::string()> metrics)
      : auth_(auth), health_(std::move(health)), metrics_(std::move(metrics)) {}

  void Handle(http::HttpRequest&& request, http::Reply reply) override {
    const std::string_view target = request.target();
    const std::string_view path = target.substr(0, target.find('?'));
    if (path != "/internal/health" && path != "/metrics") {
      return reply(http::MakeError(request, NotFound("no route for " + std::string(path))));
    }
    if (request.method() != http::bhttp::verb::get) {
      return reply(http::MakeError(request, Status(ErrorCode::kMethodNotAllowed, "use GET")));
    }
    auto it = request.find(http::bhttp::field::authorization);
    std::string_view token;
    if (it != request.end() && it->value().starts_with("Bearer ")) {
      token = it->value().substr(7);
    }
    if (!auth_->IsServiceToken(token)) {
      return reply(http::MakeError(
          request, Status(ErrorCode::kUnauthenticated, "internal endpoints need a service token")));
    }
    if (path == "/metrics") {
      return reply(http::MakeResponse(request, 200, metrics_(), "text/plain; version=0.0.4"));
    }
    reply(http::MakeResponse(request, 200, health_()));
  }

 private:
  const Authenticator* auth_;
  std::function<std::string()> health_;
  std::function<std::string()> metrics_;
};

std::string DefaultWorkerId(const std::string& model, std::optional<size_t> endpoint) {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::string id = fmt::format("{}-{}-{}", host[0] ? host : "worker", ::getpid(), model);
  if (endpoint) id += "-" + std::to_string(*endpoint);
  return id;
}

void Every(asio::steady_timer& timer, int64_t period_ms, std::function<bool()> fn) {
  timer.expires_after(std::chrono::milliseconds(period_ms));
  timer.async_wait([&timer, period_ms, fn = std::move(fn)](boost::system::error_code ec) {
    if (ec || !fn()) return;
    Every(timer, period_ms, fn);
  });
}

}  // namespace

int RunWorker(const AppConfig& config, const WorkerFlags& flags) {
  if (!config.redis.configured) {
    spdlog::error("sluice worker needs a `redis:` section in its config");
    return 2;
  }
  const ModelConfig* model = &config.models.front();
  if (!flags.model.empty()) {
    model = nullptr;
    for (const ModelConfig& m : config.models) {
      if (m.name == flags.model) model = &m;
    }
    if (model == nullptr) {
      spdlog::error("--model {}: not in the config's models", flags.model);
      return 2;
    }
  }
  const std::string worker_id = config.worker.id.empty()
                                    ? DefaultWorkerId(model->name, flags.endpoint_index)
                                    : config.worker.id;
  asio::io_context ioc(config.server.io_threads);
  metrics::Registry registry;
  AsioExecutor strand(ioc);
  auto auth = MakeAuthenticator(config);
  if (!auth.ok()) {
    spdlog::error("{}", auth.status().message());
    return 2;
  }
  const redis::KeySpace keys(config.redis.key_prefix);
  auto connection = MakeRedisClient(config.redis, "sluice-" + worker_id);
  if (!connection.ok()) {
    spdlog::error("{}", connection.status().message());
    return 2;
  }
  redis::RedisClient* conn = connection->get();
  const std::unique_ptr<redis::RedisRateLimiter> separate_limiter =
      SeparateRateLimiter(config.redis, conn, keys);
  // Every dead letter also goes to the model's list in Redis, where any
  // gateway serves it.
  auto shared_dead_letters = redis::RedisDeadLetters::Create(
      {conn, keys, {model->name}, config.server.dead_letter_capacity});
  if (!shared_dead_letters.ok()) {
    spdlog::error("{}", shared_dead_letters.status().message());
    return 2;
  }
  auto built = MakeBackendSlots(ioc, *model, &strand, flags.endpoint_index);
  if (!built.ok()) {
    spdlog::error("{}", built.status().message());
    return 2;
  }
  const std::string endpoint = built->endpoint;
  const size_t slot_count = built->slots.size();
  auto local_queue = MemoryQueue::Create(
      {model->max_batch_size * (slot_count + 2), config.ordering, config.tiers});
  DeadLetterQueue::Options dlo;
  dlo.capacity = config.server.dead_letter_capacity;
  dlo.on_add = [shared = shared_dead_letters->get()](const DeadLetter& d) { shared->Push(d); };
  auto dead_letters = DeadLetterQueue::Create(dlo);
  if (!local_queue.ok() || !dead_letters.ok()) {
    spdlog::error(
        "{}", local_queue.ok() ? dead_letters.status().message() : local_queue.status().message());
    return 2;
  }
  auto log = MakeRequestLog(config, &registry, worker_id);  // batch rows
  if (!log.ok()) {
    spdlog::error("request_log: {}", log.status().message());
    return 2;
  }
  ThroughputFeed throughput(*model);
  // The same batch metrics and log lines as `serve`.
  BatchMetrics::Options bm;
  bm.model = model->name;
  bm.max_batch_size = model->max_batch_size;
  bm.endpoint_names = built->endpoint_names;
  bm.registry = &registry;
  bm.on_batch_ok = [&throughput](size_t n, SteadyClock::duration t) { throughput.AddBatch(n, t); };
  BatchMetrics observer(std::move(bm));
  LocalResultRouter router;  // completions go to ClaimLoop, which answers via Redis
  // The model's learnt batch cost (the same prior as `serve`): the group's
  // adaptive target tells the claim loop how full a batch to wait for.
  auto cost = BatchCostModel::Create(CostPriorFor(*model));
  if (!cost.ok()) {
    spdlog::error("{}", cost.status().message());
    return 2;
  }
  DispatchGroup::Options g;
  g.model = model->name;
  g.max_batch_size = model->max_batch_size;
  g.max_batch_delay_us = 0;  // the claim already waited: dispatch what was claimed
  g.batching = model->batching;
  g.cost_model = cost->get();
  g.accelerator_timeout_us = model->accelerator_timeout_ms * 1000;
  g.retry = model->retry;
  g.breaker = model->circuit_breaker;
  g.slot_endpoints = built->slot_endpoints;
  g.endpoint_names = built->endpoint_names;
  g.dead_letters = dead_letters->get();
  g.log = log->get();
  g.executor = &strand;
  g.queue = local_queue->get();
  g.router = &router;
  g.observer = &observer;
  auto group = DispatchGroup::Create(g, std::move(built->slots));
  if (!group.ok()) {
    spdlog::error("{}", group.status().message());
    return 2;
  }
  DispatchGroup* grp = group->get();

  redis::RedisBatchClaimer::Options co;
  co.connection = conn;
  co.separate_limiter = separate_limiter.get();
  co.keys = keys;
  co.model = model->name;
  co.tiers = config.tiers;
  co.ordering = config.ordering;
  co.lease_us = config.redis.lease_ms * 1000;
  co.max_block_ms = config.worker.max_block_ms;
  const size_t shards = static_cast<size_t>(config.redis.queue_shards);
  co.queue_shards = shards;
  // Workers of one model spread their home shards: by endpoint, or else by
  // the hash of their id.
  co.home_shard = flags.endpoint_index ? *flags.endpoint_index % shards
                                       : redis::ShardOfRequest(worker_id, shards);
  auto claimer = redis::RedisBatchClaimer::Create(co);
  auto workers = redis::RedisWorkerRegistry::Create({conn, keys, config.redis.heartbeat_ttl_ms});
  auto reaper =
      redis::RedisReaper::Create(ReaperOptions(conn, keys, config, model->retry.max_retries));
  if (!claimer.ok() || !workers.ok() || !reaper.ok()) {
    spdlog::error("{}", !claimer.ok()   ? claimer.status().message()
                        : !workers.ok() ? workers.status().message()
                                        : reaper.status().message());
    return 2;
  }

  auto wait_connection = conn->NewBlockingClient(
      "-wake",
      std::max<int64_t>(config.redis.command_timeout_ms, config.worker.max_block_ms + 1'000));
  if (!wait_connection.ok()) {
    spdlog::error("{}", wait_connection.status().message());
    return 2;
  }
  ClaimLoop::Options lo;
  lo.wait_connection = wait_connection->get();
  lo.wake_key = keys.Wake(redis::QueueShard(model->name, co.home_shard));
  lo.claimer = claimer->get();
  lo.local_queue = local_queue->get();
  lo.group = grp;
  lo.strand = &strand;
  lo.worker_id = worker_id;
  lo.max_batch_size = model->max_batch_size;
  lo.max_batch_delay_us = model->max_batch_delay_us;
  // The claim thread renews leases between claims: it must come round more
  // often than lease / 4.
  lo.renew_interval_ms = std::max<int64_t>(config.redis.lease_ms / 4, 1);
  lo.claim_timeout_ms =
      std::clamp<int64_t>(lo.renew_interval_ms / 2, 1, config.worker.max_block_ms);
  // A sharded queue's other shards wake only their home workers: look at
  // them at least every 100 ms while idle.
  if (shards > 1) lo.claim_timeout_ms = std::min<int64_t>(lo.claim_timeout_ms, 100);
  ClaimLoop claims(lo);

  AddRedisConnectionMetrics(registry, *conn);
  metrics::Labels labels{{"model", model->name}};
  const std::pair<const char*, uint64_t ClaimLoop::Stats::*> counters[] = {
      {"sluice_worker_batches_claimed_total", &ClaimLoop::Stats::batches},
      {"sluice_worker_requests_claimed_total", &ClaimLoop::Stats::requests},
      {"sluice_worker_expired_at_claim_total", &ClaimLoop::Stats::expired},
      {"sluice_worker_lease_renewals_total", &ClaimLoop::Stats::renew_calls},
      {"sluice_worker_lease_renewal_errors_total", &ClaimLoop::Stats::renew_errors},
      {"sluice_worker_claim_errors_total", &ClaimLoop::Stats::claim_errors},
      {"sluice_worker_complete_calls_total", &ClaimLoop::Stats::complete_calls},
      {"sluice_worker_complete_errors_total", &ClaimLoop::Stats::complete_errors},
      {"sluice_worker_complete_retries_total", &ClaimLoop::Stats::complete_retries}};
  for (const auto& [name, field] : counters) {
    registry.AddCallbackGauge(name, "Worker claim loop counter (see app/claim_loop.h).", labels,
                              [&claims, field = field] { return double(claims.stats().*field); });
  }
  registry.AddCallbackGauge(
      "sluice_worker_undelivered_results_total",
      "Answers no gateway took: published to a gateway that no longer listened, or for "
      "requests answered elsewhere (stale).",
      labels, [c = claimer->get()] {
        auto s = c->stats();
        return double(s.dropped_results + s.stale_results);
      });
  registry.AddCallbackGauge("sluice_accelerator_busy_slots", "Slots running a batch now.", labels,
                            [grp] { return double(grp->busy_slots()); });
  registry.AddCallbackGauge("sluice_accelerator_healthy_slots", "Slots in service.", labels,
                            [grp] { return double(grp->available_slots()); });

  auto heartbeat = [&]() -> redis::WorkerHeartbeat {
    redis::WorkerHeartbeat b;
    b.worker_id = worker_id;
    b.model = model->name;
    b.endpoint = endpoint;
    b.utilisation = observer.Utilization(slot_count);
    // A probing (half-open) endpoint counts: gateways must admit its probe
    // batch, or a worker whose breakers all opened would never close them.
    b.healthy_slots = static_cast<uint32_t>(grp->batch_room());
    b.throughput_rps = throughput.PerSlotRps() * b.healthy_slots;
    return b;
  };
  WorkerStatusHandler status(
      auth->get(),
      [&] {
        redis::WorkerHeartbeat b = heartbeat();
        return fmt::format(
            R"({{"status":"{}","worker_id":"{}","model":"{}","endpoint":"{}","redis":"{}",)"
            R"("slots":{},"healthy_slots":{},"busy_slots":{},"batches_in_flight":{},)"
            R"("utilization":{:.4f},"throughput_rps":{:.1f}}})",
            claims.finished() ? "draining" : "serving", worker_id, model->name, endpoint,
            conn->state() == redis::RedisClient::State::kUp ? "up" : "down", slot_count,
            b.healthy_slots, grp->busy_slots(), claims.batches_in_flight(), b.utilisation,
            b.throughput_rps);
      },
      [&registry] { return registry.RenderPrometheus(); });
  http::HttpServer::Options so = HttpServerOptions(config.server, &status);
  so.port = flags.port;
  auto server = http::HttpServer::Create(ioc, so);
  if (!server.ok()) {
    spdlog::error("{}", server.status().message());
    return 1;
  }

  http::HttpServer* srv = server->get();

  asio::steady_timer beat_timer(ioc), reap_timer(ioc), drain_timer(ioc);
  const int64_t beat_ms = std::max<int64_t>(config.redis.heartbeat_ttl_ms / 3, 1);
  std::atomic<bool> draining{false};
  Every(beat_timer, beat_ms, [&] {
    if (draining.load()) return false;
    workers->get()->HeartbeatAsync(heartbeat(), [](Status s) {
      if (!s.ok()) spdlog::debug("heartbeat failed: {}", s.message());
    });
    return true;
  });
  const int64_t reap_ms = config.worker.reap_interval_ms > 0 ? config.worker.reap_interval_ms
                                                             : config.redis.lease_ms / 4;
  const std::string model_name = model->name;
  Every(reap_timer, std::max<int64_t>(reap_ms, 1), [&] {
    reaper->get()->ReapAsync(model_name, [](Result<redis::RedisReaper::Outcome> o) {
      if (o.ok() && (o->requeued > 0 || o->dead_lettered > 0)) {
        spdlog::warn("reaper: {} request(s) re-queued, {} dead-lettered (lost leases)", o->requeued,
                     o->dead_lettered);
      }
    });
    return true;
  });

  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](boost::system::error_code ec, int) {
      if (ec) return;
      if (draining.exchange(true)) {
        spdlog::warn("second signal: stopping without finishing the drain");
        ioc.stop();
        return;
      }
      spdlog::info("shutting down: finishing batches in flight (up to {} ms)",
                   config.server.drain_timeout_ms);
      claims.Stop();
      srv->StopAccepting();
      const TimePoint deadline = SystemClock()->Now() + Millis(config.server.drain_timeout_ms);
      Every(drain_timer, 5, [&, deadline] {
        const bool idle =
            claims.finished() && claims.batches_in_flight() == 0 && claims.answers_in_flight() == 0;
        if (!idle && SystemClock()->Now() < deadline) return true;
        if (!idle) spdlog::warn("drain timeout: unanswered requests are left to the reaper");
        ioc.stop();
        return false;
      });
      wait_signal();
    });
  };
  wait_signal();

  conn->WaitUntilUp(std::chrono::milliseconds(config.redis.connect_timeout_ms));
  grp->Start();
  // First heartbeat before claiming, so gateways count this worker at once.
  workers->get()->HeartbeatAsync(heartbeat(), [](Status) {});
  claims.Start();
  srv->Start();
  if (flags.announce) {
    std::printf("sluice: listening on http://%s:%u\n", config.server.listen_address.c_str(),
                static_cast<unsigned>(srv->port()));
    std::fflush(stdout);
  }
  spdlog::info("worker {}: model '{}' on {} ({} slot(s)), Redis {}", worker_id, model->name,
               endpoint, slot_count, RedisTargetName(config.redis));
  RunIoContext(ioc, config.server.io_threads);

  claims.Stop();
  claims.Join();
  if (Status s = workers->get()->Deregister(model->name, worker_id); !s.ok()) {
    spdlog::warn("deregister failed: {} (the registry drops this worker after its TTL)",
                 s.message());
  }
  // Callbacks still in flight reference the objects above: end the Redis
  // threads first, while everything they touch is alive.
  claimer->reset();
  connection->reset();
  return 0;
}

}  // namespace sluice
