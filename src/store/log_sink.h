// LogSink and RecordReader: the two seams between the durable request logs
// and a database.
//
// A LogSink is where the LogWriter (log_writer.h) puts buffered records: it
// connects, creates or migrates the schema, writes a batch of entries in one
// transaction, and deletes rows past the retention period. A RecordReader
// answers Lookup() for records that have left memory. SQLite and PostgreSQL
// each provide one of both (sqlite_sink.h, postgres_sink.h); tests may
// provide their own.
//
// Exceptions from the database libraries never leave these calls: failures
// come back as a Status or as nullopt.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <variant>

#include "common/status.h"
#include "core/request_log.h"
#include "store/request_row.h"

namespace sluice::store {

// One buffered write. A RequestRow whose completed_at is zero is the
// admission of a request (stage queued); one with completed_at set is its
// final state, which replaces the admission row. Rows are keyed by request
// id, so ids must be unique across every process writing to one database
// (common/ids.h makes them so): a final state never replaces an earlier
// final state with the same id.
using LogEntry = std::variant<RequestRow, BatchRecord>;

// Thread-compatible: the LogWriter calls it from its one background thread
// (and Create() calls Open() once before that thread starts).
class LogSink {
 public:
  virtual ~LogSink() = default;

  // Connects if not connected and brings the schema to the current version
  // (idempotent). Errors: kUnavailable when the database cannot be reached
  // (retried with backoff), kInvalidArgument for a schema newer than this
  // build, kInternal for anything else.
  virtual Status Open() = 0;

  // Writes `entries` in one transaction; on error nothing of them is kept.
  // Writing the same entries twice leaves the same rows (a retry after an
  // unknown commit outcome is harmless). Errors: kUnavailable when the
  // connection is lost (the writer then calls Close() and Open() again),
  // kInternal for a statement that failed. REQUIRES: Open() returned OK.
  virtual Status Write(std::span<const LogEntry> entries) = 0;

  // Deletes at most `max_rows` rows in all that are older than `cutoff`:
  // request rows whose completed_at (or, while unfinished, created_at) is
  // before it, then batch rows whose completed_at is before it. Returns how
  // many were deleted; fewer than `max_rows` means none older is left. Each
  // statement commits on its own. Errors as for Write(). REQUIRES: Open()
  // returned OK; max_rows >= 1.
  virtual Result<uint64_t> Prune(WallTime cutoff, uint64_t max_rows) = 0;

  // Drops the connection; Open() may be called again. Never fails.
  virtual void Close() = 0;
};

// Looks up one request record in the database. Thread-safe; may block for a
// bounded time (each implementation documents its bound).
class RecordReader {
 public:
  virtual ~RecordReader() = default;
  // nullopt when the record is not there or the database could not answer.
  virtual std::optional<RequestRecord> Find(const std::string& id) = 0;
};

}  // namespace sluice::store
