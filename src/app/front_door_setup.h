// Wiring shared by the commands that run a front door (`sluice serve`,
// `sluice gateway`): the pieces built the same way from AppConfig. Pure
// construction helpers; no state.
#pragma once

#include <memory>

#include "common/io_context_pool.h"
#include "config/config.h"
#include "core/authenticator.h"
#include "http/front_door.h"
#include "http/http_server.h"
#include "metrics/registry.h"

namespace sluice {

// The authenticator for the config's tiers, keys and service token.
// Errors: kInvalidArgument (a key the authenticator refuses).
Result<std::unique_ptr<Authenticator>> MakeAuthenticator(const AppConfig& config);

// HTTP server limits from `server:`; `handler` is borrowed.
http::HttpServer::Options HttpServerOptions(const ServerConfig& server,
                                            http::RequestHandler* handler);

// Raises this process's open-file limit (RLIMIT_NOFILE) to `wanted`, or to
// the hard limit when that is lower (then logs a warning: connections
// beyond it will be refused at accept). Returns the soft limit in force.
uint64_t RaiseOpenFileLimit(uint64_t wanted);

// The front door's listeners: the public one and, when the config has an
// `admin:` section, a second one that alone serves /internal/* and /metrics.
// Owns the FrontDoors and HttpServers; must outlive the pool's Run(). The
// listeners run on pool.main(), their connections over all of the pool.
class FrontDoorListeners {
 public:
  // Binds both listeners (not yet accepting) and raises the open-file limit
  // to what server.max_connections needs. Errors: an address in use or bad.
  static Result<std::unique_ptr<FrontDoorListeners>> Create(IoContextPool& pool,
                                                            const AppConfig& config,
                                                            http::FrontDoor::Options door);

  http::HttpServer& public_server() { return *public_; }
  // Registers sluice_open_connections, sluice_refused_connections_total and
  // sluice_unauthenticated_connection_bytes (public listener).
  void AddMetrics(metrics::Registry& registry);
  // Starts accepting and prints "sluice: listening on http://ADDR:PORT"
  // (and "sluice: admin on http://ADDR:PORT") on stdout.
  void Start(const AppConfig& config);
  void StopAccepting();  // both listeners; open connections go on

 private:
  FrontDoorListeners() = default;
  std::unique_ptr<http::FrontDoor> public_door_, admin_door_;
  std::unique_ptr<http::HttpServer> public_, admin_;
};

}  // namespace sluice
