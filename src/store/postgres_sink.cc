#include "store/postgres_sink.h"

#include <libpq-fe.h>

#include <cstdio>
#include <ctime>
#include <pqxx/pqxx>
#include <tuple>
#include <variant>
#include <vector>

#include "common/utf8.h"
#include "store/record_codec.h"

namespace sluice::store {

struct PostgresConnection {
  explicit PostgresConnection(const std::string& conninfo) : c(conninfo) {}
  pqxx::connection c;
};

namespace {

struct Migration {
  int version;
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE IF NOT EXISTS requests (
  id text PRIMARY KEY,
  key_id text NOT NULL,
  tier text NOT NULL,
  model text NOT NULL,
  status text NOT NULL,
  http_status integer,
  error text,
  created_at timestamptz NOT NULL,
  completed_at timestamptz,
  latency_ms double precision,
  batch_id bigint,
  worker_id text,
  tokens_used bigint
);
CREATE INDEX IF NOT EXISTS requests_created_at ON requests (created_at);
CREATE TABLE IF NOT EXISTS batches (
  batch_id bigint NOT NULL,
  worker_id text NOT NULL,
  model text NOT NULL,
  size integer NOT NULL,
  started_at timestamptz NOT NULL,
  completed_at timestamptz NOT NULL,
  duration_ms double precision NOT NULL,
  ok boolean NOT NULL,
  error text,
  PRIMARY KEY (worker_id, batch_id, started_at)
);
CREATE INDEX IF NOT EXISTS batches_started_at ON batches (started_at);
CREATE INDEX IF NOT EXISTS batches_batch_id ON batches (batch_id);
)sql"},
};
constexpr int kLatestVersion = 1;
// pg_advisory_xact_lock key shared by every Sluice process migrating.
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(7315529001)";

constexpr const char* kCreateStaging = R"sql(
CREATE TEMP TABLE IF NOT EXISTS sluice_request_staging (LIKE requests) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS sluice_batch_staging (LIKE batches) ON COMMIT DELETE ROWS;
)sql";

const std::vector<std::string> kRequestColumns = {
    "id",         "key_id",       "tier",       "model",    "status",    "http_status", "error",
    "created_at", "completed_at", "latency_ms", "batch_id", "worker_id", "tokens_used"};
const std::vector<std::string> kBatchColumns = {"batch_id",    "worker_id",  "model",
                                                "size",        "started_at", "completed_at",
                                                "duration_ms", "ok",         "error"};

// One row per id: a final state wins over an admission, and keeps the
// earliest created_at of the two. An existing final row is never replaced.
constexpr const char* kMoveRequests = R"sql(
INSERT INTO requests (id, key_id, tier, model, status, http_status, error, created_at,
                      completed_at, latency_ms, batch_id, worker_id, tokens_used)
SELECT DISTINCT ON (id) id, key_id, tier, model, status, http_status, error,
       min(created_at) OVER (PARTITION BY id), completed_at, latency_ms, batch_id, worker_id,
       tokens_used
FROM sluice_request_staging ORDER BY id, completed_at IS NULL
ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, http_status = EXCLUDED.http_status,
  error = EXCLUDED.error, completed_at = EXCLUDED.completed_at,
  latency_ms = EXCLUDED.latency_ms, batch_id = EXCLUDED.batch_id,
  worker_id = EXCLUDED.worker_id, tokens_used = EXCLUDED.tokens_used
WHERE requests.completed_at IS NULL
)sql";
constexpr const char* kMoveBatches = R"sql(
INSERT INTO batches SELECT * FROM sluice_batch_staging ON CONFLICT DO NOTHING
)sql";
constexpr const char* kSelectRequest = R"sql(
SELECT id, key_id, tier, model, status, http_status, error,
       (extract(epoch FROM created_at) * 1000000)::bigint,
       (extract(epoch FROM completed_at) * 1000000)::bigint,
       latency_ms, batch_id, worker_id, tokens_used
FROM requests WHERE id = $1
)sql";

std::string WithConnectTimeout(const std::string& url, int64_t seconds) {
  const std::string param = "connect_timeout=" + std::to_string(seconds);
  if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    return url + (url.find('?') == std::string::npos ? "?" : "&") + param;
  }
  return url + " " + param;
}

std::unique_ptr<PostgresConnection> Connect(const std::string& url, int64_t connect_timeout_s,
                                            int64_t statement_timeout_ms) {
  auto conn = std::make_unique<PostgresConnection>(WithConnectTimeout(url, connect_timeout_s));
  conn->c.set_variable("statement_timeout", std::to_string(statement_timeout_ms));
  return conn;
}

// "2024-05-01 12:00:00.123456+00": ISO input, accepted whatever DateStyle.
std::string PgTimestamp(WallTime t) {
  const int64_t us = ToUnixMicros(t);
  int64_t secs = us / 1'000'000;
  int64_t frac = us % 1'000'000;
  if (frac < 0) {
    frac += 1'000'000;
    secs -= 1;
  }
  const std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%06lld+00", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(frac));
  return buf;
}

