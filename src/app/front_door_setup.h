// Wiring shared by the commands that run a front door (`sluice serve`,
// `sluice gateway`): the pieces built the same way from AppConfig. Pure
// construction helpers; no state.
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>

#include "config/config.h"
#include "core/authenticator.h"
#include "http/http_server.h"

namespace sluice {

// The authenticator for the config's tiers, keys and service token.
// Errors: kInvalidArgument (a key the authenticator refuses).
Result<std::unique_ptr<Authenticator>> MakeAuthenticator(const AppConfig& config);

// HTTP server limits from `server:`; `handler` is borrowed.
http::HttpServer::Options HttpServerOptions(const ServerConfig& server,
                                            http::RequestHandler* handler);

// Runs `ioc` on `threads` threads (the caller's included) until it stops.
void RunIoContext(boost::asio::io_context& ioc, int threads);

}  // namespace sluice
