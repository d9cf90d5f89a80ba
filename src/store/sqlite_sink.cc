#include "store/sqlite_sink.h"

#include <sqlite3.h>

#include <array>
#include <chrono>
#include <variant>

#include "common/utf8.h"
#include "store/record_codec.h"

namespace sluice::store {
namespace {

struct Migration {
  int version;
  const char* sql;
};

// Each migration is applied once, in one transaction with its
// schema_version row; IF NOT EXISTS keeps a half-known state harmless.
constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE IF NOT EXISTS requests (
  id TEXT PRIMARY KEY,
  key_id TEXT NOT NULL,
  tier TEXT NOT NULL,
  model TEXT NOT NULL,
  status TEXT NOT NULL,
  http_status INTEGER,
  error TEXT,
  created_at_us INTEGER NOT NULL,
  completed_at_us INTEGER,
  latency_ms REAL,
  batch_id INTEGER,
  worker_id TEXT,
  tokens_used INTEGER
);
CREATE INDEX IF NOT EXISTS requests_created_at ON requests (created_at_us);
CREATE TABLE IF NOT EXISTS batches (
  batch_id INTEGER NOT NULL,
  worker_id TEXT NOT NULL,
  model TEXT NOT NULL,
  size INTEGER NOT NULL,
  started_at_us INTEGER NOT NULL,
  completed_at_us INTEGER NOT NULL,
  duration_ms REAL NOT NULL,
  ok INTEGER NOT NULL,
  error TEXT,
  PRIMARY KEY (worker_id, batch_id, started_at_us)
);
CREATE INDEX IF NOT EXISTS batches_started_at ON batches (started_at_us);
CREATE INDEX IF NOT EXISTS batches_batch_id ON batches (batch_id);
)sql"},
};
constexpr int kLatestVersion = 1;

constexpr const char* kInsertRequests =
    "INSERT INTO requests (id, key_id, tier, model, status, http_status, error, created_at_us, "
    "completed_at_us, latency_ms, batch_id, worker_id, tokens_used) VALUES ";
constexpr int kRequestColumns = 13;
// An admission never overwrites anything; a final state replaces the
// admission but not an earlier final state (a retried batch).
constexpr const char* kOnConflictAdmit = " ON CONFLICT (id) DO NOTHING";
constexpr const char* kOnConflictFinish =
    " ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
    "http_status = excluded.http_status, error = excluded.error, "
    "completed_at_us = excluded.completed_at_us, latency_ms = excluded.latency_ms, "
    "batch_id = excluded.batch_id, worker_id = excluded.worker_id, "
    "tokens_used = excluded.tokens_used WHERE requests.completed_at_us IS NULL";

// The insert of `rows` request rows in one statement; row r's column c
// (1-based, in kInsertRequests' order) is parameter r * kRequestColumns + c.
std::string InsertRequestsSql(size_t rows, bool finished) {
  std::string sql = kInsertRequests;
  for (size_t r = 0; r < rows; ++r) {
    sql += r == 0 ? "(?" : ", (?";
    for (int c = 1; c < kRequestColumns; ++c) sql += ", ?";
    sql += ")";
  }
  return sql + (finished ? kOnConflictFinish : kOnConflictAdmit);
}

constexpr const char* kInsertBatch =
    "INSERT INTO batches (batch_id, worker_id, model, size, started_at_us, completed_at_us, "
    "duration_ms, ok, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
    "ON CONFLICT DO NOTHING";
constexpr const char* kSelectRequest =
    "SELECT id, key_id, tier, model, status, http_status, error, created_at_us, "
    "completed_at_us, latency_ms, batch_id, worker_id, tokens_used FROM requests WHERE id = ?1";

// Lock and I/O trouble is worth retrying on a fresh connection; anything
// else is a statement error.
Status StatusFor(int rc, const std::string& message) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_NOMEM:
    case SQLITE_PROTOCOL:
      return Unavailable(message);
    default:
      return Internal(message);
  }
}

