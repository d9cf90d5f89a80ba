#include "app/worker_command.h"

#include <cstdio>
#include <functional>

#include <spdlog/spdlog.h>

#include "app/front_door_setup.h"
#include "app/scale_out_process.h"
#include "app/worker_role.h"
#include "core/authenticator.h"
#include "http/front_door.h"
#include "http/http_server.h"

namespace sluice {

namespace {

// GET /internal/health and GET /metrics (service token) of a worker.
class WorkerStatusHandler final : public http::RequestHandler {
 public:
  WorkerStatusHandler(const AuthenticatorSlot* auth, std::function<WorkerHealth()> health,
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
    if (!auth_->Get()->IsServiceToken(token)) {
      return reply(http::MakeError(
          request, Status(ErrorCode::kUnauthenticated, "internal endpoints need a service token")));
    }
    if (path == "/metrics") {
      return reply(http::MakeResponse(request, 200, metrics_(), "text/plain; version=0.0.4"));
    }
    // As a gateway's: 503 while it cannot take batches (draining, no slot,
    // Redis not up), so that an orchestrator's probe reads the status code.
    const WorkerHealth h = health_();
    const bool serving = h.status == "healthy" || h.status == "degraded";
    reply(http::MakeResponse(request, serving ? 200 : 503, RenderWorkerHealth(h)));
  }

 private:
  const AuthenticatorSlot* auth_;
  std::function<WorkerHealth()> health_;
  std::function<std::string()> metrics_;
};

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
  auto process =
      ScaleOutProcess::Create(config, "worker", "sluice-" + worker_id, worker_id);  // batch rows
  if (!process.ok()) {
    spdlog::error("sluice worker: {}", process.status().message());
    return 2;
  }
  ScaleOutProcess& p = **process;
  auto worker = WorkerRole::Create({&p, model, flags.endpoint_index, worker_id});
  if (!worker.ok()) {
    spdlog::error("{}", worker.status().message());
    return 2;
  }
  WorkerRole* role = worker->get();
  WorkerStatusHandler status(
      p.auth(), [role] { return role->Health(); },
      [&p] { return p.registry().RenderPrometheus(); });
  http::HttpServer::Options so = HttpServerOptions(config.server, &status);
  so.port = flags.port;
  auto server = http::HttpServer::Create(p.ioc(), so);
  if (!server.ok()) {
    spdlog::error("{}", server.status().message());
    return 1;
  }
  http::HttpServer* srv = server->get();

  role->Start();
  srv->Start();
  std::printf("sluice: listening on http://%s:%u\n", config.server.listen_address.c_str(),
              static_cast<unsigned>(srv->port()));
  std::fflush(stdout);

  Drainer::Options drain;
  Drainer::Stage stage = role->DrainStage();
  stage.begin = [srv, begin = std::move(stage.begin)] {
    begin();
    srv->StopAccepting();
  };
  drain.stages.push_back(std::move(stage));
  drain.timeout_ms = config.server.drain_timeout_ms;
  drain.grace_ms = 0;
  p.Run(std::move(drain));
  role->Close();
  p.CloseRedis();
  return 0;
}

}  // namespace sluice
