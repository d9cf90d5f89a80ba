// MakeRequestLog: the RequestLog the config's `request_log:` section names —
// SQLite (default), PostgreSQL or memory only — for `sluice serve` and the
// scale-out processes. The durable logs keep the last server.recent_requests
// requests in memory too and write in the background (src/store/).
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "config/config.h"
#include "core/request_log.h"
#include "metrics/registry.h"

namespace sluice {

// Errors: the database cannot be opened (SQLite) or the options are bad.
// A PostgreSQL that is down at start is not an error: records are buffered
// until it answers. `worker_id` is stored on batch records; `registry` gets
// the log's metrics (may be null).
Result<std::unique_ptr<RequestLog>> MakeRequestLog(const AppConfig& config,
                                                   metrics::Registry* registry,
                                                   const std::string& worker_id);

}  // namespace sluice
