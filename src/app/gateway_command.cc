#include "app/gateway_command.h"

#include <cstdio>
#include <functional>
#include <random>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "app/capacity_feed.h"
#include "app/front_door_setup.h"
#include "app/redis_setup.h"
#include "app/request_log_factory.h"
#include "common/asio_executor.h"
#include "config/scheduler_options.h"
#include "core/inference_service.h"
#include "http/front_door.h"
#include "http/http_server.h"
#include "redis/dead_letters.h"
#include "redis/pending_requests.h"
#include "redis/queue_client.h"
#include "redis/redis_rate_limiter.h"
#include "redis/redis_request_queue.h"
#include "redis/result_listener.h"

namespace sluice {

namespace asio = boost::asio;

namespace {

// Admission's slot count is fixed at creation; the registry's healthy slots
// are clamped to it.
constexpr size_t kMaxSlots = 4096;
// How often pending requests are checked against their total deadline.
constexpr int64_t kExpirySweepMs = 5;

std::string RandomGatewayId() {
  std::random_device rd;
  return fmt::format("gw-{:08x}", static_cast<uint32_t>(rd()));
}

// A repeating timer on the io_context running `fn` every `period_ms` until
// `fn` returns false or the context stops.
void Every(asio::steady_timer& timer, int64_t period_ms, std::function<bool()> fn) {
  timer.expires_after(std::chrono::milliseconds(period_ms));
  timer.async_wait([&timer, period_ms, fn = std::move(fn)](boost::system::error_code ec) {
    if (ec || !fn()) return;
    Every(timer, period_ms, fn);
  });
}

const char* StateName(redis::RedisClient::State s) {
  switch (s) {
    case redis::RedisClient::State::kUp:
      return "up";
    case redis::RedisClient::State::kConnecting:
      return "connecting";
    case redis::RedisClient::State::kDown:
      return "down";
  }
  return "down";
}

}  // namespace

int RunGateway(const AppConfig& config) {
  if (!config.redis.configured) {
    spdlog::error("sluice gateway needs a `redis:` section in its config");
    return 2;
  }
  asio::io_context ioc(config.server.io_threads);
  metrics::Registry registry;
  auto auth = MakeAuthenticator(config);
  if (!auth.ok()) {
    spdlog::error("{}", auth.status().message());
    return 2;
  }
  const std::string gateway_id =
      config.redis.gateway_id.empty() ? RandomGatewayId() : config.redis.gateway_id;
  const redis::KeySpace keys(config.redis.key_prefix);
  auto connection = MakeRedisClient(config.redis, "sluice-" + gateway_id);
  if (!connection.ok()) {
    spdlog::error("{}", connection.status().message());
    return 2;
  }
  redis::RedisClient* conn = connection->get();
  const std::unique_ptr<redis::RedisRateLimiter> separate_limiter =
      SeparateRateLimiter(config.redis, conn, keys);
  // Runs the enqueue batchers' end-of-turn flushes (one strand for all models).
  AsioExecutor enqueue_strand(ioc);

  redis::PendingRequests pending;
  std::vector<std::unique_ptr<redis::RedisQueueClient>> clients;
  std::vector<std::unique_ptr<redis::RedisRequestQueue>> queues;
  std::vector<std::unique_ptr<BatchCostModel>>
      cost_models;  // before the controllers that read them
  std::vector<std::unique_ptr<AdmissionController>> admissions;
  InferenceService::Options service_options;
  service_options.tiers = config.tiers;
  CapacityFeed::Options feed_options;
  for (const ModelConfig& mc : config.models) {
    redis::RedisQueueClient::Options qo;
    qo.connection = conn;
    qo.keys = keys;
    qo.tier_count = config.tiers.size();
    qo.capacity = mc.queue_capacity;
    qo.separate_limiter = separate_limiter.get();
    qo.queue_shards = static_cast<size_t>(config.redis.queue_shards);
    auto client = redis::RedisQueueClient::Create(qo);
    if (!client.ok()) {
      spdlog::error("{}", client.status().message());
      return 2;
    }
    redis::RedisRequestQueue::Options rqo;
    rqo.client = client->get();
    rqo.pending = &pending;
    rqo.model = mc.name;
    rqo.gateway_id = gateway_id;
    rqo.executor = &enqueue_strand;
    rqo.max_batch = static_cast<size_t>(config.redis.enqueue_max_batch);
    rqo.max_delay = Micros(config.redis.enqueue_max_delay_us);
    auto queue = redis::RedisRequestQueue::Create(rqo);
    if (!queue.ok()) {
      spdlog::error("models: '{}': {}", mc.name, queue.status().message());
      return 2;
    }
    AdmissionController* admission = nullptr;
    BatchCostModel* cost_model = nullptr;
    if (config.admission.enabled) {
      // The workers' measured throughput reaches it through the capacity feed.
      auto cost = BatchCostModel::Create(CostPriorFor(mc));
      if (!cost.ok()) {
        spdlog::error("{}", cost.status().message());
        return 2;
      }
      cost_model = cost->get();
      cost_models.push_back(std::move(cost).value());
      AdmissionController::Options ao = AdmissionOptionsFor(config, mc);
      ao.total_slots = kMaxSlots;
      ao.cost_model = cost_model;
      auto a = AdmissionController::Create(ao);
      if (!a.ok()) {
        spdlog::error("{}", a.status().message());
        return 2;
      }
      admission = a->get();
      admission->SetHealthySlots(0);  // until the registry says otherwise
      admissions.push_back(std::move(a).value());
    }
    service_options.models.push_back(
        {mc.name, mc.version, mc.max_tokens_limit, mc.default_max_tokens, queue->get(), admission});
    feed_options.models.push_back(
        {mc.name, mc.max_batch_size, admission, cost_model, queue->get()});
    clients.push_back(std::move(client).value());
    queues.push_back(std::move(queue).value());
  }
  // Request rows (final status) come from the gateways; batch rows from
  // the workers. Every process writes to the same database.
  auto log = MakeRequestLog(config, &registry, /*worker_id=*/"");
  if (!log.ok()) {
    spdlog::error("request_log: {}", log.status().message());
    return 2;
  }
  service_options.log = log->get();
  // No local limiter: the enqueue script checks the key's limit in Redis.
  auto service = InferenceService::Create(service_options);
  if (!service.ok()) {
    spdlog::error("{}", service.status().message());
    return 2;
  }

  auto workers = redis::RedisWorkerRegistry::Create({conn, keys, config.redis.heartbeat_ttl_ms});
  if (!workers.ok()) {
    spdlog::error("{}", workers.status().message());
    return 2;
  }
  feed_options.registry = workers->get();
  feed_options.connection = conn;
  feed_options.tier_count = config.tiers.size();
  CapacityFeed feed(ioc, feed_options);

  redis::RedisResultListener::Options lo;
  lo.subscriber = RedisSubscriberOptions(config.redis);
  lo.keys = keys;
  lo.gateway_id = gateway_id;
  // One hand-off to the I/O threads per message (a worker's batch), not one
  // per result: the answers are written from there without further wakeups.
  lo.on_results = [&ioc, &pending](std::vector<redis::WireResult>&& batch) {
    asio::post(ioc, [&pending, batch = std::move(batch)]() mutable {
      for (redis::WireResult& r : batch) pending.Deliver(std::move(r));
    });
  };
  auto listener = redis::RedisResultListener::Create(std::move(lo));
  if (!listener.ok()) {
    spdlog::error("{}", listener.status().message());
    return 2;
  }

  std::vector<std::string> model_names, tier_names;
  for (const auto& m : config.models) model_names.push_back(m.name);
  for (const auto& t : config.tiers) tier_names.push_back(t.name);
  http::RequestMetrics request_metrics(&registry, model_names, tier_names, SystemClock());
  AddRedisConnectionMetrics(registry, *conn);
  registry.AddCallbackGauge("sluice_redis_subscribed",
                            "1 while the result channel is subscribed, else 0.", {},
                            [l = listener->get()] { return l->subscribed() ? 1.0 : 0.0; });
  registry.AddCallbackGauge("sluice_redis_pending_requests",
                            "Requests queued in Redis and waiting for their result.", {},
                            [&pending] { return static_cast<double>(pending.size()); });
  registry.AddCallbackGauge(
      "sluice_redis_dropped_results_total",
      "Results for requests this gateway no longer waits for (answered, expired).", {},
      [&pending] { return static_cast<double>(pending.stats().dropped_results); });
  registry.AddCallbackGauge(
      "sluice_redis_result_timeouts_total",
      "Requests answered 504 because no result arrived before their total deadline.", {},
      [&pending] { return static_cast<double>(pending.stats().expired); });
  registry.AddCallbackGauge("sluice_redis_results_total", "Results received on the channel.", {},
                            [l = listener->get()] { return static_cast<double>(l->results()); });
  for (size_t i = 0; i < config.models.size(); ++i) {
    registry.AddCallbackGauge("sluice_redis_enqueue_failures_total",
                              "Requests answered 503 because Redis was down or did not answer.",
                              {{"model", config.models[i].name}}, [q = queues[i].get()] {
                                return static_cast<double>(q->redis_errors());
                              });
    registry.AddCallbackGauge("sluice_redis_enqueue_calls_total",
                              "Enqueue script calls (each carries a batch of requests).",
                              {{"model", config.models[i].name}}, [q = queues[i].get()] {
                                return static_cast<double>(q->batching().batches);
                              });
    registry.AddCallbackGauge(
        "sluice_redis_enqueued_requests_total",
        "Requests sent to Redis by the enqueue script calls.", {{"model", config.models[i].name}},
        [q = queues[i].get()] { return static_cast<double>(q->batching().items); });
    registry.AddCallbackGauge(
        "sluice_healthy_workers", "Live workers with a healthy slot.",
        {{"model", config.models[i].name}},
        [&feed, i] { return static_cast<double>(feed.snapshot(i).capacity.healthy_workers); });
  }

  // Every worker's and reaper's dead letters, from Redis.
  auto dead_letters =
      redis::RedisDeadLetters::Create({conn, keys, model_names, config.server.dead_letter_capacity,
                                       static_cast<size_t>(config.redis.queue_shards)});
  if (!dead_letters.ok()) {
    spdlog::error("{}", dead_letters.status().message());
    return 2;
  }

  http::FrontDoor::Options fd;
  fd.auth = auth->get();
  fd.service = service->get();
  fd.log = log->get();
  fd.dead_letters = dead_letters->get();
  fd.watch_client_min_queue_depth = config.server.watch_client_min_queue_depth;
  fd.metrics = &request_metrics;
  InferenceService* svc = service->get();
  redis::RedisResultListener* lst = listener->get();
  fd.health = [&, svc, conn, lst] {
    http::HealthSnapshot h;
    const bool redis_up = conn->state() == redis::RedisClient::State::kUp;
    h.status = redis_up ? "healthy" : "unavailable";
    size_t live_workers = 0;
    double busy = 0, slots = 0;
    for (size_t i = 0; i < config.models.size(); ++i) {
      CapacityFeed::Snapshot s = feed.snapshot(i);
      http::ModelHealth mh;
      mh.name = config.models[i].name;
      mh.queue_depth = queues[i]->Depth();
      mh.devices = s.capacity.healthy_slots;
      mh.healthy_devices = s.capacity.healthy_slots;
      double model_busy = 0;
      for (const redis::WorkerHeartbeat& w : s.capacity.workers) {
        mh.endpoints.push_back({w.worker_id + " " + w.endpoint,
                                w.healthy_slots > 0 ? BreakerState::kClosed : BreakerState::kOpen,
                                w.healthy_slots});
        model_busy += w.utilisation * w.healthy_slots;
      }
      mh.utilization = mh.devices > 0 ? model_busy / static_cast<double>(mh.devices) : 0;
      busy += model_busy;
      slots += static_cast<double>(mh.devices);
      live_workers += s.capacity.healthy_workers;
      if (AdmissionController* a = svc->model(i).admission) {
        mh.admission = true;
        mh.capacity = a->Snapshot();
      }
      if (mh.healthy_devices == 0) h.status = "unavailable";
      h.queue_depth += mh.queue_depth;
      h.models.push_back(std::move(mh));
    }
    h.gpu_utilization = slots > 0 ? busy / slots : 0;
    h.requests_per_second = request_metrics.RequestsPerSecond();
    if (svc->shutting_down()) h.status = "draining";
    h.redis = http::RedisHealth{StateName(conn->state()),    gateway_id,
                                lst->subscribed(),           pending.size(),
                                conn->stats().commands_sent, live_workers};
    return h;
  };
  fd.render_metrics = [&registry] { return registry.RenderPrometheus(); };
  auto listeners = FrontDoorListeners::Create(ioc, config, std::move(fd));
  if (!listeners.ok()) {
    spdlog::error("{}", listeners.status().message());
    return 1;
  }
  (*listeners)->AddMetrics(registry);
  http::HttpServer* srv = &(*listeners)->public_server();

  asio::steady_timer expiry(ioc);
  Every(expiry, kExpirySweepMs, [&pending] {
    pending.ExpireUntil(SystemClock()->Now());
    return true;
  });

  // Graceful drain: stop accepting, wait for pending answers, then 503 the rest.
  asio::steady_timer drain(ioc);
  int signals_seen = 0;
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](boost::system::error_code ec, int) {
      if (ec) return;
      if (++signals_seen > 1) {
        spdlog::warn("second signal: stopping without finishing the drain");
        ioc.stop();
        return;
      }
      spdlog::info("shutting down: draining for up to {} ms", config.server.drain_timeout_ms);
      (*listeners)->StopAccepting();
      svc->BeginShutdown();
      feed.Stop();
      const TimePoint deadline = SystemClock()->Now() + Millis(config.server.drain_timeout_ms);
      Every(drain, 5, [&, deadline] {
        const bool idle = pending.size() == 0 && srv->requests_in_progress() == 0;
        if (!idle && SystemClock()->Now() < deadline) return true;
        for (RequestPtr& r : pending.TakeAll()) {
          InferenceOutcome o;
          o.status = Unavailable("the gateway shut down before this request was answered");
          r->Complete(std::move(o));
        }
        // A bounded moment for the last responses to be written.
        drain.expires_after(std::chrono::milliseconds(idle ? 0 : 500));
        drain.async_wait([&ioc](boost::system::error_code) { ioc.stop(); });
        return false;
      });
      wait_signal();
    });
  };
  wait_signal();

  conn->WaitUntilUp(std::chrono::milliseconds(config.redis.connect_timeout_ms));
  lst->WaitUntilSubscribed(std::chrono::milliseconds(config.redis.connect_timeout_ms));
  feed.Start();
  (*listeners)->Start(config);
  spdlog::info("gateway {}: Redis {} ({}), {} model(s), {} I/O thread(s)", gateway_id,
               RedisTargetName(config.redis), StateName(conn->state()), config.models.size(),
               config.server.io_threads);
  RunIoContext(ioc, config.server.io_threads);

  // Callbacks still in flight reference the objects above: end the Redis
  // threads first, while everything they touch is alive.
  listener->reset();
  connection->reset();
  return 0;
}

}  // namespace sluice
