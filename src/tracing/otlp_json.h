// OTLP/HTTP JSON (opentelemetry-proto, ExportTraceServiceRequest): the body
// POSTed to a receiver's /v1/traces (Jaeger, the OpenTelemetry Collector:
// port 4318). Ids are hex strings and 64-bit numbers decimal strings, as
// the OTLP JSON mapping requires.
#pragma once

#include <string>
#include <vector>

#include "tracing/span.h"

namespace sluice::tracing {

// Who sends the spans: the resource's attributes.
struct Resource {
  std::string service_name = "sluice";  // service.name
  std::string instance_id;              // service.instance.id (a process's id); "" = left out
  std::string role;                     // sluice.role: serve, gateway, worker; "" = left out
};

std::string EncodeOtlpJson(const Resource& resource, const std::vector<Span>& spans);

}  // namespace sluice::tracing
