#include "app/serve_on_redis.h"

#include <csignal>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "app/gateway_command.h"
#include "app/redis_setup.h"
#include "app/worker_command.h"

namespace sluice {

int RunServeOnRedis(const AppConfig& config) {
  // Workers first (each heartbeats before the gateway's first capacity read
  // matters); every role handles SIGTERM itself and drains.
  std::vector<int> worker_rc(config.models.size(), 0);
  std::vector<std::thread> workers;
  for (size_t i = 0; i < config.models.size(); ++i) {
    workers.emplace_back([&config, &worker_rc, i] {
      WorkerFlags flags;
      flags.model = config.models[i].name;
      flags.port = 0;          // its own health/metrics port: any free one
      flags.announce = false;  // the gateway's port is the one to print
      worker_rc[i] = RunWorker(config, flags);
    });
  }
  spdlog::info("serve: {} worker(s) and the gateway in one process, on Redis {}", workers.size(),
               RedisTargetName(config.redis));
  int rc = RunGateway(config);
  // A gateway that failed to start leaves the workers running: stop them the
  // way an operator would (their signal handlers drain them).
  if (rc != 0) std::raise(SIGTERM);
  for (auto& t : workers) t.join();
  for (int w : worker_rc) rc = rc != 0 ? rc : w;
  return rc;
}

}  // namespace sluice
