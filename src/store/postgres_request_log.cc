#include "store/postgres_request_log.h"

#include <utility>

#include "store/postgres_sink.h"

namespace sluice::store {

Result<std::unique_ptr<PostgresRequestLog>> PostgresRequestLog::Create(const Options& options) {
  if (Status s = Validate(options); !s.ok()) return s;
  if (options.url.empty()) return InvalidArgument("request log url is required");
  if (Status s = CheckPostgresUrl(options.url); !s.ok()) return s;
  if (options.connect_timeout_s < 1) return InvalidArgument("connect_timeout_s must be >= 1");
  if (options.write_timeout_ms < 1) return InvalidArgument("write_timeout_ms must be >= 1");
  if (options.lookup_timeout_ms < 1) return InvalidArgument("lookup_timeout_ms must be >= 1");
  if (options.lookup_reconnect_interval_ms < 0) {
    return InvalidArgument("lookup_reconnect_interval_ms must be >= 0");
  }

  auto sink = std::make_unique<PostgresSink>(options.url, options.connect_timeout_s,
                                             options.write_timeout_ms);
  if (options.connect_at_start) {
    if (Status s = sink->Open(); !s.ok()) return s;
  }
  auto reader = std::make_unique<PostgresReader>(options.url, options.connect_timeout_s,
                                                 options.lookup_timeout_ms,
                                                 options.lookup_reconnect_interval_ms);
  auto parts =
      MakeParts(options, "postgres", std::move(sink), options.connect_at_start, std::move(reader));
  if (!parts.ok()) return parts.status();
  return std::unique_ptr<PostgresRequestLog>(
      new PostgresRequestLog(options.worker_id, std::move(parts).value()));
}

}  // namespace sluice::store
