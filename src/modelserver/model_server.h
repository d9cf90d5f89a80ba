// ModelServer: `sluice model-server`, a stand-in fixed inference API on top
// of the simulated accelerator, for integration tests, benchmarks and demos
// that need a real network hop. Serves, on one HTTP/1.1 keep-alive listener:
//
//   POST /v1/batch                  generic batch protocol (per-item errors)
//   POST /v1/completions            OpenAI-compatible, "prompt" array
//   POST /v1/embeddings             OpenAI-compatible, "input" array
//   POST /v1/chat/completions       OpenAI-compatible, one conversation;
//                                   "stream": true answers server-sent
//                                   events, one word per 1/stream rate
//   GET  /admin/stats               {"batches", "items"}: inference
//                                   requests answered 200 so far, and
//                                   their items
//   GET  /admin/streams             {"started", "finished", "cancelled"}:
//                                   chat streams so far (cancelled: the
//                                   client left before the end)
//   POST /v2/models/{model}/infer   KServe v2, BYTES tensor "text_input" [n, 1]
//   GET  /v2/health/ready, GET /health   200 when up
//   GET|POST /admin/faults          read / change fault injection (JSON)
//   GET  /admin/traceparents        {"traceparents": [...]}: the traceparent
//                                   headers of the last 256 inference
//                                   requests that carried one, oldest first
//                                   (what a tracing gateway propagates)
//
// Formats: modelserver/model_api.h. Each request is one batch; batches run on
// `devices` simulated accelerators one at a time each and wait in FIFO order
// when all are busy; a batch of n takes fixed_latency_us + n *
// per_item_latency_us (+ the injected added latency). Outputs are
// sim::SimulateCompletion(model, input, max_tokens), the embedded simulator's.
// A request for another model than `model` gets 404.
//
// Faults (FaultInjector) apply per batch: hang (the request is never
// answered; the connection stays open until Stop()), close_connection,
// error_rate (HTTP 500 for the whole batch), item_error_rate (generic protocol:
// those items carry {"error"}; the other protocols cannot express per-item
// errors, so any failed item fails the batch with 500).
//
// Threading: I/O runs on the io_context given to Create() (any number of
// threads; each connection has a strand). Create() binds and listens at once,
// so port() is valid when it returns; Stop() (thread-safe) closes the
// listener and every connection. Destroy only after the io_context stopped.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "common/status.h"
#include "modelserver/fault_injector.h"

namespace sluice::modelserver {

class ModelServer {
 public:
  struct Options {
    std::string listen_address = "127.0.0.1";
    uint16_t port = 0;                        // 0 = any free port
    std::string model = "sluice-sim-small";   // the one model served
    std::string model_version;                // empty = model + "-sim"
    int devices = 1;                          // concurrent batches, >= 1
    int64_t fixed_latency_us = 34'000;        // per batch
    int64_t per_item_latency_us = 500;        // per item (32 items ~ 50 ms)
    double jitter = 0.0;                      // +/- fraction of the latency, 0..1
    int embedding_dims = 8;                   // length of /v1/embeddings vectors
    double stream_tokens_per_second = 50;     // chat streams: words per second, > 0
    uint64_t body_limit_bytes = 64ull << 20;  // larger requests: 413
    int64_t idle_timeout_ms = 120'000;        // keep-alive connection with no request
    Faults faults;                            // initial fault injection
    uint64_t seed = 1;                        // fault draws and jitter
  };

  // Validates, binds and starts accepting. Errors: bad options (kInvalidArgument),
  // the address cannot be bound (kUnavailable).
  static Result<std::unique_ptr<ModelServer>> Create(boost::asio::io_context& ioc,
                                                     const Options& options);
  ~ModelServer();

  uint16_t port() const;
  FaultInjector& faults();
  void Stop();

  struct State;  // shared with the sessions

 private:
  explicit ModelServer(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

}  // namespace sluice::modelserver