// Text is stored as valid UTF-8 without NUL bytes, as in PostgreSQL (SQLite
// would keep anything, but readers and JSON encoders would not); repaired
// text is copied (SQLITE_TRANSIENT), valid text bound in place.
void BindText(sqlite3_stmt* st, int i, std::string_view s, bool null_if_empty) {
  if (null_if_empty && s.empty()) {
    sqlite3_bind_null(st, i);
  } else if (IsValidUtf8(s) && s.find('\0') == std::string::npos) {
    sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
  } else {
    const std::string clean = SanitizeText(s);
    sqlite3_bind_text(st, i, clean.data(), static_cast<int>(clean.size()), SQLITE_TRANSIENT);
  }
}

// Text already repaired (RowLabels), bound in place.
void BindClean(sqlite3_stmt* st, int i, std::string_view s, bool null_if_empty) {
  if (null_if_empty && s.empty()) {
    sqlite3_bind_null(st, i);
  } else {
    sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
  }
}

std::string ColumnText(sqlite3_stmt* st, int i) {
  const unsigned char* t = sqlite3_column_text(st, i);
  return t == nullptr ? std::string()
                      : std::string(reinterpret_cast<const char*>(t),
                                    static_cast<size_t>(sqlite3_column_bytes(st, i)));
}

int64_t NowMicros() { return ToUnixMicros(std::chrono::system_clock::now()); }

}  // namespace

SqliteSink::SqliteSink(std::string path, int64_t busy_timeout_ms)
    : path_(std::move(path)), busy_timeout_ms_(busy_timeout_ms) {}

SqliteSink::~SqliteSink() { Close(); }

void SqliteSink::Close() {
  for (RequestStatements* kind : {&admit_, &finish_}) {
    for (sqlite3_stmt*& st : kind->by_rows) {
      sqlite3_finalize(st);
      st = nullptr;
    }
  }
  sqlite3_finalize(batch_);
  batch_ = nullptr;
  if (db_ != nullptr) sqlite3_close_v2(db_);
  db_ = nullptr;
}

Status SqliteSink::Fail(const std::string& what) {
  int rc = db_ != nullptr ? sqlite3_extended_errcode(db_) : SQLITE_CANTOPEN;
  std::string msg = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  return StatusFor(rc, "sqlite " + path_ + ": " + what + ": " + msg);
}

Status SqliteSink::Exec(const char* sql) {
  if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Fail(std::string(sql).substr(0, 48));
  }
  return Status::Ok();
}

Status SqliteSink::Open() {
  if (db_ != nullptr) return Status::Ok();
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path_.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    Status s = Unavailable("sqlite: cannot open " + path_ + ": " +
                           (db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory"));
    Close();
    return s;
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, static_cast<int>(busy_timeout_ms_));
  Status s = Exec("PRAGMA journal_mode = WAL");
  if (s.ok()) s = Exec("PRAGMA synchronous = NORMAL");
  if (s.ok()) s = Migrate();
  for (bool finished : {false, true}) {
    RequestStatements& kind = finished ? finish_ : admit_;
    for (size_t k = 0; k < kStatementRows.size(); ++k) {
      const std::string sql = InsertRequestsSql(kStatementRows[k], finished);
      sqlite3_stmt** out = &kind.by_rows[k];
      if (s.ok() && sqlite3_prepare_v2(db_, sql.c_str(), -1, out, nullptr) != SQLITE_OK) {
        s = Fail(finished ? "prepare final-state upsert" : "prepare admission insert");
      }
    }
  }
  if (s.ok() && sqlite3_prepare_v2(db_, kInsertBatch, -1, &batch_, nullptr) != SQLITE_OK) {
    s = Fail("prepare batch insert");
  }
  if (!s.ok()) Close();
  return s;
}

Status SqliteSink::Migrate() {
  // IMMEDIATE: two processes starting at once migrate one after the other.
  if (Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  Status s = Exec(
      "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
      "applied_at_us INTEGER NOT NULL)");
  int current = 0;
  if (s.ok()) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_version", -1, &st,
                           nullptr) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
      s = Fail("read schema_version");
    } else {
      current = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
  }
  if (s.ok() && current > kLatestVersion) {
    s = InvalidArgument("sqlite " + path_ + ": schema version " + std::to_string(current) +
                        " is newer than this build supports (" + std::to_string(kLatestVersion) +
                        ")");
  }
  for (const Migration& m : kMigrations) {
    if (!s.ok() || m.version <= current) continue;
    s = Exec(m.sql);
    if (!s.ok()) break;
    const std::string mark = "INSERT INTO schema_version (version, applied_at_us) VALUES (" +
                             std::to_string(m.version) + ", " + std::to_string(NowMicros()) + ")";
    s = Exec(mark.c_str());
  }
  if (s.ok()) return Exec("COMMIT");
  sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  return s;
}

