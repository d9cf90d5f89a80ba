// ProcessTracing: a process's tracer (the `tracing:` section): the OTLP
// exporter, the sampler, and their metrics
// (sluice_trace_spans_exported_total, sluice_trace_spans_dropped_total
// {reason="queue_full"|"export_failed"}). tracer() is null when tracing is
// off (no otlp_endpoint). Destroy before the registry; the destructor sends
// the spans still queued.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "config/config.h"
#include "metrics/registry.h"
#include "tracing/tracer.h"

namespace sluice {

class ProcessTracing {
 public:
  // `role`: serve, gateway or worker; `instance_id`: this process's id
  // (its spans' service.instance.id). Errors: kInvalidArgument naming the
  // `tracing.` field.
  static Result<std::unique_ptr<ProcessTracing>> Create(const TracingConfig& config,
                                                        const std::string& role,
                                                        const std::string& instance_id,
                                                        metrics::Registry* registry);
  ~ProcessTracing();
  ProcessTracing(const ProcessTracing&) = delete;
  ProcessTracing& operator=(const ProcessTracing&) = delete;

  const tracing::Tracer* tracer() const { return tracer_.get(); }

 private:
  explicit ProcessTracing(metrics::Registry* registry) : registry_(registry) {}

  metrics::Registry* registry_;
  std::unique_ptr<tracing::SpanExporter> exporter_;
  std::unique_ptr<tracing::Tracer> tracer_;
};

}  // namespace sluice
