// The `sluice` binary: one executable, one subcommand per role.
#include <cstdio>
#include <iostream>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "app/bench_command.h"
#include "app/gateway_command.h"
#include "app/model_server_command.h"
#include "app/plan_command.h"
#include "app/redis_bench_command.h"
#include "app/serve.h"
#include "app/serve_on_redis.h"
#include "app/simulate_command.h"
#include "app/worker_command.h"
#include "common/crypto.h"
#include "config/config.h"

int main(int argc, char** argv) {
  CLI::App app{"Sluice: a batching gateway for GPU inference.", "sluice"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "sluice 0.1.0");

  std::string config_path = "config/sluice.yaml";
  int port = -1, io_threads = 0;
  std::string log_level = "info";
  CLI::App* serve =
      app.add_subcommand("serve",
                         "Run the whole gateway in one process (front door, queues, dispatchers, "
                         "embedded simulated accelerator).");
  serve->add_option("-c,--config", config_path, "YAML configuration file")
      ->capture_default_str()
      ->check(CLI::ExistingFile);
  serve->add_option("-p,--port", port, "Listen port (overrides server.port; 0 = any free port)")
      ->check(CLI::Range(0, 65535));
  serve->add_option("--io-threads", io_threads, "I/O threads (overrides server.io_threads)")
      ->check(CLI::Range(1, 64));
  serve->add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));

  // `gateway` and `worker` share serve's config, port and log-level variables.
  CLI::App* gateway = app.add_subcommand(
      "gateway", "Run the HTTP front door only; queues, results and limits in Redis.");
  CLI::App* worker = app.add_subcommand(
      "worker", "Run the dispatchers of one model endpoint, pulling batches from Redis.");
  sluice::WorkerFlags worker_flags;
  size_t endpoint_index = 0;
  for (CLI::App* c : {gateway, worker}) {
    c->add_option("-c,--config", config_path, "YAML configuration file (needs `redis:`)")
        ->capture_default_str()
        ->check(CLI::ExistingFile);
    c->add_option("-p,--port", port,
                  c == gateway ? "Listen port (overrides server.port; 0 = any free port)"
                               : "Health/metrics port (default 0 = any free port)")
        ->check(CLI::Range(0, 65535));
    c->add_option("--io-threads", io_threads, "I/O threads (overrides server.io_threads)")
        ->check(CLI::Range(1, 64));
    c->add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
        ->capture_default_str()
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  }
  worker->add_option("--model", worker_flags.model, "Model to serve (default: the first)");
  CLI::Option* endpoint_option = worker->add_option(
      "--endpoint-index", endpoint_index,
      "http/openai/kserve backends: serve only backend.endpoints[I] (default: all)");

  std::string secret;
  CLI::App* hash = app.add_subcommand(
      "hash-key", "Print the SHA-256 of an API key or service token, for the config file.");
  hash->add_option("secret", secret, "The secret to hash")->required();

  auto bench = sluice::BenchCommand::Register(app);
  auto model_server = sluice::ModelServerCommand::Register(app);
  auto simulate = sluice::SimulateCommand::Register(app);
  auto plan = sluice::PlanCommand::Register(app);
  auto bench_redis = sluice::RedisBenchCommand::Register(app);

  CLI11_PARSE(app, argc, argv);
  if (bench->selected()) return bench->Run();
  if (model_server->selected()) return model_server->Run();
  if (simulate->selected()) return simulate->Run();
  if (plan->selected()) return plan->Run();
  if (bench_redis->selected()) return bench_redis->Run();

  if (*hash) {
    std::printf("%s\n", sluice::ToHex(sluice::Sha256(secret)).c_str());
    return 0;
  }
  spdlog::set_default_logger(spdlog::stderr_color_mt("sluice"));
  spdlog::set_level(spdlog::level::from_str(log_level));
  auto config = sluice::LoadConfigFile(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "sluice: invalid configuration: %s\n", config.status().message().c_str());
    return 2;
  }
  if (port >= 0) config->server.port = static_cast<uint16_t>(port);
  if (io_threads > 0) config->server.io_threads = io_threads;
  if (*gateway) return sluice::RunGateway(config.value());
  if (*worker) {
    if (*endpoint_option) worker_flags.endpoint_index = endpoint_index;
    worker_flags.port = port >= 0 ? static_cast<uint16_t>(port) : 0;
    return sluice::RunWorker(config.value(), worker_flags);
  }
  // `serve` with a `redis:` section: both roles in this process, on Redis.
  if (config->redis.configured) return sluice::RunServeOnRedis(config.value());
  return sluice::RunServe(config.value());
}