void SqliteSink::Bind(sqlite3_stmt* st, int row, const RequestRow& r) {
  const int at = row * kRequestColumns;  // parameter `at + c` is column c
  BindText(st, at + 1, r.id.view(), false);
  BindClean(st, at + 2, r.labels->key_id, false);
  BindClean(st, at + 3, r.labels->tier, false);
  BindClean(st, at + 4, r.labels->model, false);
  sqlite3_bind_text(st, at + 5, RequestStageName(r.stage), -1, SQLITE_STATIC);
  if (r.finished()) {
    sqlite3_bind_int(st, at + 6, r.http_status);
    sqlite3_bind_int64(st, at + 9, ToUnixMicros(r.completed_at));
    sqlite3_bind_double(st, at + 10, r.latency_ms);
    sqlite3_bind_int64(st, at + 13, r.tokens_used);
  } else {
    for (int c : {6, 9, 10, 13}) sqlite3_bind_null(st, at + c);
  }
  BindText(st, at + 7, r.error, true);
  sqlite3_bind_int64(st, at + 8, ToUnixMicros(r.created_at));
  if (r.batch_id != 0) {
    sqlite3_bind_int64(st, at + 11, static_cast<int64_t>(r.batch_id));
  } else {
    sqlite3_bind_null(st, at + 11);
  }
  BindClean(st, at + 12, r.labels->worker_id, true);
}

Status SqliteSink::Step(sqlite3_stmt* st, const RequestRow& first, size_t rows) {
  const int rc = sqlite3_step(st);
  Status s = Status::Ok();
  if (rc != SQLITE_DONE) {
    const std::string id(first.id.view());
    s = Fail(rows == 1 ? "write request " + id
                       : "write " + std::to_string(rows) + " requests from " + id);
  }
  sqlite3_reset(st);
  return s;
}

Status SqliteSink::InsertRequests(std::span<const RequestRow* const> rows, bool finished) {
  const RequestStatements& kind = finished ? finish_ : admit_;
  size_t i = 0;
  for (size_t k = 0; k < kStatementRows.size(); ++k) {
    const size_t n = kStatementRows[k];
    for (; rows.size() - i >= n; i += n) {
      sqlite3_stmt* st = kind.by_rows[k];
      for (size_t j = 0; j < n; ++j) Bind(st, static_cast<int>(j), *rows[i + j]);
      if (Status s = Step(st, *rows[i], n); !s.ok()) return s;
    }
  }
  return Status::Ok();
}

Status SqliteSink::Insert(const BatchRecord& b) {
  sqlite3_stmt* st = batch_;
  sqlite3_bind_int64(st, 1, static_cast<int64_t>(b.batch_id));
  BindText(st, 2, b.worker_id, false);
  BindText(st, 3, b.model, false);
  sqlite3_bind_int64(st, 4, b.size);
  sqlite3_bind_int64(st, 5, ToUnixMicros(b.started_at));
  sqlite3_bind_int64(st, 6, ToUnixMicros(b.completed_at));
  sqlite3_bind_double(st, 7, b.duration_ms);
  sqlite3_bind_int(st, 8, b.ok ? 1 : 0);
  BindText(st, 9, b.error, true);
  int rc = sqlite3_step(st);
  Status s = rc == SQLITE_DONE ? Status::Ok() : Fail("write batch " + std::to_string(b.batch_id));
  sqlite3_reset(st);
  return s;
}

