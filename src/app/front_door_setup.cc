#include "app/front_door_setup.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include <spdlog/spdlog.h>

namespace sluice {

Result<std::unique_ptr<Authenticator>> MakeAuthenticator(const AppConfig& config) {
  Authenticator::Options o;
  o.tiers = config.tiers;
  for (const ApiKeyConfig& k : config.keys) {
    o.keys.push_back({k.id, k.tier, k.sha256, k.requests_per_minute, k.tokens_per_minute});
  }
  o.service_token_sha256 = config.server.service_token_sha256;
  return Authenticator::Create(o);
}

http::HttpServer::Options HttpServerOptions(const ServerConfig& server,
                                            http::RequestHandler* handler) {
  http::HttpServer::Options so;
  so.listen_address = server.listen_address;
  so.port = server.port;
  so.max_connections = server.max_connections;
  so.body_limit_bytes = server.body_limit_bytes;
  so.header_limit_bytes = server.header_limit_bytes;
  so.read_timeout_ms = server.read_timeout_ms;
  so.idle_timeout_ms = server.idle_timeout_ms;
  so.max_header_fields = server.max_header_fields;
  so.chunk_extension_limit_bytes = server.chunk_extension_limit_bytes;
  so.max_connections_per_client = server.max_connections_per_client;
  so.max_bad_requests_per_connection = server.max_bad_requests_per_connection;
  so.unauthenticated_memory_limit_bytes = server.unauthenticated_memory_limit_bytes;
  so.handler = handler;
  return so;
}

uint64_t RaiseOpenFileLimit(uint64_t wanted) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur >= wanted) return limit.rlim_cur;
  rlim_t target = std::min<rlim_t>(wanted, limit.rlim_max);
  if (target > limit.rlim_cur) {
    rlimit raised = limit;
    raised.rlim_cur = target;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit.rlim_cur = target;
  }
  if (limit.rlim_cur < wanted) {
    spdlog::warn(
        "open-file limit is {} (hard limit {}), below the {} that server.max_connections needs; "
        "connections beyond it are refused at accept (raise it with `ulimit -Hn` or "
        "LimitNOFILE=)",
        limit.rlim_cur, limit.rlim_max, wanted);
  }
  return limit.rlim_cur;
}

Result<std::unique_ptr<FrontDoorListeners>> FrontDoorListeners::Create(
    IoContextPool& pool, const AppConfig& config, http::FrontDoor::Options door) {
  // Descriptors besides client connections: backends, logs, Redis, the
  // listeners themselves.
  constexpr uint64_t kOtherDescriptors = 1024;
  RaiseOpenFileLimit(static_cast<uint64_t>(config.server.max_connections) + kOtherDescriptors);
  std::unique_ptr<FrontDoorListeners> l(new FrontDoorListeners());
  for (const ModelConfig& m : config.models) {
    http::OpenAiModel o;
    o.embeddings = m.task == ModelTask::kEmbeddings;
    o.embedding_dimensions = m.embedding_dimensions;
    o.accepts_dimensions = m.accepts_dimensions;
    o.chat_template = m.chat_template;
    o.chat_backend = m.backend.kind == "openai" && m.backend.http.openai_api == "chat";
    door.openai_models.push_back(std::move(o));
  }
  http::FrontDoor::Options public_door = door;
  public_door.serve_internal = !config.admin.enabled;
  l->public_door_ = std::make_unique<http::FrontDoor>(std::move(public_door));
  http::HttpServer::Options public_options =
      HttpServerOptions(config.server, l->public_door_.get());
  public_options.connection_contexts = &pool;
  auto server = http::HttpServer::Create(pool.main(), public_options);
  if (!server.ok()) return server.status();
  l->public_ = std::move(server.value());
  if (config.admin.enabled) {
    door.serve_inference = false;
    l->admin_door_ = std::make_unique<http::FrontDoor>(std::move(door));
    ServerConfig admin = config.server;
    admin.listen_address = config.admin.listen_address;
    admin.port = config.admin.port;
    admin.max_connections = 256;  // operators and scrapers
    admin.max_connections_per_client = 0;
    http::HttpServer::Options admin_options = HttpServerOptions(admin, l->admin_door_.get());
    admin_options.connection_contexts = &pool;
    auto admin_server = http::HttpServer::Create(pool.main(), admin_options);
    if (!admin_server.ok()) return admin_server.status();
    l->admin_ = std::move(admin_server.value());
  }
  return l;
}

void FrontDoorListeners::AddMetrics(metrics::Registry& registry) {
  http::HttpServer* s = public_.get();
  registry.AddCallbackGauge("sluice_open_connections", "Client connections open now.", {},
                            [s] { return double(s->open_connections()); });
  registry.AddCallbackCounter(
      "sluice_refused_connections_total",
      "Connections refused at accept (503 + close): over max_connections, the per-client cap "
      "or the unauthenticated-memory budget.",
      {}, [s] { return double(s->refused_connections()); });
  registry.AddCallbackGauge(
      "sluice_unauthenticated_connection_bytes",
      "Bytes held by connections that have not sent an authenticated request yet.", {},
      [s] { return double(s->unauthenticated_bytes()); });
  registry.AddCallbackCounter("sluice_accept_failures_total",
                              "accept() calls that failed (out of descriptors or memory).", {},
                              [s] { return double(s->accept_failures()); });
}

void FrontDoorListeners::Start(const AppConfig& config) {
  // The admin line comes first: "listening" is the last line a launcher
  // waits for.
  if (admin_) {
    admin_->Start();
    std::printf("sluice: admin on http://%s:%u\n", config.admin.listen_address.c_str(),
                static_cast<unsigned>(admin_->port()));
  }
  public_->Start();
  std::printf("sluice: listening on http://%s:%u\n", config.server.listen_address.c_str(),
              static_cast<unsigned>(public_->port()));
  std::fflush(stdout);
}

void FrontDoorListeners::StopAccepting() {
  public_->StopAccepting();
  if (admin_) admin_->StopAccepting();
}

}  // namespace sluice