template <typename T>
std::optional<T> If(bool present, T value) {
  return present ? std::optional<T>(std::move(value)) : std::nullopt;
}

// PostgreSQL refuses text that is not valid UTF-8 or holds a NUL byte, and
// one such value would fail its whole COPY: text goes in repaired
// (SanitizeText; a row's labels are repaired already, see RowLabels), so the
// normal path never needs the writer's set-aside.
auto RequestColumns(const RequestRow& r) {
  const bool done = r.finished();
  const RowLabels& l = *r.labels;
  return std::make_tuple(
      SanitizeText(r.id.view()), l.key_id, l.tier, l.model, std::string(RequestStageName(r.stage)),
      If(done, r.http_status), If(!r.error.empty(), SanitizeText(r.error)),
      PgTimestamp(r.created_at), If(done, PgTimestamp(r.completed_at)), If(done, r.latency_ms),
      If(r.batch_id != 0, static_cast<int64_t>(r.batch_id)), If(!l.worker_id.empty(), l.worker_id),
      If(done, static_cast<int64_t>(r.tokens_used)));
}

auto BatchColumns(const BatchRecord& b) {
  return std::make_tuple(static_cast<int64_t>(b.batch_id), SanitizeText(b.worker_id),
                         SanitizeText(b.model), static_cast<int64_t>(b.size),
                         PgTimestamp(b.started_at), PgTimestamp(b.completed_at), b.duration_ms,
                         b.ok, If(!b.error.empty(), SanitizeText(b.error)));
}

// libpq messages end in newlines; log lines should not.
std::string Trimmed(const char* text) {
  std::string s = text;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Connection trouble, timeouts, shutdowns and rollbacks are retried on a
// fresh connection; anything else is a statement error. REQUIRES: called
// inside a catch block.
Status StatusForException(const std::string& what) {
  try {
    throw;
  } catch (const pqxx::broken_connection& e) {
    return Unavailable(what + ": connection lost: " + Trimmed(e.what()));
  } catch (const pqxx::in_doubt_error& e) {
    return Unavailable(what + ": commit outcome unknown: " + Trimmed(e.what()));
  } catch (const pqxx::transaction_rollback& e) {
    return Unavailable(what + ": rolled back: " + Trimmed(e.what()));
  } catch (const pqxx::sql_error& e) {
    const std::string cls = e.sqlstate().substr(0, 2);
    std::string msg = what + ": " + Trimmed(e.what());
    if (cls == "08" || cls == "53" || cls == "57" || cls == "40") return Unavailable(msg);
    return Internal(msg);
  } catch (const std::exception& e) {
    return Internal(what + ": " + Trimmed(e.what()));
  } catch (...) {
    return Internal(what + ": unknown error");
  }
}

// Brings the schema to kLatestVersion in one transaction.
Status Migrate(pqxx::connection& c) {
  pqxx::work tx(c);
  tx.exec(kMigrationLock);
  tx.exec(
      "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, "
      "applied_at timestamptz NOT NULL DEFAULT now())");
  const int current = tx.exec1("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0].as<int>();
  if (current > kLatestVersion) {
    return InvalidArgument("postgres request log: schema version " + std::to_string(current) +
                           " is newer than this build supports (" + std::to_string(kLatestVersion) +
                           ")");
  }
  for (const Migration& m : kMigrations) {
    if (m.version <= current) continue;
    tx.exec(m.sql);
    tx.exec("INSERT INTO schema_version (version) VALUES (" + std::to_string(m.version) + ")");
  }
  tx.commit();
  return Status::Ok();
}

}  // namespace

Status CheckPostgresUrl(const std::string& url) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
  if (options == nullptr) {
    std::string msg = error != nullptr ? error : "out of memory";
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    PQfreemem(error);
    return InvalidArgument("request log url does not parse: " + msg);
  }
  PQconninfoFree(options);
  return Status::Ok();
}

PostgresSink::PostgresSink(std::string url, int64_t connect_timeout_s, int64_t write_timeout_ms)
    : url_(std::move(url)),
      connect_timeout_s_(connect_timeout_s),
      write_timeout_ms_(write_timeout_ms) {}

PostgresSink::~PostgresSink() = default;

void PostgresSink::Close() { conn_.reset(); }

Status PostgresSink::Open() {
  if (conn_ != nullptr) return Status::Ok();
  Status s = Status::Ok();
  try {
    conn_ = Connect(url_, connect_timeout_s_, write_timeout_ms_);
    s = Migrate(conn_->c);
    if (s.ok()) {
      pqxx::nontransaction staging(conn_->c);
      staging.exec(kCreateStaging);
    }
  } catch (...) {
    s = StatusForException("postgres request log: open");
  }
  if (!s.ok()) conn_.reset();
  return s;
}

