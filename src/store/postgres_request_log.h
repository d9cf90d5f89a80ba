// PostgresRequestLog: the durable request log in PostgreSQL, for many
// gateways and workers sharing one database.
//
// A DurableRequestLog (see durable_request_log.h for the layers and the
// overload behaviour) whose writer thread holds one connection and writes
// each batch with COPY into a staging table and one INSERT ... ON CONFLICT
// (see postgres_sink.h). The schema is created or migrated on connect
// (schema_version table, advisory lock; idempotent).
//
// When PostgreSQL is slow or down, serving goes on: calls only append to the
// bounded buffer (oldest dropped when full, counted), and the writer
// reconnects by itself with backoff and writes what it still holds.
//
// Lookup() of a record that left memory and the buffer queries the database
// on a separate reader connection with statement_timeout lookup_timeout_ms;
// on any error it returns nullopt (the caller answers 404). While the reader
// is disconnected it tries to connect at most once per
// lookup_reconnect_interval_ms; such a connect may block Lookup() for up to
// connect_timeout_s when the host does not answer.
//
// Thread-safe. The destructor writes what is buffered, waiting at most
// close_timeout_ms, plus at most the one connect (connect_timeout_s) or
// statement (write_timeout_ms) in progress.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "store/durable_request_log.h"

namespace sluice::store {

class PostgresRequestLog final : public DurableRequestLog {
 public:
  struct Options : DurableLogOptions {
    // libpq connection URI or key=value string, e.g.
    // "postgresql://sluice@db.internal:5432/sluice". Required.
    std::string url;
    // Connect timeout for both connections (libpq rounds values below 2 up
    // to 2). >= 1.
    int64_t connect_timeout_s = 2;
    // statement_timeout of the writer's statements. >= 1.
    int64_t write_timeout_ms = 10'000;
    // statement_timeout of Lookup() queries. >= 1.
    int64_t lookup_timeout_ms = 250;
    // Least time between connect attempts of the lookup connection. >= 0.
    int64_t lookup_reconnect_interval_ms = 1'000;
    // When true, Create() connects and migrates before it returns and fails
    // if it cannot; when false, the writer does it in the background (records
    // are buffered meanwhile).
    bool connect_at_start = true;
  };

  // Validates `options` (the URL must parse) and starts the writer.
  // Errors: kInvalidArgument for bad options or a schema newer than this
  // build; with connect_at_start, kUnavailable when PostgreSQL cannot be
  // reached and kInternal when the schema cannot be created.
  static Result<std::unique_ptr<PostgresRequestLog>> Create(const Options& options);

 private:
  using DurableRequestLog::DurableRequestLog;
};

}  // namespace sluice::store
