#include "app/gateway_role.h"

#include <algorithm>
#include <exception>
#include <functional>
#include <optional>
#include <random>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "app/async_tasks.h"
#include "app/capacity_feed.h"
#include "app/front_door_setup.h"
#include "app/redis_setup.h"
#include "app/reload_signal.h"
#include "app/request_collapsers.h"
#include "app/result_caches.h"
#include "app/scale_out_process.h"
#include "common/asio_executor.h"
#include "config/scheduler_options.h"
#include "core/async_backlog.h"
#include "core/inference_service.h"
#include "http/front_door.h"
#include "http/http_server.h"
#include "http/request_metrics.h"
#include "limits/scaling_advisor.h"
#include "redis/collapse_link.h"
#include "redis/dead_letters.h"
#include "redis/pending_requests.h"
#include "redis/queue_client.h"
#include "redis/redis_rate_limiter.h"
#include "redis/redis_request_queue.h"
#include "redis/redis_result_cache.h"
#include "redis/redis_task_store.h"
#include "redis/result_listener.h"
#include "redis/worker_registry.h"

namespace sluice {

namespace asio = boost::asio;

namespace {

// Admission's slot count is fixed at creation; the registry's healthy slots
// are clamped to it.
constexpr size_t kMaxSlots = 4096;
// How often pending requests are checked against their total deadline.
constexpr int64_t kExpirySweepMs = 5;

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

std::string RandomGatewayId() {
  std::random_device rd;
  return fmt::format("gw-{:08x}", static_cast<uint32_t>(rd()));
}

// Declaration order is construction order; destruction runs backwards.
struct GatewayRole::Parts {
  explicit Parts(const Options& o)
      : options(o),
        process(*o.process),
        enqueue_strand(o.process->ioc()),
        task_timers(o.process->ioc()),
        expiry(o.process->ioc()),
        scaling_tick(o.process->ioc()) {}

  Options options;
  ScaleOutProcess& process;
  const AppConfig& config() const { return process.config(); }
  // Runs the enqueue batchers' end-of-turn flushes (one strand for all models).
  AsioExecutor enqueue_strand;
  AsioExecutor task_timers;  // the long polls' (redis_task_store.h)
  redis::PendingRequests pending;
  std::vector<std::unique_ptr<redis::RedisQueueClient>> clients;
  std::vector<std::unique_ptr<redis::RedisRequestQueue>> queues;
  // Per model, in front of its queue: async requests wait here while the
  // queue in Redis is deep (core/async_backlog.h).
  std::vector<std::unique_ptr<AsyncBacklog>> backlogs;
  std::vector<std::unique_ptr<BatchCostModel>> cost_models;  // before the controllers
  std::vector<std::unique_ptr<AdmissionController>> admissions;
  // Per model: the devices the load through this gateway needs (as `serve`).
  std::vector<std::unique_ptr<ScalingAdvisor>> scaling;
  // Charges the requests of the models that cache or collapse (their
  // answers may skip the enqueue script): the process's separate limiter
  // on Redis Cluster, else this one, on the same states.
  std::unique_ptr<redis::RedisRateLimiter> own_limiter;
  std::unique_ptr<ResultCaches> caches;                     // in Redis, shared by the gateways
  std::vector<std::unique_ptr<redis::CollapseLink>> links;  // per model; null: no collapse
  std::unique_ptr<RequestCollapsers> collapsers;
  std::unique_ptr<InferenceService> service;
  std::unique_ptr<AsyncTasks> tasks;  // in Redis: any gateway answers a poll
  std::unique_ptr<redis::RedisWorkerRegistry> workers;
  std::optional<CapacityFeed> feed;
  std::unique_ptr<redis::RedisResultListener> listener;
  std::optional<http::RequestMetrics> request_metrics;
  std::unique_ptr<FrontDoorListeners> listeners;
  asio::steady_timer expiry, scaling_tick;

