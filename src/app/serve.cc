#include "app/serve.h"

#include <unistd.h>

#include <cstdio>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>

#include "app/async_tasks.h"
#include "app/drainer.h"
#include "app/front_door_setup.h"
#include "app/model_runtime.h"
#include "app/process_tracing.h"
#include "app/reload_signal.h"
#include "app/request_collapsers.h"
#include "app/request_log_factory.h"
#include "app/result_caches.h"
#include "app/shutdown_signals.h"
#include "common/asio_executor.h"
#include "common/io_context_pool.h"
#include "core/authenticator.h"
#include "core/inference_service.h"
#include "http/front_door.h"
#include "http/http_server.h"
#include "limits/memory_rate_limiter.h"

namespace sluice {

namespace asio = boost::asio;

namespace {

// Answers 503 what is still queued and aborts the batches in flight.
void AbandonQueued(std::vector<std::unique_ptr<ModelRuntime>>& models) {
  size_t left = 0;
  for (auto& m : models) {
    std::vector<RequestPtr> rest;
    m->queue()->RemoveAll(&rest);
    left += rest.size();
    for (auto& r : rest) {
      InferenceOutcome o;
      o.status = Unavailable("the gateway shut down before this request was served");
      r->Complete(std::move(o));
    }
    m->AbortInFlight(Unavailable("the gateway shut down while this batch was running"));
  }
  spdlog::warn("drain timeout: answered {} queued requests 503", left);
}

}  // namespace

int RunServe(const AppConfig& config) {
  // Client and backend connections spread over the pool; the models'
  // dispatchers and the timers run on its main loop.
  IoContextPool pool(config.server.io_threads);
  asio::io_context& ioc = pool.main();
  metrics::Registry registry;
  LocalResultRouter router;

  auto auth = MakeAuthenticator(config);
  if (!auth.ok()) {
    spdlog::error("{}", auth.status().message());
    return 2;
  }
  // The keys in force; SIGHUP and POST /internal/reload replace them.
  AuthenticatorSlot keys(std::shared_ptr<const Authenticator>(std::move(auth).value()));
  std::unique_ptr<ConfigReloader> reloader;
  if (!config.source_path.empty()) {
    auto r = ConfigReloader::Create(config, &keys);
    if (!r.ok()) {
      spdlog::error("{}", r.status().message());
      return 2;
    }
    reloader = std::move(r).value();
  }
  // From now on a SIGHUP reloads (it would end the process by default).
  std::optional<ReloadSignal> reload_signal;
  if (reloader) reload_signal.emplace(ioc, reloader.get());

  // Destroyed after everything that writes to it (declared first): its
  // destructor flushes what is buffered.
  auto log = MakeRequestLog(config, &registry, "serve");
  if (!log.ok()) {
    spdlog::error("request_log: {}", log.status().message());
    return 2;
  }
  DeadLetterQueue::Options dlo;
  dlo.capacity = config.server.dead_letter_capacity;
  auto dead_letters = DeadLetterQueue::Create(dlo);
  if (!dead_letters.ok()) {
    spdlog::error("{}", dead_letters.status().message());
    return 2;
  }
  registry.AddCallbackGauge("sluice_dead_letter_queue_size",
                            "Requests held in the dead-letter queue (bounded).", {},
                            [d = dead_letters->get()] { return static_cast<double>(d->size()); });

  // Before the models (their batches' spans) and destroyed after them: its
  // destructor sends the spans still queued.
  auto tracing = ProcessTracing::Create(config.tracing, "serve",
                                        "serve-" + std::to_string(::getpid()), &registry);
  if (!tracing.ok()) {
    spdlog::error("{}", tracing.status().message());
    return 2;
  }

  auto caches = ResultCaches::Create(config.models, &registry);
  if (!caches.ok()) {
    spdlog::error("{}", caches.status().message());
    return 2;
  }
  // Deadline timers of requests waiting for an identical one's answer, and
  // of long polls for async results.
  AsioExecutor service_timers(ioc);
  RequestCollapsers collapsers(&registry, &service_timers, config.ordering);
  auto tasks = AsyncTasks::Create(config.async, &service_timers, &registry);
  if (!tasks.ok()) {
    spdlog::error("{}", tasks.status().message());
    return 2;
  }
  std::vector<std::unique_ptr<ModelRuntime>> models;
  InferenceService::Options service_options;
  service_options.tiers = config.tiers;
  for (const auto& mc : config.models) {
    auto rt = ModelRuntime::Create(pool, config, mc, &router, dead_letters->get(), log->get(),
                                   &registry, (*tracing)->tracer());
    if (!rt.ok()) {
      spdlog::error("{}", rt.status().message());
      return 2;
    }
    models.push_back(std::move(rt).value());
    InferenceService::Model m;
    m.name = mc.name;
    m.version = mc.version;
    m.max_tokens_limit = mc.max_tokens_limit;
    m.default_max_tokens = mc.default_max_tokens;
    m.queue = models.back()->queue();
    m.admission = models.back()->admission();
    m.cache = (*caches)->For(service_options.models.size());
    m.deterministic = mc.deterministic;
    auto collapser = collapsers.Add(mc, m.queue, m.cache);
    if (!collapser.ok()) {
      spdlog::error("{}", collapser.status().message());
      return 2;
    }
    m.collapser = collapser.value();
    service_options.models.push_back(std::move(m));
  }
  service_options.log = log->get();
  auto limiter = MemoryRateLimiter::Create({});
  if (!limiter.ok()) {
    spdlog::error("{}", limiter.status().message());
    return 2;
  }
  service_options.limiter = limiter->get();
  if (reloader) {
    std::vector<ModelRuntime*> reloadable;
    for (auto& m : models) reloadable.push_back(m.get());
    reloader->AttachModels(std::move(reloadable));  // before the loop runs a SIGHUP
  }
  auto service = InferenceService::Create(service_options);
  if (!service.ok()) {
    spdlog::error("{}", service.status().message());
    return 2;
  }

  std::vector<std::string> model_names, tier_names;
  for (const auto& m : config.models) model_names.push_back(m.name);
  for (const auto& t : config.tiers) tier_names.push_back(t.name);
  http::RequestMetrics request_metrics(&registry, model_names, tier_names, SystemClock());

  http::FrontDoor::Options fd;
  fd.auth = &keys;
  fd.reload = ReloadEndpoint(reloader.get());
  fd.service = service->get();
  fd.log = log->get();
  fd.watch_client_min_queue_depth = config.server.watch_client_min_queue_depth;
  fd.tasks = (*tasks)->store();
  fd.max_result_wait_ms = config.async.max_wait_ms;
  fd.metrics = &request_metrics;
  fd.tracer = (*tracing)->tracer();
  InferenceService* svc = service->get();
  fd.health = [&models, svc, &request_metrics] {
    http::HealthSnapshot h;
    h.status = "healthy";
    double busy = 0, slots = 0;
    for (auto& m : models) {
      double n = static_cast<double>(m->group()->slot_count());
      busy += m->Utilization() * n;
      slots += n;
    }
    h.gpu_utilization = slots > 0 ? busy / slots : 0;
    h.queue_depth = svc->TotalQueueDepth();
    h.requests_per_second = request_metrics.RequestsPerSecond();
    for (auto& m : models) {
      http::ModelHealth mh;
      mh.name = m->config().name;
      mh.queue_depth = m->queue()->Depth();
      const std::shared_ptr<const DispatchGroup> group = m->group();
      mh.devices = group->slot_count();
      mh.healthy_devices = group->available_slots();
      mh.retries_pending = group->retries_pending();
      mh.recommended_devices = m->recommended_devices();
      for (size_t e = 0; e < group->endpoint_count(); ++e) {
        mh.endpoints.push_back(
            {group->endpoint_name(e), group->endpoint_state(e), group->endpoint_slots(e)});
      }
      mh.utilization = m->Utilization();
      if (m->admission() != nullptr) {
        mh.admission = true;
        mh.capacity = m->admission()->Snapshot();
      }
      if (mh.healthy_devices == 0) {
        h.status = "unavailable";  // a model cannot serve at all
      } else if (h.status == "healthy" && mh.healthy_devices < mh.devices) {
        h.status = "degraded";
      }
      h.models.push_back(std::move(mh));
    }
    if (svc->shutting_down()) h.status = "draining";
    return h;
  };
  fd.set_device_enabled = [&models](const std::string& model, size_t device, bool enabled) {
    for (auto& m : models) {
      if (m->config().name == model) return m->SetDeviceEnabled(device, enabled);
    }
    return NotFound("model '" + model + "' is not served here");
  };
  fd.registry = &registry;
  fd.dead_letters = dead_letters->get();
  auto listeners = FrontDoorListeners::Create(pool, config, std::move(fd));
  if (!listeners.ok()) {
    spdlog::error("{}", listeners.status().message());
    return 1;
  }
  (*listeners)->AddMetrics(registry);

  // Graceful shutdown: no new connections, then the queues and batches in
  // flight run out (or are answered 503 at the deadline).
  AsioExecutor control(ioc);
  http::HttpServer& server = (*listeners)->public_server();
  Drainer::Stage stage;
  stage.name = "serve";
  stage.begin = [&] {
    (*listeners)->StopAccepting();
    svc->BeginShutdown();
  };
  stage.idle = [&] {
    bool idle = svc->TotalQueueDepth() == 0 && server.requests_in_progress() == 0;
    for (auto& m : models) idle = idle && m->busy_slots() == 0;
    return idle;
  };
  stage.abandon = [&models] { AbandonQueued(models); };
  Drainer::Options drain;
  drain.executor = &control;
  drain.stages.push_back(std::move(stage));
  drain.timeout_ms = config.server.drain_timeout_ms;
  drain.grace_ms = 1'000;
  drain.written = [&server] { return server.requests_in_progress() == 0; };
  drain.stop = [&pool] { pool.Stop(); };
  Drainer drainer(std::move(drain));
  ShutdownSignals signals(ioc, control, [&drainer] { drainer.Begin(); });

  for (auto& m : models) m->Start();
  (*listeners)->Start(config);
  spdlog::info("serving {} model(s) with {} I/O thread(s)", models.size(),
               config.server.io_threads);

  pool.Run();
  // No reload may reach the models while they are destroyed (before it).
  reload_signal.reset();  // waits for one in progress
  if (reloader) reloader->AttachModels({});
  return 0;
}

}  // namespace sluice
