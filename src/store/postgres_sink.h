// The PostgreSQL side of the durable request log: PostgresSink (schema and
// batched writes) and PostgresReader (lookups by id), over libpqxx. Internal
// to src/store; the public type is PostgresRequestLog.
//
// Schema (version 1; schema_version records what was applied, migrations run
// under an advisory lock so that gateways starting together take turns):
//   requests(id text PRIMARY KEY, key_id, tier, model, status, http_status,
//            error, created_at timestamptz, completed_at, latency_ms,
//            batch_id bigint, worker_id, tokens_used), index on created_at;
//   batches(batch_id, worker_id, model, size, started_at, completed_at,
//           duration_ms, ok, error), primary key (worker_id, batch_id,
//           started_at), indexes on started_at and batch_id.
//
// A batch is written with COPY (pqxx::stream_to) into per-connection
// temporary staging tables, then moved with INSERT ... SELECT ... ON CONFLICT:
// COPY's speed, and a retried batch (commit outcome unknown) changes nothing.
// Text is made valid UTF-8 without NUL bytes first (PostgreSQL refuses
// both, and one refused value fails the whole COPY). A row PostgreSQL still
// refuses fails its Write() with kInternal; the LogWriter then writes the
// batch in pieces and sets aside only that row (see log_writer.h).
//
// No libpqxx exception leaves these classes.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "common/status.h"
#include "store/log_sink.h"

namespace sluice::store {

// Checks that `url` parses as a libpq connection string or URI.
// Errors: kInvalidArgument with libpq's message.
Status CheckPostgresUrl(const std::string& url);

struct PostgresConnection;  // a pqxx::connection (postgres_sink.cc)

// Thread-compatible (the writer thread's). Owns its connection.
class PostgresSink final : public LogSink {
 public:
  // `write_timeout_ms` bounds each statement (statement_timeout), so a hung
  // database delays Close() by at most that much.
  PostgresSink(std::string url, int64_t connect_timeout_s, int64_t write_timeout_ms);
  ~PostgresSink() override;

  // Connects, migrates and creates the staging tables. Errors: kUnavailable
  // when the server cannot be reached, kInvalidArgument for a schema newer
  // than this build, kInternal otherwise.
  Status Open() override;
  Status Write(std::span<const LogEntry> entries) override;
  Result<uint64_t> Prune(WallTime cutoff, uint64_t max_rows) override;
  void Close() override;

 private:
  const std::string url_;
  const int64_t connect_timeout_s_;
  const int64_t write_timeout_ms_;
  std::unique_ptr<PostgresConnection> conn_;
};

// Thread-safe: one connection behind a mutex. Find() runs with a
// statement_timeout of `lookup_timeout_ms`. When the connection is down it
// reconnects at most once per `reconnect_interval_ms` (a connect may block
// up to connect_timeout_s on an unreachable host; a refused one returns at
// once); in between, Find() returns nullopt at once.
class PostgresReader final : public RecordReader {
 public:
  PostgresReader(std::string url, int64_t connect_timeout_s, int64_t lookup_timeout_ms,
                 int64_t reconnect_interval_ms);
  ~PostgresReader() override;
  std::optional<RequestRecord> Find(const std::string& id) override;

 private:
  bool ConnectLocked();  // REQUIRES: mu_ held

  const std::string url_;
  const int64_t connect_timeout_s_;
  const int64_t lookup_timeout_ms_;
  const std::chrono::milliseconds reconnect_interval_;
  std::mutex mu_;
  std::unique_ptr<PostgresConnection> conn_;              // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point next_connect_{};  // GUARDED_BY(mu_)
};

}  // namespace sluice::store
