// HTTP types shared by the front door (Boost.Beast string bodies).
#pragma once

#include <functional>

#include <boost/beast/http.hpp>

namespace sluice::http {

namespace bhttp = boost::beast::http;
using HttpRequest = bhttp::request<bhttp::string_body>;
using HttpResponse = bhttp::response<bhttp::string_body>;

// Sends the response for one request. Call exactly once, from any thread.
using Reply = std::function<void(HttpResponse&&)>;

// Handles one parsed request. Implementations must not block: slow work
// (inference) replies later through `reply`.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  virtual void Handle(HttpRequest&& request, Reply reply) = 0;
};

}  // namespace sluice::http