Status SqliteSink::Write(std::span<const LogEntry> entries) {
  if (db_ == nullptr) return Unavailable("sqlite " + path_ + ": not open");
  if (Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  // Admissions, then final states, then batch rows (see the class comment).
  std::vector<const RequestRow*> admissions;
  std::vector<const RequestRow*> finals;
  admissions.reserve(entries.size());
  finals.reserve(entries.size());
  for (const LogEntry& e : entries) {
    if (const auto* r = std::get_if<RequestRow>(&e))
      (r->finished() ? finals : admissions).push_back(r);
  }
  Status s = InsertRequests(admissions, /*finished=*/false);
  if (s.ok()) s = InsertRequests(finals, /*finished=*/true);
  for (const LogEntry& e : entries) {
    if (!s.ok()) break;
    if (const auto* b = std::get_if<BatchRecord>(&e)) s = Insert(*b);
  }
  if (s.ok()) s = Exec("COMMIT");
  if (!s.ok()) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  return s;
}

namespace {
// Retention (LogSink::Prune()). DELETE ... LIMIT needs a compile-time
// option, hence the rowid subqueries; both use the time indexes.
constexpr const char* kPruneRequests =
    "DELETE FROM requests WHERE rowid IN (SELECT rowid FROM requests WHERE created_at_us < ?1 "
    "AND COALESCE(completed_at_us, created_at_us) < ?1 LIMIT ?2)";
constexpr const char* kPruneBatches =
    "DELETE FROM batches WHERE rowid IN (SELECT rowid FROM batches WHERE started_at_us < ?1 "
    "AND completed_at_us < ?1 LIMIT ?2)";
}  // namespace

Result<uint64_t> SqliteSink::Prune(WallTime cutoff, uint64_t max_rows) {
  if (db_ == nullptr) return Unavailable("sqlite " + path_ + ": not open");
  uint64_t deleted = 0;
  for (const char* sql : {kPruneRequests, kPruneBatches}) {
    if (deleted >= max_rows) break;
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK) {
      sqlite3_finalize(st);
      return Fail("prepare prune");
    }
    sqlite3_bind_int64(st, 1, ToUnixMicros(cutoff));
    sqlite3_bind_int64(st, 2, static_cast<int64_t>(max_rows - deleted));
    // Outside a transaction: the statement commits on its own.
    const bool done = sqlite3_step(st) == SQLITE_DONE;
    Status s = done ? Status::Ok() : Fail("delete rows past the retention period");
    sqlite3_finalize(st);
    if (!s.ok()) return s;
    deleted += static_cast<uint64_t>(sqlite3_changes(db_));
  }
  return deleted;
}

Result<std::unique_ptr<SqliteReader>> SqliteReader::Open(const std::string& path,
                                                         int64_t busy_timeout_ms) {
  std::unique_ptr<SqliteReader> r(new SqliteReader());
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.c_str(), &r->db_, flags, nullptr) != SQLITE_OK) {
    return Unavailable("sqlite: cannot open " + path + " for lookups: " +
                       (r->db_ != nullptr ? sqlite3_errmsg(r->db_) : "out of memory"));
  }
  sqlite3_busy_timeout(r->db_, static_cast<int>(busy_timeout_ms));
  if (sqlite3_exec(r->db_, "PRAGMA query_only = 1", nullptr, nullptr, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(r->db_, kSelectRequest, -1, &r->select_, nullptr) != SQLITE_OK) {
    return Internal("sqlite " + path + ": prepare lookup: " + sqlite3_errmsg(r->db_));
  }
  return r;
}

SqliteReader::~SqliteReader() {
  sqlite3_finalize(select_);
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

std::optional<RequestRecord> SqliteReader::Find(const std::string& id) {
  std::lock_guard lock(mu_);
  sqlite3_bind_text(select_, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
  std::optional<RequestRecord> out;
  if (sqlite3_step(select_) == SQLITE_ROW) {
    RequestRecord& r = out.emplace();
    r.id = ColumnText(select_, 0);
    r.key_id = ColumnText(select_, 1);
    r.tier = ColumnText(select_, 2);
    r.model = ColumnText(select_, 3);
    r.stage = ParseStage(ColumnText(select_, 4));
    r.http_status = sqlite3_column_int(select_, 5);
    r.error = ColumnText(select_, 6);
    r.created_at = FromUnixMicros(sqlite3_column_int64(select_, 7));
    r.completed_at = FromUnixMicros(sqlite3_column_int64(select_, 8));
    r.latency_ms = sqlite3_column_double(select_, 9);
    r.batch_id = static_cast<uint64_t>(sqlite3_column_int64(select_, 10));
    r.worker_id = ColumnText(select_, 11);
    r.tokens_used = static_cast<uint32_t>(sqlite3_column_int64(select_, 12));
  }
  sqlite3_reset(select_);
  sqlite3_clear_bindings(select_);
  return out;
}

}  // namespace sluice::store
