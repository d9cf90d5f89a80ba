#include "app/front_door_setup.h"

#include <algorithm>
#include <thread>
#include <vector>

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
  so.handler = handler;
  return so;
}

void RunIoContext(boost::asio::io_context& ioc, int threads) {
  std::vector<std::thread> extra;
  for (int i = 1; i < threads; ++i) extra.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (std::thread& t : extra) t.join();
}

}  // namespace sluice
