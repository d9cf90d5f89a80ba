#include "app/process_tracing.h"

#include <spdlog/spdlog.h>

namespace sluice {
namespace {
constexpr const char* kExported = "sluice_trace_spans_exported_total";
constexpr const char* kDropped = "sluice_trace_spans_dropped_total";
}  // namespace

Result<std::unique_ptr<ProcessTracing>> ProcessTracing::Create(const TracingConfig& config,
                                                               const std::string& role,
                                                               const std::string& instance_id,
                                                               metrics::Registry* registry) {
  std::unique_ptr<ProcessTracing> out(new ProcessTracing(registry));
  if (config.otlp_endpoint.empty()) return out;
  tracing::SpanExporter::Options o;
  o.endpoint = config.otlp_endpoint;
  o.resource.service_name = config.service_name;
  o.resource.instance_id = instance_id;
  o.resource.role = role;
  o.max_queue_spans = config.max_queue_spans;
  o.max_batch_spans = config.export_batch_spans;
  o.interval_ms = config.export_interval_ms;
  o.timeout_ms = config.export_timeout_ms;
  auto exporter = tracing::SpanExporter::Create(o);
  if (!exporter.ok()) return InvalidArgument("tracing." + exporter.status().message());
  out->exporter_ = std::move(exporter).value();
  tracing::Tracer::Options t;
  t.sample_ratio = config.sample_ratio;
  t.exporter = out->exporter_.get();
  out->tracer_ = std::make_unique<tracing::Tracer>(t);
  const tracing::SpanExporter* e = out->exporter_.get();
  registry->AddCallbackCounter(kExported, "Spans the OTLP receiver accepted.", {},
                               [e] { return static_cast<double>(e->stats().exported); });
  registry->AddCallbackCounter(
      kDropped, "Spans not exported: the export queue was full, or the receiver failed.",
      {{"reason", "queue_full"}}, [e] { return static_cast<double>(e->stats().dropped); });
  registry->AddCallbackCounter(
      kDropped, "Spans not exported: the export queue was full, or the receiver failed.",
      {{"reason", "export_failed"}}, [e] { return static_cast<double>(e->stats().failed); });
  spdlog::info("tracing: spans to {} (sample ratio {})", config.otlp_endpoint, config.sample_ratio);
  return out;
}

ProcessTracing::~ProcessTracing() {
  if (exporter_ == nullptr) return;
  registry_->RemoveCallback(kExported, {});
  registry_->RemoveCallback(kDropped, {{"reason", "queue_full"}});
  registry_->RemoveCallback(kDropped, {{"reason", "export_failed"}});
}

}  // namespace sluice
