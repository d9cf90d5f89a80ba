#include "app/request_log_factory.h"

#include "core/memory_request_log.h"
#include "store/postgres_request_log.h"
#include "store/sqlite_request_log.h"

namespace sluice {

namespace {
template <typename Options>
void ApplyCommon(const AppConfig& config, metrics::Registry* registry, const std::string& worker_id,
                 Options* o) {
  const RequestLogConfig& log = config.request_log;
  o->memory_capacity = config.server.recent_requests;
  o->buffer_capacity = log.buffer_capacity;
  o->flush_batch = log.flush_batch;
  o->flush_interval_ms = log.flush_interval_ms;
  o->close_timeout_ms = log.close_timeout_ms;
  o->retention_hours = log.retention_hours;
  o->worker_id = worker_id;
  o->metrics = registry;
}
}  // namespace

Result<std::unique_ptr<RequestLog>> MakeRequestLog(const AppConfig& config,
                                                   metrics::Registry* registry,
                                                   const std::string& worker_id) {
  const RequestLogConfig& log = config.request_log;
  if (log.backend == "sqlite") {
    store::SqliteRequestLog::Options o;
    ApplyCommon(config, registry, worker_id, &o);
    o.path = log.path;
    auto made = store::SqliteRequestLog::Create(o);
    if (!made.ok()) return made.status();
    return std::unique_ptr<RequestLog>(std::move(made).value());
  }
  if (log.backend == "postgres") {
    store::PostgresRequestLog::Options o;
    ApplyCommon(config, registry, worker_id, &o);
    o.url = log.url;
    o.connect_at_start = false;  // serving must not wait for the database
    auto made = store::PostgresRequestLog::Create(o);
    if (!made.ok()) return made.status();
    return std::unique_ptr<RequestLog>(std::move(made).value());
  }
  auto made = MemoryRequestLog::Create({config.server.recent_requests});
  if (!made.ok()) return made.status();
  return std::unique_ptr<RequestLog>(std::move(made).value());
}

}  // namespace sluice
