#include "backends/http/http_backend.h"

#include <utility>

#include <boost/asio/post.hpp>

namespace sluice::http_backend {

Result<std::unique_ptr<HttpBackend>> HttpBackend::Create(const Options& options) {
  if (options.io_context == nullptr) return InvalidArgument("HTTP backend needs an io_context");
  Result<Endpoint> endpoint = ParseEndpointUrl(options.url);
  if (!endpoint.ok()) return endpoint.status();
  Result<std::unique_ptr<BatchProtocol>> protocol = MakeBatchProtocol(
      {options.protocol, options.model, endpoint->base_path, "text_input", "text_output"});
  if (!protocol.ok()) return protocol.status();
  HttpConnection::Options c;
  c.endpoint = endpoint.value();
  c.connect_timeout_ms = options.connect_timeout_ms;
  c.request_timeout_ms = options.request_timeout_ms;
  c.body_limit_bytes = options.response_body_limit_bytes;
  if (c.endpoint.tls) {
    c.tls = options.tls_context;
    if (!c.tls) {
      auto ctx = MakeTlsContext(options.tls);
      if (!ctx.ok()) return ctx.status();
      c.tls = std::move(ctx.value());
    }
  }
  auto connection = HttpConnection::Create(*options.io_context, std::move(c));
  if (!connection.ok()) return connection.status();
  return std::unique_ptr<HttpBackend>(
      new HttpBackend(options, std::move(protocol.value()), std::move(connection.value())));
}

HttpBackend::HttpBackend(const Options& options, std::unique_ptr<BatchProtocol> protocol,
                         std::unique_ptr<HttpConnection> connection)
    : options_(options),
      name_(std::string(ProtocolName(options.protocol)) + ":" + options.url + "#" +
            std::to_string(options.slot_index)),
      protocol_(std::move(protocol)),
      connection_(std::move(connection)),
      busy_(std::make_shared<std::atomic<bool>>(false)) {}

void HttpBackend::RunBatch(const std::vector<RequestPtr>& batch, DoneFn done) {
  if (busy_->exchange(true)) {
    boost::asio::post(*options_.io_context, [done = std::move(done), name = name_]() {
      BatchResult r;
      r.status = Internal(name + " is already running a batch");
      done(std::move(r));
    });
    return;
  }
  EncodedBatch encoded = protocol_->Encode(batch);
  // The completion must not touch `this`: the backend may be destroyed while
  // the reply is in flight, so it holds its own references.
  auto on_reply = [batch, done = std::move(done), busy = busy_, protocol = protocol_,
                   version = options_.model_version,
                   name = name_](Result<HttpReply> reply) mutable {
    BatchResult result;
    if (!reply.ok()) {
      result.status = Status(reply.status().code(), name + ": " + reply.status().message());
    } else {
      result = protocol->Decode(reply->status, reply->body, batch);
      if (!result.status.ok()) {
        result.status = Status(result.status.code(), name + ": " + result.status.message());
        result.items.clear();
      }
    }
    if (result.model_version.empty()) result.model_version = version;
    busy->store(false);
    done(std::move(result));
  };
  connection_->Post(std::move(encoded.target), std::move(encoded.body), std::move(on_reply));
}

}  // namespace sluice::http_backend
