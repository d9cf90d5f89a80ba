#include "app/gateway_command.h"

#include <spdlog/spdlog.h>

#include "app/gateway_role.h"
#include "app/scale_out_process.h"

namespace sluice {

int RunGateway(const AppConfig& config) {
  const std::string gateway_id =
      config.redis.gateway_id.empty() ? RandomGatewayId() : config.redis.gateway_id;
  // Request rows (final status) come from the gateways; batch rows from
  // the workers. Every process writes to the same database.
  auto process =
      ScaleOutProcess::Create(config, "gateway", "sluice-" + gateway_id, /*log_worker_id=*/"");
  if (!process.ok()) {
    spdlog::error("sluice gateway: {}", process.status().message());
    return 2;
  }
  ScaleOutProcess& p = **process;
  int exit_code = 0;
  std::unique_ptr<GatewayRole> gateway = GatewayRole::CreateListening({&p, gateway_id}, &exit_code);
  if (!gateway) return exit_code;
  gateway->Start();
  Drainer::Options drain;
  gateway->JoinDrain(drain);
  drain.timeout_ms = config.server.drain_timeout_ms;
  p.Run(std::move(drain));
  gateway->Close();
  p.CloseRedis();
  return 0;
}

}  // namespace sluice
