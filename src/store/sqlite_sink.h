// The SQLite side of the durable request log: SqliteSink (schema and batched
// writes) and SqliteReader (lookups by id). Internal to src/store; the public
// type is SqliteRequestLog.
//
// Schema (version 1; schema_version records what was applied):
//   requests(id TEXT PRIMARY KEY, key_id, tier, model, status, http_status,
//            error, created_at_us, completed_at_us, latency_ms, batch_id,
//            worker_id, tokens_used), index on created_at_us;
//   batches(batch_id, worker_id, model, size, started_at_us, completed_at_us,
//           duration_ms, ok, error), primary key (worker_id, batch_id,
//           started_at_us), indexes on started_at_us and batch_id.
// Times are microseconds since the Unix epoch. The database runs in WAL mode,
// so lookups read while the writer writes. Text is stored as valid UTF-8
// without NUL bytes; a row SQLite still refuses fails its Write() with
// kInternal, and the LogWriter sets aside only that row (see log_writer.h).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "common/status.h"
#include "store/log_sink.h"

struct sqlite3;
struct sqlite3_stmt;

namespace sluice::store {

// Write() inserts a batch's admissions first, then its final states (each
// kind in arrival order, many rows to a statement), then its batch rows.
// The reordering leaves the same rows: an admission never overwrites
// anything and a final state replaces only an admission, so one request's
// rows end as its first final state in any order that keeps final states in
// theirs (with the admission's created_at when both are in one batch).
//
// Thread-compatible (the writer thread's). Owns its connection.
class SqliteSink final : public LogSink {
 public:
  // Rows per INSERT statement, largest first: a Write()'s rows of one kind
  // go 32 to a statement, the rest 8, then 1, so that SQLite's work per
  // statement is paid once per many rows (the log's cost before and after:
  // bench/notes/12-lean-log.md).
  static constexpr std::array<size_t, 3> kStatementRows = {32, 8, 1};
  static constexpr size_t kRowsPerStatement = kStatementRows[0];

  // `busy_timeout_ms`: how long a write waits for a lock another connection
  // holds before failing with kUnavailable.
  SqliteSink(std::string path, int64_t busy_timeout_ms);
  ~SqliteSink() override;

  // Opens (creating the file if needed), sets WAL mode and migrates.
  // Errors: kUnavailable if the file cannot be opened or is locked,
  // kInvalidArgument for a schema newer than this build, kInternal otherwise.
  Status Open() override;
  Status Write(std::span<const LogEntry> entries) override;
  Result<uint64_t> Prune(WallTime cutoff, uint64_t max_rows) override;
  void Close() override;

 private:
  Status Fail(const std::string& what);  // status from the last error, for `what`
  Status Exec(const char* sql);
  Status Migrate();
  // Binds `r` as row `row` (0-based) of `st`.
  static void Bind(sqlite3_stmt* st, int row, const RequestRow& r);
  // Steps and resets `st`, which holds `rows` rows from `first` on.
  Status Step(sqlite3_stmt* st, const RequestRow& first, size_t rows);
  // Writes `rows` (all admissions, or all final states), in order, as few
  // statements as kStatementRows allows.
  Status InsertRequests(std::span<const RequestRow* const> rows, bool finished);
  Status Insert(const BatchRecord& b);

  // The inserts of one kind of request row, for kStatementRows[k] rows each.
  struct RequestStatements {
    std::array<sqlite3_stmt*, kStatementRows.size()> by_rows{};
  };

  const std::string path_;
  const int64_t busy_timeout_ms_;
  sqlite3* db_ = nullptr;
  RequestStatements admit_;        // INSERT ... ON CONFLICT DO NOTHING
  RequestStatements finish_;       // INSERT ... ON CONFLICT DO UPDATE
  sqlite3_stmt* batch_ = nullptr;  // INSERT ... ON CONFLICT DO NOTHING
};

// Thread-safe (one mutex around one read-only connection). Find() blocks at
// most `busy_timeout_ms` waiting for a lock, plus the indexed read itself.
class SqliteReader final : public RecordReader {
 public:
  // Errors: kUnavailable if `path` cannot be opened.
  static Result<std::unique_ptr<SqliteReader>> Open(const std::string& path,
                                                    int64_t busy_timeout_ms);
  ~SqliteReader() override;
  std::optional<RequestRecord> Find(const std::string& id) override;

 private:
  SqliteReader() = default;

  std::mutex mu_;
  sqlite3* db_ = nullptr;           // GUARDED_BY(mu_)
  sqlite3_stmt* select_ = nullptr;  // GUARDED_BY(mu_)
};

}  // namespace sluice::store
