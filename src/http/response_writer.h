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

}  // namespace sluice::http
