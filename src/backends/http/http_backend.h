// HttpBackend: one batch slot on one endpoint of a fixed inference API that
// speaks HTTP(S) — the `http` (generic batch), `openai` and `kserve` backend
// kinds. Each instance owns one keep-alive connection (HttpConnection), so a
// model with E endpoints and C connections per endpoint has E x C instances,
// one per dispatcher; the dispatchers' pull loop balances the endpoints.
//
// RunBatch() splits the batch into the slot's BatchProtocol::Groups() (one
// group, so one call, except for OpenAI completions whose items ask for
// different parameters: one call per parameter set), POSTs the groups one
// after another on the slot's connection and returns at once; each call gets
// its own request_timeout_ms. `done` runs exactly once on the io_context,
// after the last call, with:
//  - a batch error: kDeadlineExceeded when the connect or request timeout
//    expired (the connection is closed, so a hung server never hangs a
//    slot); kBackendError for refused/reset connections, TLS failures, non-2xx
//    replies, malformed or wrong-length replies (the message says which).
//    A failed call fails the whole batch; the groups after it are not sent;
//  - or one ItemResult per input in input order, where per-item errors of the
//    generic protocol fail only their items. model_version is the first
//    reply's that has one, or Options::model_version when none has.
//
// Thread-safe: RunBatch() may be called from any thread (one batch at a time
// per slot; a second concurrent call fails with kInternal). Destroying the
// backend closes its connection; a batch still in flight then completes with
// an error. The io_context must outlive every pending operation.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include "backends/http/batch_protocol.h"
#include "backends/http/http_connection.h"
#include "core/backend.h"

namespace sluice::http_backend {

// A slot's connection as the call in flight sees it. A call is posted only
// under `mu` and only while the backend lives; the backend's destructor sets
// `closed` under `mu`, so no call starts once the backend is gone.
struct SlotConnection {
  std::mutex mu;
  bool closed = false;                         // GUARDED_BY(mu)
  std::unique_ptr<HttpConnection> connection;  // GUARDED_BY(mu)
};

class HttpBackend final : public Backend {
 public:
  struct Options {
    ProtocolKind protocol = ProtocolKind::kGeneric;  // see ProtocolKindFor()
    std::string url;            // endpoint, e.g. "http://127.0.0.1:9000" (path = base path)
    std::string model;          // model name sent to the server (REQUIRED)
    std::string model_version;  // reported when the reply carries none
    int slot_index = 0;         // for name(): "<proto>:<url>#<slot>"
    int64_t connect_timeout_ms = 1'000;                // resolve + connect + TLS handshake
    int64_t request_timeout_ms = 3'000;                // send batch + read whole reply
    uint64_t response_body_limit_bytes = 64ull << 20;  // larger replies: batch error
    TlsOptions tls;  // https only: CA file, client cert + key (mTLS)
    // https only: a context shared by the slots of one endpoint; when null
    // one is built from `tls` (MakeTlsContext()).
    std::shared_ptr<boost::asio::ssl::context> tls_context;
    boost::asio::io_context* io_context = nullptr;  // REQUIRED; runs I/O and `done`
  };

  // Validates the options (URL, timeouts, TLS files); errors are
  // kInvalidArgument with a message naming the problem.
  static Result<std::unique_ptr<HttpBackend>> Create(const Options& options);

  ~HttpBackend() override;
  HttpBackend(const HttpBackend&) = delete;
  HttpBackend& operator=(const HttpBackend&) = delete;

  void RunBatch(const std::vector<RequestPtr>& batch, DoneFn done) override;
  const std::string& name() const override { return name_; }

 private:
  HttpBackend(const Options& options, std::unique_ptr<BatchProtocol> protocol,
              std::unique_ptr<HttpConnection> connection);

  const Options options_;
  const std::string name_;
  const std::shared_ptr<const BatchProtocol> protocol_;
  const std::shared_ptr<SlotConnection> link_;  // the connection, shared with the batch
  std::shared_ptr<std::atomic<bool>> busy_;     // shared with the in-flight completion
};

// The keep-alive connection of one slot with `options` to `endpoint` (the
// parsed options.url): its timeouts, body limit and TLS context (the shared
// one, else one built from options.tls). Errors: unreadable TLS files, bad
// timeouts.
Result<std::unique_ptr<HttpConnection>> MakeSlotConnection(const HttpBackend::Options& options,
                                                           const Endpoint& endpoint);

}  // namespace sluice::http_backend
