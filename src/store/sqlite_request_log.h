// SqliteRequestLog: the durable request log in one SQLite file, the default
// for `sluice serve`.
//
// A DurableRequestLog (see durable_request_log.h for the layers and the
// overload behaviour) whose writer thread appends to the file in batches:
// one prepared statement per record, one transaction per batch, WAL mode, so
// that lookups read while the writer writes. Create() opens the file and
// creates or migrates the schema (schema_version table; idempotent) before
// it returns, so a bad path is reported at start, not later.
//
// Lookup() of a record that left memory and the buffer is a direct indexed
// query on a separate connection; it waits at most lookup_timeout_ms for a
// lock (rarely: WAL readers do not wait for the writer).
//
// One process per file: several processes may share a file (SQLite locks),
// but they then wait for each other's writes; use PostgresRequestLog for many
// gateways. Thread-safe. The destructor writes what is buffered, waiting at
// most close_timeout_ms.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "store/durable_request_log.h"

namespace sluice::store {

class SqliteRequestLog final : public DurableRequestLog {
 public:
  struct Options : DurableLogOptions {
    // The database file; created if missing (its directory must exist).
    // ":memory:" and other non-file names are refused.
    std::string path = "sluice-requests.db";
    // How long a write waits for a lock held by another connection before it
    // fails and is retried with backoff. >= 0.
    int64_t busy_timeout_ms = 1'000;
    // How long Lookup() waits for a lock. >= 0.
    int64_t lookup_timeout_ms = 250;
  };

  // Validates `options`, opens `path` and migrates its schema, and starts the
  // writer. Errors: kInvalidArgument for bad options or a schema newer than
  // this build, kUnavailable when the file cannot be opened, kInternal for
  // other SQLite errors. The message names the path.
  static Result<std::unique_ptr<SqliteRequestLog>> Create(const Options& options);

 private:
  using DurableRequestLog::DurableRequestLog;
};

}  // namespace sluice::store
