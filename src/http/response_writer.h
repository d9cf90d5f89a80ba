// Serializes a complete HttpResponse into one contiguous buffer.
//
// Beast's generic serializer walks a chain of buffer views per field, which
// dominated the front door's CPU profile; a small, fully formed response
// (status line, the message's own fields — including the Content-Length set
// by prepare_payload() and the Connection field set by keep_alive() — then
// the body) needs only one append per piece. REQUIRES: the response has a
// Content-Length (prepare_payload() was called) and is not chunked.
// Pure function; thread-safe.
#pragma once

#include <string>

#include "http/types.h"

namespace sluice::http {

// Replaces `out` with the wire form of `response`; reuses out's capacity.
void SerializeResponse(const HttpResponse& response, std::string* out);

// Makes `response` the last on its connection: keep_alive false, and its
// header says "Connection: close" (replacing an HTTP/1.0 keep-alive field)
// when it promised to keep the connection. No-op when keep_alive is already
// false. REQUIRES: `bytes` came from SerializeResponse or WireResponseBuilder.
void MarkLastOnConnection(WireResponse* response);

// Writes a response field by field straight into its wire form, for
// responses built per request on the hot path:
//   WireResponseBuilder b(200, 11, /*keep_alive=*/true);
//   b.Field("X-Request-Id", id);
//   WireResponse w = b.Finish("application/json", body);
// Adds Server, Content-Type, Content-Length and the Connection field that
// HTTP/1.0 keep-alive or HTTP/1.1 close need. Not thread-safe (a value).
class WireResponseBuilder {
 public:
  WireResponseBuilder(int status, unsigned version, bool keep_alive, size_t body_hint = 0);
  void Field(std::string_view name, std::string_view value);
  WireResponse Finish(std::string_view content_type, std::string_view body) &&;

 private:
  WireResponse out_;
};

}  // namespace sluice::http
