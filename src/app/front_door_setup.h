// Wiring shared by the commands that run a front door (`sluice serve`,
// `sluice gateway`): the pieces built the same way from AppConfig. Pure
// construction helpers; no state.
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>

#include "config/config.h"
#include "core/authenticator.h"
#include "http/http_server.h"
#include "limits/admission_controller.h"

namespace sluice {

// The authenticator for the config's tiers, keys and service token.
// Errors: kInvalidArgument (a key the authenticator refuses).
Result<std::unique_ptr<Authenticator>> MakeAuthenticator(const AppConfig& config);

// Admission options for `model`: the config's tier thresholds (the seed's
// where a tier sets none), `total_slots` slots, the sim backend's cost model
// as the prior (else the seed GPU's), the target utilisation.
AdmissionController::Options AdmissionOptionsFor(const AppConfig& app, const ModelConfig& model,
                                                 size_t total_slots);

// HTTP server limits from `server:`; `handler` is borrowed.
http::HttpServer::Options HttpServerOptions(const ServerConfig& server,
                                            http::RequestHandler* handler);

// Runs `ioc` on `threads` threads (the caller's included) until it stops.
void RunIoContext(boost::asio::io_context& ioc, int threads);

}  // namespace sluice
