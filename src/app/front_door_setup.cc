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

AdmissionController::Options AdmissionOptionsFor(const AppConfig& app, const ModelConfig& model,
                                                 size_t total_slots) {
  AdmissionController::Options a;
  a.model = model.name;
  for (const TierPolicy& t : app.tiers) {
    size_t depth = t.max_queue_depth < 0    ? SeedMaxQueueDepth(t.name)
                   : t.max_queue_depth == 0 ? kNoQueueDepthLimit
                                            : static_cast<size_t>(t.max_queue_depth);
    a.tiers.push_back({t.name, t.priority, depth});
  }
  a.total_slots = std::max<size_t>(total_slots, 1);
  a.max_batch_size = model.max_batch_size;
  if (model.backend.kind == "sim") {  // else the seed's GPU until batches are measured
    // A zero-cost simulated device still takes some time per batch.
    a.prior_batch_fixed_us = std::max<int64_t>(1, model.backend.sim.fixed_latency_us);
    a.prior_batch_per_item_us = model.backend.sim.per_item_latency_us;
  }
  a.target_utilization = app.admission.target_utilization;
  return a;
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
