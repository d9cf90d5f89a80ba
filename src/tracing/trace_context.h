// W3C Trace Context (https://www.w3.org/TR/trace-context/): the ids of a
// span, and the traceparent and tracestate headers that carry them from
// process to process (client -> gateway -> Redis -> worker -> backend).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::tracing {

using TraceId = std::array<uint8_t, 16>;
using SpanId = std::array<uint8_t, 8>;

// A span's place in its trace. Default: none (invalid).
struct SpanContext {
  TraceId trace_id{};
  SpanId span_id{};
  bool sampled = false;  // its trace is recorded (flag 01)
  bool valid() const;    // neither id is all zero
};

// A traceparent header, "00-<32 hex>-<16 hex>-<2 hex flags>" (lower-case
// hex, ids not all zero). A later version (not "ff") is read for the same
// fields and may add more after a '-'. nullopt for anything else: the
// request then starts a new trace, as the specification asks.
std::optional<SpanContext> ParseTraceparent(std::string_view header);
// Version 00 of `context`.
std::string FormatTraceparent(const SpanContext& context);

// A tracestate header kept to be passed on: at most 512 characters of
// printable ASCII (else "": the specification lets a vendor drop it).
std::string SanitizeTracestate(std::string_view header);

// Random non-zero ids (a per-thread generator seeded from the system).
TraceId NewTraceId();
SpanId NewSpanId();

std::string Hex(const TraceId& id);
std::string Hex(const SpanId& id);

// Nanoseconds since the Unix epoch, now (system clock): span times.
int64_t NowUnixNanos();

}  // namespace sluice::tracing
