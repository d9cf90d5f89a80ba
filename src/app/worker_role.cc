#include "app/worker_role.h"

#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include "app/backend_slots.h"
#include "app/batch_metrics.h"
#include "app/claim_loop.h"
#include "app/dispatch_metrics.h"
#include "app/redis_setup.h"
#include "app/scale_out_process.h"
#include "common/asio_executor.h"
#include "config/scheduler_options.h"
#include "limits/throughput_estimator.h"
#include "redis/batch_claimer.h"
#include "redis/reaper.h"
#include "redis/redis_rate_limiter.h"
#include "redis/worker_registry.h"

namespace sluice {

namespace asio = boost::asio;
namespace json = boost::json;

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
    const BatchCostModel::Options prior = CostPriorFor(m);  // the same prior as `serve`
    BatchThroughputEstimator::Options o;
    o.max_batch_size = prior.max_batch_size;
    o.prior_batch_fixed_us = prior.prior_batch_fixed_us;
    o.prior_batch_per_item_us = prior.prior_batch_per_item_us;
    return o;
  }

  mutable std::mutex mu_;
  BatchThroughputEstimator estimator_;  // GUARDED_BY(mu_)
};

// Runs `fn` every `period_ms` on the timer's io_context while it returns true.
void Every(asio::steady_timer& timer, int64_t period_ms, std::function<bool()> fn) {
  timer.expires_after(std::chrono::milliseconds(period_ms));
  timer.async_wait([&timer, period_ms, fn = std::move(fn)](boost::system::error_code ec) {
    if (ec || !fn()) return;
    Every(timer, period_ms, fn);
  });
}

}  // namespace

std::string DefaultWorkerId(const std::string& model, std::optional<size_t> endpoint) {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::string id = fmt::format("{}-{}-{}", host[0] ? host : "worker", ::getpid(), model);
  if (endpoint) id += "-" + std::to_string(*endpoint);
  return id;
}

// Declaration order is construction order; destruction runs backwards.
struct WorkerRole::Parts {
  explicit Parts(const Options& o)
      : options(o),
        process(*o.process),
        model(*o.model),
        strand(o.process->ioc()),
        throughput(*o.model),
        beat_timer(o.process->ioc()),
        reap_timer(o.process->ioc()) {}

  Options options;
  ScaleOutProcess& process;
  const ModelConfig& model;
  const AppConfig& config() const { return process.config(); }
  AsioExecutor strand;
  std::string endpoint;
  size_t slot_count = 0;
  ThroughputFeed throughput;
  std::unique_ptr<BatchMetrics> observer;
  LocalResultRouter router;  // completions go to ClaimLoop, which answers via Redis
  std::unique_ptr<BatchCostModel> cost;
  std::unique_ptr<DispatchGroup> group;
  std::unique_ptr<redis::RedisBatchClaimer> claimer;
  std::unique_ptr<redis::RedisWorkerRegistry> workers;
  std::unique_ptr<redis::RedisReaper> reaper;
  std::unique_ptr<redis::RedisClient> wait_connection;
  std::unique_ptr<ClaimLoop> claims;
  asio::steady_timer beat_timer, reap_timer;
  std::atomic<bool> draining{false};
  bool started = false, closed = false;

  Status Build();
  void AddMetrics();
  redis::WorkerHeartbeat Heartbeat() const;
};

