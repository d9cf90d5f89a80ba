#include "backends/http/http_backend.h"

#include <mutex>
#include <utility>

#include <boost/asio/post.hpp>

namespace sluice::http_backend {

namespace {

// One RunBatch(): the protocol's groups, sent one after another, merged into
// one result in input order. Owned by the completions in flight.
struct GroupedRun {
  std::vector<RequestPtr> batch;
  // The batch span's (the members' batch_traceparent when RunBatch() ran:
  // a retry restamps them while this run may still be sending).
  std::string traceparent;
  std::vector<std::vector<size_t>> groups;
  size_t next = 0;  // the group to send next
  BatchResult result;
  Backend::DoneFn done;
  std::shared_ptr<const BatchProtocol> protocol;
  std::shared_ptr<SlotConnection> link;
  std::shared_ptr<std::atomic<bool>> busy;
  std::string version;  // Options::model_version
  std::string name;     // for messages
};

// True when `groups` holds every index of a batch of `n` exactly once.
bool Partitions(const std::vector<std::vector<size_t>>& groups, size_t n) {
  std::vector<bool> seen(n, false);
  size_t count = 0;
  for (const auto& group : groups) {
    if (group.empty()) return false;
    for (size_t i : group) {
      if (i >= n || seen[i]) return false;
      seen[i] = true;
      ++count;
    }
  }
  return count == n;
}

void Finish(const std::shared_ptr<GroupedRun>& run, Status status) {
  BatchResult result = std::move(run->result);
  if (!status.ok()) {
    result.status = Status(status.code(), run->name + ": " + status.message());
    result.items.clear();
  }
  if (result.model_version.empty()) result.model_version = run->version;
  Backend::DoneFn done = std::move(run->done);
  run->busy->store(false);
  done(std::move(result));
}

// Sends group `run->next`; its reply sends the one after, until all are in.
void SendNextGroup(const std::shared_ptr<GroupedRun>& run) {
  if (run->next == run->groups.size()) return Finish(run, Status::Ok());
  const std::vector<size_t>& group = run->groups[run->next];
  std::vector<RequestPtr> items;  // the group's requests, or the whole batch
  if (group.size() == run->batch.size()) {
    items = run->batch;  // one group of everything: ascending, so input order
  } else {
    items.reserve(group.size());
    for (size_t i : group) items.push_back(run->batch[i]);
  }
  EncodedBatch encoded = run->protocol->Encode(items);
  auto on_reply = [run, items](Result<HttpReply> reply) {
    if (!reply.ok()) return Finish(run, reply.status());
    BatchResult part = run->protocol->Decode(reply->status, reply->body, items);
    if (!part.status.ok()) return Finish(run, part.status);
    const std::vector<size_t>& group = run->groups[run->next];
    if (part.items.size() != group.size()) {
      return Finish(run, Internal("protocol decoded " + std::to_string(part.items.size()) +
                                  " results for " + std::to_string(group.size()) + " items"));
    }
    for (size_t k = 0; k < group.size(); ++k) {
      run->result.items[group[k]] = std::move(part.items[k]);
    }
    if (run->result.model_version.empty()) run->result.model_version = part.model_version;
    ++run->next;
    SendNextGroup(run);
  };
  {
    std::lock_guard lock(run->link->mu);
    if (!run->link->closed) {
      // Post() never runs the completion inline, so holding `mu` is safe.
      run->link->connection->Post(std::move(encoded.target), std::move(encoded.body),
                                  std::move(on_reply), run->traceparent);
      return;
    }
  }
  Finish(run, Unavailable("the backend was shut down"));
}

}  // namespace

Result<std::unique_ptr<HttpConnection>> MakeSlotConnection(const HttpBackend::Options& options,
                                                           const Endpoint& endpoint) {
  HttpConnection::Options c;
  c.endpoint = endpoint;
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
  return HttpConnection::Create(*options.io_context, std::move(c));
}

Result<std::unique_ptr<HttpBackend>> HttpBackend::Create(const Options& options) {
  if (options.io_context == nullptr) return InvalidArgument("HTTP backend needs an io_context");
  Result<Endpoint> endpoint = ParseEndpointUrl(options.url);
  if (!endpoint.ok()) return endpoint.status();
  Result<std::unique_ptr<BatchProtocol>> protocol = MakeBatchProtocol(
      {options.protocol, options.model, endpoint->base_path, "text_input", "text_output"});
  if (!protocol.ok()) return protocol.status();
  auto connection = MakeSlotConnection(options, endpoint.value());
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
      link_(std::make_shared<SlotConnection>()),
      busy_(std::make_shared<std::atomic<bool>>(false)) {
  link_->connection = std::move(connection);
}

HttpBackend::~HttpBackend() {
  std::unique_ptr<HttpConnection> connection;
  {
    std::lock_guard lock(link_->mu);
    link_->closed = true;
    connection = std::move(link_->connection);
  }
  // Destroyed here, outside `mu`: a call in flight fails promptly and its
  // completion finishes the batch with that error.
}

void HttpBackend::RunBatch(const std::vector<RequestPtr>& batch, DoneFn done) {
  if (busy_->exchange(true)) {
    boost::asio::post(*options_.io_context, [done = std::move(done), name = name_]() {
      BatchResult r;
      r.status = Internal(name + " is already running a batch");
      done(std::move(r));
    });
    return;
  }
  // The completions must not touch `this`: the backend may be destroyed while
  // a reply is in flight, so the run holds its own references.
  auto run = std::make_shared<GroupedRun>();
  run->batch = batch;
  run->traceparent = batch.front()->batch_traceparent;
  run->groups = protocol_->Groups(batch);
  run->result.items.resize(batch.size());
  run->done = std::move(done);
  run->protocol = protocol_;
  run->link = link_;
  run->busy = busy_;
  run->version = options_.model_version;
  run->name = name_;
  if (!Partitions(run->groups, batch.size())) {
    // A protocol bug; fail on the io_context like any other batch error.
    boost::asio::post(*options_.io_context,
                      [run] { Finish(run, Internal("protocol grouped the batch wrongly")); });
    return;
  }
  SendNextGroup(run);
}

}  // namespace sluice::http_backend
