// HTTP types shared by the front door (Boost.Beast string bodies).
#pragma once

#include <functional>
#include <memory_resource>
#include <optional>
#include <string>

#include <boost/beast/http.hpp>

namespace sluice::http {

namespace bhttp = boost::beast::http;
// Request header fields live in a per-connection arena (no allocation per
// field); so a request, as handed to RequestHandler::Handle(), must not be
// kept beyond that call.
using RequestAllocator = std::pmr::polymorphic_allocator<char>;
using RequestFields = bhttp::basic_fields<RequestAllocator>;
using HttpRequest = bhttp::request<bhttp::string_body, RequestFields>;
using HttpResponse = bhttp::response<bhttp::string_body>;

// A response in wire form: status line, header fields and body.
struct WireResponse {
  std::string bytes;
  bool keep_alive = true;  // whether the connection stays open afterwards
  int status = 0;          // the HTTP status written in `bytes`
  // A part of a streamed response (the first holds the header): more parts
  // follow, and the last one has `more` false. Parts are written in the
  // order they are handed to the Reply; the client stays watched until the
  // last (a client gone mid-stream runs the OnClientGone() callback).
  bool more = false;
};

// Serializes `response` (see response_writer.h).
WireResponse ToWire(const HttpResponse& response);

// Sends the response for one request. Call exactly once, from any thread —
// or, for a streamed response, once per part (WireResponse::more), all from
// the connection's thread (inside Post()), which keeps them in order. Takes
// a Beast response, or one already serialized (the inference hot path).
class Reply;

// Tells a handler when its client goes away before the reply is sent.
// Owned by the connection; valid while the request's Reply is alive.
class ClientWatch {
 public:
  virtual ~ClientWatch() = default;
  // Registers `fn` to run once, on an I/O thread, if the client closes the
  // connection before this request's reply is sent; replaces an earlier
  // registration. `fn` must not block. Thread-safe. Only a request that
  // registered is watched (the watch costs a readiness registration).
  virtual void OnClientGone(std::function<void()> fn) = 0;
};

class Reply {
 public:
  using Sink = std::function<void(WireResponse&&)>;
  using Poster = std::function<void(std::function<void()>)>;
  Reply() = default;
  explicit Reply(Sink sink, ClientWatch* watch = nullptr, Poster post = nullptr)
      : sink_(std::move(sink)), watch_(watch), post_(std::move(post)) {}
  void operator()(HttpResponse&& response) const { sink_(ToWire(response)); }
  void operator()(WireResponse&& response) const { sink_(std::move(response)); }
  // The connection's watch; null when the transport cannot tell.
  ClientWatch* client_watch() const { return watch_; }
  // Runs `fn` on the connection's I/O thread, never inside this call: a
  // handler resumes there after waiting on a thread that must not block
  // (a Redis reply's). A transport without a thread of its own (a test's)
  // runs it inline.
  void Post(std::function<void()> fn) const {
    if (post_) return post_(std::move(fn));
    fn();
  }
  // This reply, with `observer` shown each part just before it is sent.
  Reply Observed(std::function<void(const WireResponse&)> observer) const {
    return Reply(
        [sink = sink_, observer = std::move(observer)](WireResponse&& response) {
          observer(response);
          sink(std::move(response));
        },
        watch_, post_);
  }

 private:
  Sink sink_;
  ClientWatch* watch_ = nullptr;
  Poster post_;
};

// Handles one parsed request. Implementations must not block: slow work
// (inference) replies later through `reply`, and must copy what they need
// from `request` before returning.
// What a handler decides from a request's header alone (see CheckHeader).
struct HeaderVerdict {
  // Sent instead of handling the request; the connection then closes
  // without reading the body.
  std::optional<HttpResponse> refuse;
  // The request carries a valid credential (API key or service token): the
  // connection stops counting against the unauthenticated-memory budget.
  bool authenticated = false;
};

class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // Called once a request's header is complete, before any of its body is
  // read and before "100 Continue" is sent. Must not block and must not keep
  // `header`. Default: read the body, not authenticated.
  virtual HeaderVerdict CheckHeader(const HttpRequest& header) { return {}; }
  virtual void Handle(HttpRequest&& request, Reply reply) = 0;
};

}  // namespace sluice::http
