#include "store/sqlite_request_log.h"

#include <utility>

#include "store/sqlite_sink.h"

namespace sluice::store {

Result<std::unique_ptr<SqliteRequestLog>> SqliteRequestLog::Create(const Options& options) {
  if (Status s = Validate(options); !s.ok()) return s;
  if (options.path.empty() || options.path == ":memory:" || options.path.starts_with("file:")) {
    return InvalidArgument("request log path must name a file, got '" + options.path + "'");
  }
  if (options.busy_timeout_ms < 0) return InvalidArgument("busy_timeout_ms must be >= 0");
  if (options.lookup_timeout_ms < 0) return InvalidArgument("lookup_timeout_ms must be >= 0");

  auto sink = std::make_unique<SqliteSink>(options.path, options.busy_timeout_ms);
  if (Status s = sink->Open(); !s.ok()) return s;
  auto reader = SqliteReader::Open(options.path, options.lookup_timeout_ms);
  if (!reader.ok()) return reader.status();
  auto parts =
      MakeParts(options, "sqlite", std::move(sink), /*sink_open=*/true, std::move(reader).value());
  if (!parts.ok()) return parts.status();
  return std::unique_ptr<SqliteRequestLog>(
      new SqliteRequestLog(options.worker_id, std::move(parts).value()));
}

}  // namespace sluice::store
