#include "app/serve_on_redis.h"

#include <memory>
#include <vector>

#include <spdlog/spdlog.h>

#include "app/gateway_role.h"
#include "app/redis_setup.h"
#include "app/scale_out_process.h"
#include "app/worker_role.h"

namespace sluice {

int RunServeOnRedis(const AppConfig& config) {
  const std::string gateway_id =
      config.redis.gateway_id.empty() ? RandomGatewayId() : config.redis.gateway_id;
  // One request log for the process: request rows from the gateway, batch
  // rows (batch ids are unique in a process) from every worker.
  auto process = ScaleOutProcess::Create(config, "serve", "sluice-" + gateway_id,
                                         DefaultWorkerId("serve", std::nullopt));
  if (!process.ok()) {
    spdlog::error("sluice serve: {}", process.status().message());
    return 2;
  }
  ScaleOutProcess& p = **process;
  std::vector<std::unique_ptr<WorkerRole>> workers;
  for (const ModelConfig& model : config.models) {
    auto w =
        WorkerRole::Create({&p, &model, std::nullopt, DefaultWorkerId(model.name, std::nullopt)});
    if (!w.ok()) {
      spdlog::error("models: '{}': {}", model.name, w.status().message());
      return 2;
    }
    workers.push_back(std::move(w).value());
  }
  int exit_code = 0;
  std::unique_ptr<GatewayRole> gateway = GatewayRole::CreateListening({&p, gateway_id}, &exit_code);
  if (!gateway) return exit_code;
  // Workers first: each heartbeats before the gateway's first capacity read.
  for (auto& w : workers) w->Start();
  spdlog::info("serve: {} worker(s) and the gateway in one process, on Redis {}", workers.size(),
               RedisTargetName(config.redis));
  gateway->Start();

  // The gateway drains first (its queued requests are still served by the
  // workers, here or elsewhere), then the workers finish their batches.
  Drainer::Options drain;
  gateway->JoinDrain(drain);
  for (auto& w : workers) drain.stages.push_back(w->DrainStage());
  drain.timeout_ms = config.server.drain_timeout_ms;
  p.Run(std::move(drain));
  gateway->Close();
  for (auto& w : workers) w->Close();
  p.CloseRedis();
  return 0;
}

}  // namespace sluice