Status PostgresSink::Write(std::span<const LogEntry> entries) {
  if (conn_ == nullptr) return Unavailable("postgres request log: not connected");
  size_t requests = 0;
  for (const LogEntry& e : entries) requests += std::holds_alternative<RequestRow>(e);
  const size_t batches = entries.size() - requests;
  try {
    pqxx::work tx(conn_->c);
    if (requests > 0) {
      pqxx::stream_to copy(tx, "sluice_request_staging", kRequestColumns);
      for (const LogEntry& e : entries) {
        if (const auto* r = std::get_if<RequestRow>(&e)) copy << RequestColumns(*r);
      }
      copy.complete();
      tx.exec(kMoveRequests);
    }
    if (batches > 0) {
      pqxx::stream_to copy(tx, "sluice_batch_staging", kBatchColumns);
      for (const LogEntry& e : entries) {
        if (const auto* b = std::get_if<BatchRecord>(&e)) copy << BatchColumns(*b);
      }
      copy.complete();
      tx.exec(kMoveBatches);
    }
    tx.commit();
    return Status::Ok();
  } catch (...) {
    return StatusForException("postgres request log: write");
  }
}

namespace {
// Retention (LogSink::Prune()): a bounded chunk per statement, found by the
// time indexes and deleted by ctid.
constexpr const char* kPruneRequests = R"sql(
DELETE FROM requests WHERE ctid = ANY(ARRAY(
  SELECT ctid FROM requests
  WHERE created_at < $1::timestamptz AND COALESCE(completed_at, created_at) < $1::timestamptz
  LIMIT $2))
)sql";
constexpr const char* kPruneBatches = R"sql(
DELETE FROM batches WHERE ctid = ANY(ARRAY(
  SELECT ctid FROM batches
  WHERE started_at < $1::timestamptz AND completed_at < $1::timestamptz
  LIMIT $2))
)sql";
}  // namespace

Result<uint64_t> PostgresSink::Prune(WallTime cutoff, uint64_t max_rows) {
  if (conn_ == nullptr) return Unavailable("postgres request log: not connected");
  try {
    const std::string at = PgTimestamp(cutoff);
    uint64_t deleted = 0;
    for (const char* sql : {kPruneRequests, kPruneBatches}) {
      if (deleted >= max_rows) break;
      pqxx::work tx(conn_->c);
      const pqxx::result r = tx.exec_params(sql, at, static_cast<int64_t>(max_rows - deleted));
      tx.commit();
      deleted += static_cast<uint64_t>(r.affected_rows());
    }
    return deleted;
  } catch (...) {
    return StatusForException("postgres request log: prune");
  }
}

PostgresReader::PostgresReader(std::string url, int64_t connect_timeout_s,
                               int64_t lookup_timeout_ms, int64_t reconnect_interval_ms)
    : url_(std::move(url)),
      connect_timeout_s_(connect_timeout_s),
      lookup_timeout_ms_(lookup_timeout_ms),
      reconnect_interval_(reconnect_interval_ms) {}

PostgresReader::~PostgresReader() = default;

bool PostgresReader::ConnectLocked() {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_connect_) return false;
  try {
    conn_ = Connect(url_, connect_timeout_s_, lookup_timeout_ms_);
    conn_->c.prepare("sluice_lookup", kSelectRequest);
    return true;
  } catch (...) {
    conn_.reset();
    next_connect_ = now + reconnect_interval_;
    return false;
  }
}

std::optional<RequestRecord> PostgresReader::Find(const std::string& id) {
  std::lock_guard lock(mu_);
  if (conn_ == nullptr && !ConnectLocked()) return std::nullopt;
  try {
    pqxx::nontransaction tx(conn_->c);
    pqxx::result res = tx.exec_prepared("sluice_lookup", id);
    if (res.empty()) return std::nullopt;
    const pqxx::row row = res[0];
    RequestRecord r;
    r.id = row[0].as<std::string>();
    r.key_id = row[1].as<std::string>();
    r.tier = row[2].as<std::string>();
    r.model = row[3].as<std::string>();
    r.stage = ParseStage(row[4].as<std::string>());
    r.http_status = row[5].as<int>(0);
    r.error = row[6].as<std::string>(std::string());
    r.created_at = FromUnixMicros(row[7].as<int64_t>(0));
    r.completed_at = FromUnixMicros(row[8].as<int64_t>(0));
    r.latency_ms = row[9].as<double>(0);
    r.batch_id = static_cast<uint64_t>(row[10].as<int64_t>(0));
    r.worker_id = row[11].as<std::string>(std::string());
    r.tokens_used = static_cast<uint32_t>(row[12].as<int64_t>(0));
    return r;
  } catch (const pqxx::broken_connection&) {
    conn_.reset();  // the next Find() connects again
  } catch (...) {
    // A timeout or a bad row: the connection stays, this lookup misses.
    if (!conn_->c.is_open()) conn_.reset();
  }
  return std::nullopt;
}

}  // namespace sluice::store
