// LoadClient: many concurrent keep-alive HTTP/1.1 connections for load tests.
//
// Opens `connections` TCP connections to 127.0.0.1:port, and only when every
// connection attempt has finished does any of them send: so with at least as
// many requests as connections, all connections have a request in flight at
// once. Each connection then sends the next unsent request after the previous
// response arrived (a shared cursor, so requests go to whichever connection is
// free). A connection the server closes (no keep-alive) is reopened for the
// next request. Results come back in request order.
//
// Everything runs on one io_context driven by one background thread started by
// Start(). An overall timeout closes every connection: requests without a
// response then have status 0 and an error, so a hung server fails the test
// instead of hanging it.
//
// Thread-safety: Start() and Wait() from the owning thread; the progress
// counters may be read from any thread. The destructor stops and joins.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "testing/http_client.h"

namespace sluice::testing {

struct LoadRequest {
  std::string method = "POST";
  std::string target = "/v1/inference";
  std::string body;
  Headers headers;  // e.g. Authorization; Content-Type is added for a body
};

struct LoadResult {
  int status = 0;  // 0: no response (see error)
  std::string body;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string error;                           // transport error when status == 0
  std::chrono::microseconds latency{0};        // from write start to full response
};

struct LoadOptions {
  uint16_t port = 0;
  // Concurrent connections; at most one request in flight on each.
  size_t connections = 100;
  // Whole run, from Start(): after it every unfinished request fails.
  std::chrono::milliseconds timeout{60'000};
};

class LoadClient {
 public:
  LoadClient(LoadOptions options, std::vector<LoadRequest> requests);
  ~LoadClient();

  LoadClient(const LoadClient&) = delete;
  LoadClient& operator=(const LoadClient&) = delete;

  // Starts the background thread. REQUIRES: called once.
  void Start();
  // Blocks until every request has a result or the overall timeout passed
  // (the timeout bounds the wait). Returns one result per request, in order.
  // REQUIRES: Start() was called; call once.
  std::vector<LoadResult> Wait();

  // Convenience: Start() then Wait().
  static std::vector<LoadResult> Run(LoadOptions options, std::vector<LoadRequest> requests);

  // Progress, readable from any thread while running.
  size_t connections_open() const { return connections_open_.load(); }
  // Requests whose bytes have all been written to a socket.
  size_t requests_sent() const { return requests_sent_.load(); }
  size_t responses_received() const { return responses_received_.load(); }

 private:
  struct State;
  struct Connection;
  std::unique_ptr<State> state_;
  std::thread thread_;
  std::atomic<size_t> connections_open_{0};
  std::atomic<size_t> requests_sent_{0};
  std::atomic<size_t> responses_received_{0};
};

}  // namespace sluice::testing