  Status Build();
  Status BuildTasks();
  void AddMetrics();
  // Answers 504 what is past its total deadline, every kExpirySweepMs.
  void SweepExpired();
  // Feeds the scaling advisors once a second.
  void TickScaling();
  http::HealthSnapshot Health() const;
};

Status GatewayRole::Parts::Build() {
  const AppConfig& cfg = config();
  redis::RedisClient* conn = process.redis();
  Result<redis::RedisClient*> loop_conn = process.event_loop_redis();
  if (!loop_conn.ok()) return loop_conn.status();
  const redis::KeySpace keys(cfg.redis.key_prefix);
  redis::RedisRateLimiter* limiter = process.separate_limiter();
  if (limiter == nullptr) {
    auto l = redis::RedisRateLimiter::Create({conn, keys, 0});
    if (!l.ok()) return l.status();
    own_limiter = std::move(l).value();
    limiter = own_limiter.get();
  }
  auto made =
      ResultCaches::Create(cfg.models, &process.registry(),
                           [&](const ModelConfig& mc) -> Result<std::unique_ptr<ResultCache>> {
                             redis::RedisResultCache::Options co;
                             co.connection = conn;
                             co.keys = keys;
                             co.model = mc.name;
                             co.ttl_ms = mc.cache.ttl_ms;
                             co.max_bytes = mc.cache.max_bytes;
                             auto cache = redis::RedisResultCache::Create(co);
                             if (!cache.ok()) return cache.status();
                             return std::unique_ptr<ResultCache>(std::move(cache).value());
                           });
  if (!made.ok()) return made.status();
  caches = std::move(made).value();
  collapsers = std::make_unique<RequestCollapsers>(&process.registry(), &task_timers, cfg.ordering);
  InferenceService::Options service_options;
  service_options.tiers = cfg.tiers;
  // Only for the models that cache or collapse (Model::queue_charges).
  service_options.limiter = limiter;
  CapacityFeed::Options feed_options;
  for (size_t i = 0; i < cfg.models.size(); ++i) {
    const ModelConfig& mc = cfg.models[i];
    // A hit, or a request joining an identical one, is answered without the
    // enqueue script: such a model's requests are charged by the front door.
    const bool queue_charges = !mc.cache.enabled && !mc.collapse;
    redis::RedisQueueClient::Options qo;
    qo.connection = *loop_conn;  // enqueue and withdraw calls start on the event loop
    qo.keys = keys;
    qo.tier_count = cfg.tiers.size();
    qo.capacity = mc.queue_capacity;
    qo.separate_limiter = process.separate_limiter();
    qo.queue_shards = static_cast<size_t>(cfg.redis.queue_shards);
    auto client = redis::RedisQueueClient::Create(qo);
    if (!client.ok()) return client.status();
    redis::RedisRequestQueue::Options rqo;
    rqo.client = client->get();
    rqo.pending = &pending;
    rqo.model = mc.name;
    rqo.gateway_id = options.gateway_id;
    rqo.executor = &enqueue_strand;
    rqo.max_batch = static_cast<size_t>(cfg.redis.enqueue_max_batch);
    rqo.max_delay = Micros(cfg.redis.enqueue_max_delay_us);
    rqo.charge_rate_limits = queue_charges;
    rqo.tracer = process.tracer();
    auto queue = redis::RedisRequestQueue::Create(rqo);
    if (!queue.ok())
      return InvalidArgument("models: '" + mc.name + "': " + queue.status().message());
    AsyncBacklog::Options bo;
    bo.queue = queue->get();
    bo.executor = &task_timers;
    bo.max_held = static_cast<size_t>(cfg.async.max_pending);
    // A couple of batches per healthy device wait in Redis: the devices stay
    // busy, and synchronous requests find a short queue.
    bo.release_below = [this, i, batch = static_cast<size_t>(mc.max_batch_size)] {
      return 2 * batch * static_cast<size_t>(feed->snapshot(i).capacity.healthy_slots);
    };
    bo.refresh_depth = [q = queue->get(), conn, tiers = cfg.tiers.size()] {
      q->RefreshDepthAsync(conn, tiers);
    };
    auto backlog = AsyncBacklog::Create(bo);
    if (!backlog.ok()) return backlog.status();
    redis::CollapseLink* link = nullptr;
    if (mc.collapse) {
      redis::CollapseLink::Options lo;
      lo.connection = conn;
      lo.keys = keys;
      lo.queue = backlog->get();
      lo.pending = &pending;
      lo.gateway_id = options.gateway_id;
      lo.ordering = cfg.ordering;
      auto l = redis::CollapseLink::Create(lo);
      if (!l.ok()) return InvalidArgument("models: '" + mc.name + "': " + l.status().message());
      link = l->get();
      links.push_back(std::move(l).value());
    } else {
      links.push_back(nullptr);
    }
    ResultCache* cache = caches->For(i);
    auto collapser = collapsers->Add(mc, link, cache);
    if (!collapser.ok()) return collapser.status();
    AdmissionController* admission = nullptr;
    BatchCostModel* cost_model = nullptr;
    if (cfg.admission.enabled) {
      // The workers' measured throughput reaches it through the capacity feed.
      auto cost = BatchCostModel::Create(CostPriorFor(mc));
      if (!cost.ok()) return cost.status();
      cost_model = cost->get();
      cost_models.push_back(std::move(cost).value());
      AdmissionController::Options ao = AdmissionOptionsFor(cfg, mc);
      ao.total_slots = kMaxSlots;
      ao.cost_model = cost_model;
      auto a = AdmissionController::Create(ao);
      if (!a.ok()) return a.status();
      admission = a->get();
      admission->SetHealthySlots(0);  // until the registry says otherwise
      admissions.push_back(std::move(a).value());
    }
    ScalingAdvisor::Options so;
    so.target_utilization = cfg.admission.target_utilization;
    auto advisor = ScalingAdvisor::Create(so);
    if (!advisor.ok()) return advisor.status();
    scaling.push_back(std::move(advisor).value());
    InferenceService::Model model{
        mc.name, mc.version, mc.max_tokens_limit, mc.default_max_tokens, backlog->get(), admission};
    model.cache = cache;
    model.deterministic = mc.deterministic;
    model.collapser = *collapser;
    model.queue_charges = queue_charges;
    service_options.models.push_back(std::move(model));
    feed_options.models.push_back(
        {mc.name, mc.max_batch_size, admission, cost_model, queue->get()});
    clients.push_back(std::move(client).value());
    queues.push_back(std::move(queue).value());
    backlogs.push_back(std::move(backlog).value());
  }
  service_options.log = process.log();
  // The enqueue script checks the limit of the synchronous requests of the
  // models that neither cache nor collapse; the limiter above the rest.
  auto svc = InferenceService::Create(service_options);
  if (!svc.ok()) return svc.status();
  service = std::move(svc).value();
  if (Status s = BuildTasks(); !s.ok()) return s;

  auto registry = redis::RedisWorkerRegistry::Create({conn, keys, cfg.redis.heartbeat_ttl_ms});
  if (!registry.ok()) return registry.status();
  workers = std::move(registry).value();
  feed_options.registry = workers.get();
  feed_options.connection = conn;
  feed_options.tier_count = cfg.tiers.size();
  feed.emplace(process.ioc(), feed_options);

  redis::RedisResultListener::Options lo;
  lo.subscriber = RedisSubscriberOptions(cfg.redis);
  lo.keys = keys;
  lo.gateway_id = options.gateway_id;
  // Completed here, on the subscriber's thread: each answer is encoded here
  // and handed to its own connection's event loop (no loop relays another's
  // answers). One completion that throws costs only its own request: the
  // rest of the message is still delivered.
  lo.on_results = [this](std::vector<redis::WireResult>&& batch) {
    for (redis::WireResult& r : batch) {
      try {
        pending.Deliver(std::move(r));
      } catch (const std::exception& e) {
        spdlog::error("gateway: completing a request failed: {}", e.what());
      }
    }
  };
  auto l = redis::RedisResultListener::Create(std::move(lo));
  if (!l.ok()) return l.status();
  listener = std::move(l).value();

  std::vector<std::string> model_names, tier_names;
  for (const auto& m : cfg.models) model_names.push_back(m.name);
  for (const auto& t : cfg.tiers) tier_names.push_back(t.name);
  request_metrics.emplace(&process.registry(), model_names, tier_names, SystemClock());
  AddMetrics();
  return Status::Ok();
}

Status GatewayRole::Parts::BuildTasks() {
  const AppConfig& cfg = config();
  // A pending task outlives the longest async request (its gateway may stop
  // before the answer, and nobody would complete it), then expires.
  int64_t longest_async_us = 0;
  for (const TierPolicy& t : cfg.tiers) {
    const int64_t sync_budget = std::min(t.latency_budget_us, t.max_queue_age_us);
    longest_async_us =
        std::max(longest_async_us,
                 t.async_budget_us + std::max<int64_t>(0, t.total_timeout_us - sync_budget));
  }
  redis::RedisTaskStore::Options o;
  o.connection = process.redis();
  o.keys = redis::KeySpace(cfg.redis.key_prefix);
  o.result_ttl_ms = cfg.async.result_ttl_ms;
  o.pending_ttl_ms =
      std::min(redis::RedisTaskStore::kMaxTtlMs, longest_async_us / 1000 + cfg.async.result_ttl_ms);
  o.max_pending = static_cast<size_t>(cfg.async.max_pending);
  o.executor = &task_timers;
  auto store = redis::RedisTaskStore::Create(o);
  if (!store.ok()) return InvalidArgument("async." + store.status().message());
  const redis::RedisTaskStore* s = store->get();
  tasks = AsyncTasks::Adopt(std::move(store).value(), &process.registry());
  tasks->AddMetric("sluice_async_task_write_errors_total",
                   "Answered tasks whose answer was not written to Redis (they read as pending "
                   "until they expire).",
                   /*counter=*/true, [s] { return static_cast<double>(s->write_errors()); });
  return Status::Ok();
}

void GatewayRole::Parts::AddMetrics() {
  metrics::Registry& registry = process.registry();
  registry.AddCallbackGauge("sluice_redis_subscribed",
                            "1 while the result channel is subscribed, else 0.", {},
                            [l = listener.get()] { return l->subscribed() ? 1.0 : 0.0; });
  registry.AddCallbackGauge("sluice_redis_pending_requests",
                            "Requests queued in Redis and waiting for their result.", {},
                            [this] { return static_cast<double>(pending.size()); });
  registry.AddCallbackCounter(
      "sluice_redis_dropped_results_total",
      "Results for requests this gateway no longer waits for (answered, expired).", {},
      [this] { return static_cast<double>(pending.stats().dropped_results); });
  registry.AddCallbackCounter(
      "sluice_redis_result_timeouts_total",
      "Requests answered 504 because no result arrived before their total deadline.", {},
      [this] { return static_cast<double>(pending.stats().expired); });
  registry.AddCallbackCounter("sluice_redis_results_total", "Results received on the channel.", {},
                              [l = listener.get()] { return static_cast<double>(l->results()); });
  const auto& models = config().models;
  for (size_t i = 0; i < models.size(); ++i) {
    const metrics::Labels labels{{"model", models[i].name}};
    redis::RedisRequestQueue* q = queues[i].get();
    registry.AddCallbackCounter("sluice_redis_enqueue_failures_total",
                                "Requests answered 503 because Redis was down or did not answer.",
                                labels, [q] { return static_cast<double>(q->redis_errors()); });
    registry.AddCallbackCounter("sluice_redis_enqueue_calls_total",
                                "Enqueue script calls (each carries a batch of requests).", labels,
                                [q] { return static_cast<double>(q->batching().batches); });
    registry.AddCallbackCounter("sluice_redis_enqueued_requests_total",
                                "Requests sent to Redis by the enqueue script calls.", labels,
                                [q] { return static_cast<double>(q->batching().items); });
    registry.AddCallbackGauge("sluice_queue_depth",
                              "Requests waiting in the model's queue (in Redis, as last seen).",
                              labels, [q] { return static_cast<double>(q->Depth()); });
    registry.AddCallbackGauge(
        "sluice_recommended_devices",
        "Devices the load through this gateway needs at "
        "admission.target_utilization (up at once, down slowly).",
        labels, [a = scaling[i].get()] { return static_cast<double>(a->recommended()); });
    registry.AddCallbackGauge(
        "sluice_healthy_workers", "Live workers with a healthy slot.", labels,
        [this, i] { return static_cast<double>(feed->snapshot(i).capacity.healthy_workers); });
    registry.AddCallbackGauge(
        "sluice_async_held_requests",
        "Asynchronous requests waiting at this gateway for the model's queue to be short.", labels,
        [b = backlogs[i].get()] { return static_cast<double>(b->stats().held); });
    if (const redis::CollapseLink* link = links[i].get()) {
      registry.AddCallbackCounter(
          "sluice_collapse_gateway_waits_total",
          "Groups of identical requests that waited for another gateway's batch item.", labels,
          [link] { return static_cast<double>(link->stats().attached); });
      registry.AddCallbackCounter(
          "sluice_collapse_forwarded_answers_total",
          "Answers this gateway's batch items gave identical requests waiting at other "
          "gateways.",
          labels, [link] { return static_cast<double>(link->stats().forwarded); });
    }
  }
}

http::HealthSnapshot GatewayRole::Parts::Health() const {
  http::HealthSnapshot h;
  // Up: the process's client and the one the enqueue calls go through.
  const redis::RedisClient* conn = process.redis();
  const redis::RedisClient* enqueue =
      clients.empty() ? conn : clients.front()->options().connection;
  const redis::RedisClient::State state =
      conn->state() != redis::RedisClient::State::kUp ? conn->state() : enqueue->state();
  h.status = state == redis::RedisClient::State::kUp ? "healthy" : "unavailable";
  size_t live_workers = 0;
  double busy = 0, slots = 0;
  const auto& models = config().models;
  for (size_t i = 0; i < models.size(); ++i) {
    CapacityFeed::Snapshot s = feed->snapshot(i);
    http::ModelHealth mh;
    mh.name = models[i].name;
    mh.queue_depth = queues[i]->Depth();
    mh.devices = s.capacity.healthy_slots;
    mh.healthy_devices = s.capacity.healthy_slots;
    mh.recommended_devices = scaling[i]->recommended();
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
    if (AdmissionController* a = service->model(i).admission) {
      mh.admission = true;
      mh.capacity = a->Snapshot();
    }
    if (mh.healthy_devices == 0) h.status = "unavailable";
    h.queue_depth += mh.queue_depth;
    h.models.push_back(std::move(mh));
  }
  h.gpu_utilization = slots > 0 ? busy / slots : 0;
  h.requests_per_second = request_metrics->RequestsPerSecond();
  if (service->shutting_down()) h.status = "draining";
  const uint64_t commands =
      conn->stats().commands_sent + (enqueue != conn ? enqueue->stats().commands_sent : 0);
  h.redis = http::RedisHealth{StateName(state), options.gateway_id, listener->subscribed(),
                              pending.size(),   commands,           live_workers};
  return h;
}

void GatewayRole::Parts::TickScaling() {
  for (size_t i = 0; i < scaling.size(); ++i) {
    // As `serve`: the admitted arrivals against the learnt full-batch rate
    // of one device (no admission: no arrivals measured, min_devices).
    AdmissionController* a = service->model(i).admission;
    const double arrivals = a != nullptr ? a->Snapshot().arrival_rps : 0;
    const double per_device = i < cost_models.size() ? cost_models[i]->FullBatchRps() : 1;
    scaling[i]->Update(arrivals, per_device);
  }
  scaling_tick.expires_after(std::chrono::seconds(1));
  scaling_tick.async_wait([this](boost::system::error_code ec) {
    if (!ec) TickScaling();
  });
}

void GatewayRole::Parts::SweepExpired() {
  pending.ExpireUntil(SystemClock()->Now());
  expiry.expires_after(std::chrono::milliseconds(kExpirySweepMs));
  expiry.async_wait([this](boost::system::error_code ec) {
    if (!ec) SweepExpired();
  });
}

GatewayRole::GatewayRole(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

GatewayRole::~GatewayRole() { Close(); }

Result<std::unique_ptr<GatewayRole>> GatewayRole::Create(const Options& options) {
  if (options.process == nullptr || options.gateway_id.empty()) {
    return InvalidArgument("GatewayRole: process and gateway_id are required");
  }
  auto parts = std::make_unique<Parts>(options);
  if (Status s = parts->Build(); !s.ok()) return s;
  return std::unique_ptr<GatewayRole>(new GatewayRole(std::move(parts)));
}

std::unique_ptr<GatewayRole> GatewayRole::CreateListening(const Options& options, int* exit_code) {
  auto gateway = Create(options);
  if (!gateway.ok()) {
    spdlog::error("{}", gateway.status().message());
    *exit_code = 2;
    return nullptr;
  }
  if (Status s = (*gateway)->Listen(); !s.ok()) {
    spdlog::error("{}", s.message());
    *exit_code = 1;
    return nullptr;
  }
  return std::move(gateway).value();
}

Status GatewayRole::Listen() {
  Parts& p = *parts_;
  http::FrontDoor::Options fd;
  fd.auth = p.process.auth();
  fd.reload = ReloadEndpoint(p.process.reloader());
  fd.service = p.service.get();
  fd.log = p.process.log();
  fd.dead_letters = p.process.shared_dead_letters();  // every worker's and reaper's
  fd.watch_client_min_queue_depth = p.config().server.watch_client_min_queue_depth;
  fd.tasks = p.tasks->store();
  fd.max_result_wait_ms = p.config().async.max_wait_ms;
  fd.metrics = &*p.request_metrics;
  fd.health = [&p] { return p.Health(); };
  fd.registry = &p.process.registry();
  fd.tracer = p.process.tracer();
  auto listeners = FrontDoorListeners::Create(p.process.pool(), p.config(), std::move(fd));
  if (!listeners.ok()) return listeners.status();
  p.listeners = std::move(listeners).value();
  p.listeners->AddMetrics(p.process.registry());
  return Status::Ok();
}

void GatewayRole::Start() {
  Parts& p = *parts_;
  const AppConfig& cfg = p.config();
  p.process.redis()->WaitUntilUp(std::chrono::milliseconds(cfg.redis.connect_timeout_ms));
  p.listener->WaitUntilSubscribed(std::chrono::milliseconds(cfg.redis.connect_timeout_ms));
  p.SweepExpired();
  p.TickScaling();
  p.feed->Start();
  p.listeners->Start(cfg);
  spdlog::info("gateway {}: Redis {} ({}), {} model(s), {} I/O thread(s)", p.options.gateway_id,
               RedisTargetName(cfg.redis), StateName(p.process.redis()->state()), cfg.models.size(),
               cfg.server.io_threads);
}

void GatewayRole::JoinDrain(Drainer::Options& drain) {
  Parts& p = *parts_;
  Drainer::Stage s;
  s.name = "gateway " + p.options.gateway_id;
  s.begin = [&p] {
    p.listeners->StopAccepting();
    p.service->BeginShutdown();
    p.feed->Stop();
    // Nobody would release them once the gateway is gone.
    for (auto& b : p.backlogs) b->Close();
  };
  s.idle = [&p] {
    return p.pending.size() == 0 && p.listeners->public_server().requests_in_progress() == 0;
  };
  s.abandon = [&p] {
    for (RequestPtr& r : p.pending.TakeAll()) {
      InferenceOutcome o;
      o.status = Unavailable("the gateway shut down before this request was answered");
      r->Complete(std::move(o));
    }
  };
  drain.stages.push_back(std::move(s));
  drain.grace_ms = 500;
  drain.written = [&p] { return p.listeners->public_server().requests_in_progress() == 0; };
}

void GatewayRole::Close() {
  if (!parts_ || !parts_->listener) return;
  // The registry outlives the role: no gauge may read the listener after this.
  metrics::Registry& registry = parts_->process.registry();
  registry.RemoveCallback("sluice_redis_subscribed", {});
  registry.RemoveCallback("sluice_redis_results_total", {});
  parts_->listener.reset();
}

}  // namespace sluice