Status WorkerRole::Parts::Build() {
  const AppConfig& cfg = config();
  redis::RedisClient* conn = process.redis();
  const redis::KeySpace keys(cfg.redis.key_prefix);
  auto built = MakeBackendSlots(process.pool(), model, &strand, options.endpoint_index);
  if (!built.ok()) return built.status();
  endpoint = built->endpoint;
  slot_count = built->slots.size();
  // The same batch metrics and log lines as `serve`.
  BatchMetrics::Options bm;
  bm.model = model.name;
  bm.max_batch_size = LargestBatchSize(cfg);
  bm.endpoint_names = built->endpoint_names;
  bm.registry = &process.registry();
  bm.on_batch_ok = [this](size_t n, SteadyClock::duration t) { throughput.AddBatch(n, t); };
  observer = std::make_unique<BatchMetrics>(std::move(bm));
  // The model's learnt batch cost (the same prior as `serve`): the group's
  // adaptive target tells the claim loop how full a batch to wait for.
  auto c = BatchCostModel::Create(CostPriorFor(model));
  if (!c.ok()) return c.status();
  cost = std::move(c).value();
  DispatchGroup::Options g;
  g.model = model.name;
  g.max_batch_size = model.max_batch_size;
  g.async_fill_max_batch_size = model.async_fill_max_batch_size;
  // No queue, so no max_batch_delay_us: the claim loop batches (the group's
  // TargetBatchSize() and the model's delay, in the claim script) and hands
  // each batch over whole (DispatchGroup::Submit).
  g.batching = model.batching;
  g.cost_model = cost.get();
  g.accelerator_timeout_us = model.accelerator_timeout_ms * 1000;
  g.retry = model.retry;
  g.breaker = model.circuit_breaker;
  g.slot_endpoints = built->slot_endpoints;
  g.endpoint_names = built->endpoint_names;
  g.dead_letters = process.dead_letters();  // and to Redis, where any gateway serves them
  g.log = process.log();
  g.executor = &strand;
  g.queue = nullptr;
  g.router = &router;
  g.observer = observer.get();
  g.tracer = process.tracer();  // batch spans link to the gateways' request spans
  auto grp = DispatchGroup::Create(g, std::move(built->slots));
  if (!grp.ok()) return grp.status();
  group = std::move(grp).value();

  redis::RedisBatchClaimer::Options co;
  co.connection = conn;
  co.separate_limiter = process.separate_limiter();
  co.keys = keys;
  co.model = model.name;
  co.tiers = cfg.tiers;
  co.ordering = cfg.ordering;
  co.lease_us = cfg.redis.lease_ms * 1000;
  co.max_block_ms = cfg.worker.max_block_ms;
  const size_t shards = static_cast<size_t>(cfg.redis.queue_shards);
  co.queue_shards = shards;
  // Workers of one model spread their home shards: by endpoint, or else by
  // the hash of their id.
  co.home_shard = options.endpoint_index ? *options.endpoint_index % shards
                                         : redis::ShardOfRequest(options.worker_id, shards);
  auto cl = redis::RedisBatchClaimer::Create(co);
  if (!cl.ok()) return cl.status();
  claimer = std::move(cl).value();
  auto reg = redis::RedisWorkerRegistry::Create({conn, keys, cfg.redis.heartbeat_ttl_ms});
  if (!reg.ok()) return reg.status();
  workers = std::move(reg).value();
  auto rp = redis::RedisReaper::Create(ReaperOptions(conn, keys, cfg, model.retry.max_retries));
  if (!rp.ok()) return rp.status();
  reaper = std::move(rp).value();
  auto wc = conn->NewBlockingClient(
      "-wake", std::max<int64_t>(cfg.redis.command_timeout_ms, cfg.worker.max_block_ms + 1'000));
  if (!wc.ok()) return wc.status();
  wait_connection = std::move(wc).value();

  ClaimLoop::Options lo;
  lo.wait_connection = wait_connection.get();
  lo.wake_key = keys.Wake(redis::QueueShard(model.name, co.home_shard));
  lo.claimer = claimer.get();
  lo.group = group.get();
  lo.strand = &strand;
  lo.worker_id = options.worker_id;
  lo.tracer = process.tracer();
  lo.max_batch_size = model.max_batch_size;
  lo.max_batch_delay_us = model.max_batch_delay_us;
  // The claim thread renews leases between claims: it must come round more
  // often than lease / 4.
  lo.renew_interval_ms = std::max<int64_t>(cfg.redis.lease_ms / 4, 1);
  lo.claim_timeout_ms = std::clamp<int64_t>(lo.renew_interval_ms / 2, 1, cfg.worker.max_block_ms);
  // A sharded queue's other shards wake only their home workers: look at
  // them at least every 100 ms while idle.
  if (shards > 1) lo.claim_timeout_ms = std::min<int64_t>(lo.claim_timeout_ms, 100);
  claims = std::make_unique<ClaimLoop>(lo);
  AddMetrics();
  return Status::Ok();
}

void WorkerRole::Parts::AddMetrics() {
  metrics::Registry& registry = process.registry();
  const metrics::Labels labels{{"model", model.name}};
  const std::pair<const char*, uint64_t ClaimLoop::Stats::*> counters[] = {
      {"sluice_worker_batches_claimed_total", &ClaimLoop::Stats::batches},
      {"sluice_worker_requests_claimed_total", &ClaimLoop::Stats::requests},
      {"sluice_worker_expired_at_claim_total", &ClaimLoop::Stats::expired},
      {"sluice_worker_fill_waits_total", &ClaimLoop::Stats::fill_waits},
      {"sluice_worker_lease_renewals_total", &ClaimLoop::Stats::renew_calls},
      {"sluice_worker_lease_renewal_errors_total", &ClaimLoop::Stats::renew_errors},
      {"sluice_worker_claim_errors_total", &ClaimLoop::Stats::claim_errors},
      {"sluice_worker_complete_calls_total", &ClaimLoop::Stats::complete_calls},
      {"sluice_worker_complete_errors_total", &ClaimLoop::Stats::complete_errors},
      {"sluice_worker_complete_retries_total", &ClaimLoop::Stats::complete_retries},
      {"sluice_worker_answers_expired_unsent_total", &ClaimLoop::Stats::answers_expired_unsent}};
  for (const auto& [name, field] : counters) {
    registry.AddCallbackCounter(
        name, "Worker claim loop counter (see app/claim_loop.h).", labels,
        [c = claims.get(), field = field] { return double(c->stats().*field); });
  }
  registry.AddCallbackCounter(
      "sluice_worker_undelivered_results_total",
      "Answers no gateway took: published to a gateway that no longer listened, or for "
      "requests answered elsewhere (stale).",
      labels, [c = claimer.get()] {
        auto s = c->stats();
        return double(s.dropped_results + s.stale_results);
      });
  // A worker keeps its group for its life: a pointer that owns nothing.
  GroupSource source = [g = group.get()] {
    return std::shared_ptr<const DispatchGroup>(std::shared_ptr<void>(), g);
  };
  AddDispatchGroupMetrics(registry, model.name, source, cost.get(),
                          [this] { return observer->Utilization(slot_count); });
}

redis::WorkerHeartbeat WorkerRole::Parts::Heartbeat() const {
  redis::WorkerHeartbeat b;
  b.worker_id = options.worker_id;
  b.model = model.name;
  b.endpoint = endpoint;
  b.utilisation = observer->Utilization(slot_count);
  // A probing (half-open) endpoint counts: gateways must admit its probe
  // batch, or a worker whose breakers all opened would never close them.
  b.healthy_slots = static_cast<uint32_t>(group->batch_room());
  b.throughput_rps = throughput.PerSlotRps() * b.healthy_slots;
  return b;
}

WorkerRole::WorkerRole(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

WorkerRole::~WorkerRole() { Close(); }

Result<std::unique_ptr<WorkerRole>> WorkerRole::Create(const Options& options) {
  if (options.process == nullptr || options.model == nullptr || options.worker_id.empty()) {
    return InvalidArgument("WorkerRole: process, model and worker_id are required");
  }
  auto parts = std::make_unique<Parts>(options);
  if (Status s = parts->Build(); !s.ok()) return s;
  return std::unique_ptr<WorkerRole>(new WorkerRole(std::move(parts)));
}

void WorkerRole::Start() {
  Parts& p = *parts_;
  const AppConfig& cfg = p.config();
  p.started = true;
  p.process.redis()->WaitUntilUp(std::chrono::milliseconds(cfg.redis.connect_timeout_ms));
  p.group->Start();
  // First heartbeat before claiming, so gateways count this worker at once.
  p.workers->HeartbeatAsync(p.Heartbeat(), [](Status) {});
  p.claims->Start();
  const int64_t beat_ms = std::max<int64_t>(cfg.redis.heartbeat_ttl_ms / 3, 1);
  Every(p.beat_timer, beat_ms, [&p] {
    if (p.draining.load()) return false;
    p.workers->HeartbeatAsync(p.Heartbeat(), [](Status s) {
      if (!s.ok()) spdlog::debug("heartbeat failed: {}", s.message());
    });
    return true;
  });
  const int64_t reap_ms =
      cfg.worker.reap_interval_ms > 0 ? cfg.worker.reap_interval_ms : cfg.redis.lease_ms / 4;
  Every(p.reap_timer, std::max<int64_t>(reap_ms, 1), [&p] {
    p.reaper->ReapAsync(p.model.name, [](Result<redis::RedisReaper::Outcome> o) {
      if (o.ok() && (o->requeued > 0 || o->dead_lettered > 0)) {
        spdlog::warn("reaper: {} request(s) re-queued, {} dead-lettered (lost leases)", o->requeued,
                     o->dead_lettered);
      }
    });
    return true;
  });
  spdlog::info("worker {}: model '{}' on {} ({} slot(s)), Redis {}", p.options.worker_id,
               p.model.name, p.endpoint, p.slot_count, RedisTargetName(cfg.redis));
}

Drainer::Stage WorkerRole::DrainStage() {
  Parts& p = *parts_;
  Drainer::Stage s;
  s.name = "worker " + p.options.worker_id;
  s.begin = [&p] {
    p.draining = true;
    p.claims->Stop();
  };
  s.idle = [&p] {
    return p.claims->finished() && p.claims->batches_in_flight() == 0 &&
           p.claims->answers_in_flight() == 0;
  };
  s.abandon = [] { spdlog::warn("drain timeout: unanswered requests are left to the reaper"); };
  return s;
}

void WorkerRole::Close() {
  if (!parts_ || parts_->closed) return;
  Parts& p = *parts_;
  p.closed = true;
  p.claims->Stop();
  p.claims->Join();
  // Never started (another part failed to start): nothing to deregister.
  if (!p.started) {
    p.claimer.reset();
    return;
  }
  if (Status s = p.workers->Deregister(p.model.name, p.options.worker_id); !s.ok()) {
    spdlog::warn("deregister failed: {} (the registry drops this worker after its TTL)",
                 s.message());
  }
  // Callbacks still in flight reference the objects above: end the claimer's
  // Redis users while everything they touch is alive.
  p.claimer.reset();
}

WorkerHealth WorkerRole::Health() const {
  const Parts& p = *parts_;
  const redis::WorkerHeartbeat b = p.Heartbeat();
  WorkerHealth h;
  h.worker_id = p.options.worker_id;
  h.model = p.model.name;
  h.endpoint = p.endpoint;
  switch (p.process.redis()->state()) {
    case redis::RedisClient::State::kUp:
      h.redis = "up";
      break;
    case redis::RedisClient::State::kConnecting:
      h.redis = "connecting";
      break;
    case redis::RedisClient::State::kDown:
      h.redis = "down";
      break;
  }
  h.slots = p.slot_count;
  h.healthy_slots = p.group->available_slots();
  h.busy_slots = p.group->busy_slots();
  h.batches_in_flight = p.claims->batches_in_flight();
  h.utilization = b.utilisation;
  h.throughput_rps = b.throughput_rps;
  for (size_t e = 0; e < p.group->endpoint_count(); ++e) {
    h.endpoints.push_back(
        {p.group->endpoint_name(e), p.group->endpoint_state(e), p.group->endpoint_slots(e)});
  }
  if (p.draining.load() || p.claims->finished()) {
    h.status = "draining";
  } else if (h.redis != "up" || b.healthy_slots == 0) {
    h.status = "unavailable";
  } else if (h.healthy_slots < h.slots) {
    h.status = "degraded";
  }
  return h;
}

std::string RenderWorkerHealth(const WorkerHealth& h) {
  auto quoted = [](const std::string& s) { return json::serialize(json::string_view(s)); };
  std::string endpoints;
  for (const http::EndpointHealth& e : h.endpoints) {
    if (!endpoints.empty()) endpoints += ",";
    endpoints += fmt::format(R"({{"name":{},"breaker":"{}","slots":{}}})", quoted(e.name),
                             BreakerStateName(e.breaker), e.slots);
  }
  return fmt::format(
      R"({{"status":{},"worker_id":{},"model":{},"endpoint":{},"redis":{},"slots":{},)"
      R"("healthy_slots":{},"busy_slots":{},"batches_in_flight":{},"utilization":{:.4f},)"
      R"("throughput_rps":{:.1f},"endpoints":[{}]}})",
      quoted(h.status), quoted(h.worker_id), quoted(h.model), quoted(h.endpoint), quoted(h.redis),
      h.slots, h.healthy_slots, h.busy_slots, h.batches_in_flight, h.utilization, h.throughput_rps,
      endpoints);
}

}  // namespace sluice
