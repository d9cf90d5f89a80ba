#include "store/sqlite_request_log.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/ids.h"
#include "metrics/registry.h"
#include "store/sqlite_sink.h"

namespace sluice::store {
namespace {

using Rows = std::vector<std::vector<std::string>>;

// A fresh directory under /tmp, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/sluice-store-test-XXXXXX";
    path_ = ::mkdtemp(tmpl.data()) != nullptr ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A second, plain connection to the file: what a DBA would see.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    sqlite3_open(path.c_str(), &db_);
    sqlite3_busy_timeout(db_, 5'000);
  }
  ~RawDb() { sqlite3_close(db_); }
  int Exec(const std::string& sql) {
    return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  }
  // Every value as text; NULL as "NULL".
  Rows Query(const std::string& sql) {
    Rows rows;
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
      return rows;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
      auto& row = rows.emplace_back();
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        const unsigned char* t = sqlite3_column_text(st, i);
        row.push_back(t == nullptr ? "NULL" : reinterpret_cast<const char*>(t));
      }
    }
    sqlite3_finalize(st);
    return rows;
  }

 private:
  sqlite3* db_ = nullptr;
};

RequestPtr Req(const std::string& id) {
  auto r = std::make_shared<InferenceRequest>();
  r->id = id;
  r->model = "m";
  r->admitted = true;  // as InferenceService marks what enters the queue
  r->principal = {"key-1", 0, "free", {}};
  return r;
}

// Refused before the queue (rate limit, admission): never logged.
RequestPtr NotAdmitted(const std::string& id) {
  RequestPtr r = Req(id);
  r->admitted = false;
  return r;
}

InferenceOutcome Ok(uint64_t batch_id, uint32_t tokens) {
  InferenceOutcome o;
  o.batch_id = batch_id;
  o.tokens_used = tokens;
  return o;
}

class SqliteRequestLogTest : public ::testing::Test {
 protected:
  SqliteRequestLog::Options Opts() {
    SqliteRequestLog::Options o;
    o.path = dir_.File("requests.db");
    o.worker_id = "gpu-0";
    return o;
  }
  std::unique_ptr<SqliteRequestLog> Make(const SqliteRequestLog::Options& o) {
    auto log = SqliteRequestLog::Create(o);
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    return log.ok() ? std::move(log).value() : nullptr;
  }
  TempDir dir_;
};

TEST_F(SqliteRequestLogTest, CreatesTheSchemaOnAFreshFileAndReopensItUnchanged) {
  auto opts = Opts();
  {
    auto log = Make(opts);
    ASSERT_NE(log, nullptr);
    log->OnAdmitted(Req("req_keep"));
    ASSERT_TRUE(log->Flush(5'000).ok());
  }
  RawDb raw(opts.path);
  EXPECT_EQ(raw.Query("SELECT name FROM sqlite_master WHERE type IN ('table', 'index') AND "
                      "name NOT LIKE 'sqlite_%' ORDER BY name"),
            (Rows{{"batches"},
                  {"batches_batch_id"},
                  {"batches_started_at"},
                  {"requests"},
                  {"requests_created_at"},
                  {"schema_version"}}));
  EXPECT_EQ(raw.Query("PRAGMA journal_mode"), (Rows{{"wal"}}));
  for (int round = 0; round < 2; ++round) {
    auto log = Make(opts);  // migrating again changes nothing
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(log->Lookup("req_keep")->stage, RequestStage::kQueued);
  }
  EXPECT_EQ(raw.Query("SELECT version FROM schema_version"), (Rows{{"1"}}));
  EXPECT_EQ(raw.Query("SELECT count(*) FROM requests"), (Rows{{"1"}}));
}

TEST_F(SqliteRequestLogTest, RefusesBadOptionsWithClearErrors) {
  auto expect_error = [](const SqliteRequestLog::Options& o, ErrorCode code, const char* text) {
    auto log = SqliteRequestLog::Create(o);
    ASSERT_FALSE(log.ok());
    EXPECT_EQ(log.status().code(), code);
    EXPECT_NE(log.status().message().find(text), std::string::npos) << log.status().message();
  };
  auto o = Opts();
  o.memory_capacity = 8;
  expect_error(o, ErrorCode::kInvalidArgument, "memory_capacity");
  o = Opts();
  o.flush_batch = o.buffer_capacity + 1;
  expect_error(o, ErrorCode::kInvalidArgument, "flush_batch");
  o = Opts();
  o.reconnect_backoff_max_ms = 1;
  expect_error(o, ErrorCode::kInvalidArgument, "reconnect_backoff_max_ms");
  o = Opts();
  o.path = ":memory:";
  expect_error(o, ErrorCode::kInvalidArgument, "path");
  o = Opts();
  o.path = dir_.File("no/such/dir/requests.db");
  expect_error(o, ErrorCode::kUnavailable, "no/such/dir/requests.db");
}

TEST_F(SqliteRequestLogTest, RefusesASchemaNewerThanThisBuild) {
  auto opts = Opts();
  ASSERT_NE(Make(opts), nullptr);
  RawDb(opts.path).Exec("INSERT INTO schema_version VALUES (99, 0)");
  auto log = SqliteRequestLog::Create(opts);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(log.status().message().find("newer"), std::string::npos) << log.status().message();
}

TEST_F(SqliteRequestLogTest, WritesAdmissionsAndFinalStates) {
  auto opts = Opts();
  auto log = Make(opts);
  ASSERT_NE(log, nullptr);
  const auto before = std::chrono::system_clock::now();
  auto a = Req("req_a");
  auto b = Req("req_b");
  auto c = Req("req_c");
  log->OnAdmitted(a);
  log->OnFinished(*a, Ok(9, 7), 12.5);
  log->OnAdmitted(b);
  InferenceOutcome late;
  late.status = DeadlineExceeded("too late");
  log->OnFinished(*b, late, 500);
  log->OnAdmitted(c);                                   // still in flight
  log->OnFinished(*NotAdmitted("req_d"), Ok(1, 1), 1);  // never admitted: ignored
  ASSERT_TRUE(log->Flush(5'000).ok());

  RawDb raw(opts.path);
  EXPECT_EQ(raw.Query("SELECT id, key_id, tier, model, status, http_status, error, latency_ms, "
                      "batch_id, worker_id, tokens_used, completed_at_us IS NULL "
                      "FROM requests ORDER BY id"),
            (Rows{{"req_a", "key-1", "free", "m", "completed", "200", "NULL", "12.5", "9", "gpu-0",
                   "7", "0"},
                  {"req_b", "key-1", "free", "m", "failed", "504", "too late", "500.0", "NULL",
                   "NULL", "0", "0"},
                  {"req_c", "key-1", "free", "m", "queued", "NULL", "NULL", "NULL", "NULL", "NULL",
                   "NULL", "1"}}));
  // Times are wall-clock microseconds. The admission row was not written
  // (its final row came in the same batch), so created_at is the final
  // row's: completed_at - latency (12.5 ms here).
  const int64_t lo =
      std::chrono::duration_cast<std::chrono::microseconds>(before.time_since_epoch()).count() -
      12'500;
  auto times = raw.Query("SELECT created_at_us, completed_at_us FROM requests WHERE id='req_a'");
  ASSERT_EQ(times.size(), 1u);
  EXPECT_GE(std::stoll(times[0][0]), lo);
  EXPECT_GE(std::stoll(times[0][1]), std::stoll(times[0][0]));
  auto s = log->stats();
  EXPECT_EQ(s.appended, 5u);
  EXPECT_EQ(s.written, 5u);
  EXPECT_EQ(s.dropped, 0u);
  EXPECT_EQ(s.buffered, 0u);
}

TEST_F(SqliteRequestLogTest, AFinishIsWrittenEvenAfterTheMemoryWindowMovedOn) {
  auto opts = Opts();
  opts.memory_capacity = 16;
  auto log = Make(opts);
  ASSERT_NE(log, nullptr);
  const std::string id = NewRequestId();
  auto a = Req(id);
  log->OnAdmitted(a);
  for (int i = 0; i < 40; ++i) log->OnAdmitted(Req(NewRequestId()));  // more in flight than kept
  log->OnFinished(*a, Ok(6, 5), 30);
  ASSERT_TRUE(log->Flush(5'000).ok());
  auto r = log->Lookup(id);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->stage, RequestStage::kCompleted);
  EXPECT_EQ(r->batch_id, 6u);
}

TEST_F(SqliteRequestLogTest, LooksUpInMemoryThenInTheDatabaseOnceTheWindowRollsOver) {
  auto opts = Opts();
  opts.memory_capacity = 16;
  auto log = Make(opts);
  ASSERT_NE(log, nullptr);
  const std::string id = NewRequestId();
  auto a = Req(id);
  log->OnAdmitted(a);
  a->MarkDispatched();
  EXPECT_EQ(log->Lookup(id)->stage, RequestStage::kProcessing);  // live, from memory
  log->OnFinished(*a, Ok(4, 3), 20);
  auto recent = log->Lookup(id);
  ASSERT_TRUE(recent.has_value());
  EXPECT_EQ(recent->stage, RequestStage::kCompleted);
  EXPECT_EQ(recent->created_at, WallTime{});  // memory keeps no wall-clock times
  ASSERT_TRUE(log->Flush(5'000).ok());

  for (int i = 0; i < 16; ++i) log->OnAdmitted(Req(NewRequestId()));  // a's slot is reused
  auto old = log->Lookup(id);
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->stage, RequestStage::kCompleted);
  EXPECT_EQ(old->http_status, 200);
  EXPECT_DOUBLE_EQ(old->latency_ms, 20);
  EXPECT_EQ(old->batch_id, 4u);
  EXPECT_EQ(old->tokens_used, 3u);
  EXPECT_EQ(old->worker_id, "gpu-0");
  EXPECT_NE(old->created_at, WallTime{});
  EXPECT_GE(old->completed_at, old->created_at);
  EXPECT_FALSE(log->Lookup("req_never_seen").has_value());

  // Another process on the same file finds it too, only in the database.
  auto other = Make(opts);
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(other->Lookup(id)->key_id, "key-1");
}

TEST_F(SqliteRequestLogTest, FindsRecordsStillInTheBufferAndWritesThemOnClose) {
  auto opts = Opts();
  opts.memory_capacity = 16;
  opts.flush_interval_ms = 3'600'000;  // nothing is written until Close()
  auto log = Make(opts);
  ASSERT_NE(log, nullptr);
  const std::string id = NewRequestId();
  log->OnAdmitted(Req(id));
  for (int i = 0; i < 16; ++i) log->OnAdmitted(Req(NewRequestId()));
  auto buffered = log->Lookup(id);
  ASSERT_TRUE(buffered.has_value());
  EXPECT_EQ(buffered->stage, RequestStage::kQueued);
  EXPECT_NE(buffered->created_at, WallTime{});  // so not the memory record
  RawDb raw(opts.path);
  EXPECT_EQ(raw.Query("SELECT count(*) FROM requests"), (Rows{{"0"}}));
  EXPECT_EQ(log->stats().buffered, 17u);

  log->Close();
  EXPECT_EQ(raw.Query("SELECT count(*) FROM requests"), (Rows{{"17"}}));
  EXPECT_EQ(log->stats().written, 17u);
  log->OnAdmitted(Req("req_after_close"));  // counted, not written
  EXPECT_EQ(log->stats().dropped, 1u);
}

TEST_F(SqliteRequestLogTest, WritesBatchRecordsOnceEach) {
  auto opts = Opts();
  auto log = Make(opts);
  ASSERT_NE(log, nullptr);
  const WallTime t0 = std::chrono::system_clock::from_time_t(1'700'000'000);
  BatchRecord ok{7, "m", "gpu-0", 32, t0, t0 + std::chrono::milliseconds(50), 50.25, true, ""};
  BatchRecord bad{8, "m", "gpu-1", 4, t0, t0 + std::chrono::seconds(3), 3000, false, "timeout"};
  log->OnBatchDone(ok);
  log->OnBatchDone(bad);
  log->OnBatchDone(ok);  // a duplicate report keeps one row
  ASSERT_TRUE(log->Flush(5'000).ok());
  RawDb raw(opts.path);
  EXPECT_EQ(
      raw.Query("SELECT batch_id, worker_id, model, size, started_at_us, completed_at_us, "
                "duration_ms, ok, error FROM batches ORDER BY batch_id"),
      (Rows{{"7", "gpu-0", "m", "32", "1700000000000000", "1700000000050000", "50.25", "1", "NULL"},
            {"8", "gpu-1", "m", "4", "1700000000000000", "1700000003000000", "3000.0", "0",
             "timeout"}}));
}

// A batch's rows go many to a statement, admissions before final states:
// every row of a long mixed batch lands exactly once, with its own values,
// whatever statement it fell in (a final state in the same batch as its
// admission replaces it, before or after it; a second final state does not
// replace the first).
TEST_F(SqliteRequestLogTest, WritesLongRunsOfRowsManyToAStatementEachWithItsOwnValues) {
  const std::string path = dir_.File("runs.db");
  SqliteSink sink(path, 5'000);
  ASSERT_TRUE(sink.Open().ok());
  const WallTime t0 = std::chrono::system_clock::from_time_t(1'700'000'000);
  constexpr int kRequests = 3 * static_cast<int>(SqliteSink::kRowsPerStatement) + 5;  // 101
  auto row = [&](int i, bool final_state) {
    RequestRecord r;
    r.id = "req_" + std::to_string(i);
    r.key_id = "key-" + std::to_string(i % 3);
    r.tier = "paid";
    r.model = "m";
    r.created_at = t0 + std::chrono::microseconds(i);
    if (final_state) {
      r.stage = i % 10 == 0 ? RequestStage::kFailed : RequestStage::kCompleted;
      r.http_status = i % 10 == 0 ? 503 : 200;
      // Invalid UTF-8 in some errors: stored repaired, as its own copy.
      if (i % 10 == 0) r.error = "failed #" + std::to_string(i) + (i % 20 == 0 ? "\xff" : "");
      r.completed_at = r.created_at + std::chrono::milliseconds(i);
      r.latency_ms = i;
      r.batch_id = 1 + i / 8;
      r.worker_id = "gpu-0";
      r.tokens_used = i;
    }
    return LogEntry(RequestRow::FromRecord(r));
  };
  std::vector<LogEntry> entries;
  // The last request's final state comes before its admission.
  entries.push_back(row(kRequests - 1, true));
  for (int i = 0; i < kRequests; ++i) entries.push_back(row(i, false));
  BatchRecord batch{7, "m", "gpu-0", 32, t0, t0 + std::chrono::milliseconds(5), 5, true, ""};
  for (int i = 0; i < kRequests - 1; ++i) {
    if (i == 40) entries.push_back(batch);  // between final states
    entries.push_back(row(i, true));
  }
  ASSERT_TRUE(sink.Write(entries).ok());
  // Sent again (a retry after an unknown commit outcome), then a second
  // final state for request 3: nothing changes.
  ASSERT_TRUE(sink.Write(entries).ok());
  std::vector<LogEntry> again{row(3, true)};
  std::get<RequestRow>(again[0]).http_status = 500;
  ASSERT_TRUE(sink.Write(again).ok());
  sink.Close();

  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT COUNT(*), COUNT(DISTINCT id) FROM requests"),
            (Rows{{std::to_string(kRequests), std::to_string(kRequests)}}));
  EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM batches"), (Rows{{"1"}}));
  const Rows rows = raw.Query(
      "SELECT id, key_id, status, http_status, error, created_at_us, completed_at_us, batch_id, "
      "worker_id, tokens_used FROM requests ORDER BY created_at_us");
  ASSERT_EQ(rows.size(), static_cast<size_t>(kRequests));
  for (int i = 0; i < kRequests; ++i) {
    const bool failed = i % 10 == 0;
    const std::string error =
        failed ? "failed #" + std::to_string(i) + (i % 20 == 0 ? "\uFFFD" : "") : "NULL";
    EXPECT_EQ(rows[i],
              (std::vector<std::string>{"req_" + std::to_string(i), "key-" + std::to_string(i % 3),
                                        failed ? "failed" : "completed", failed ? "503" : "200",
                                        error, std::to_string(1'700'000'000'000'000LL + i),
                                        std::to_string(1'700'000'000'000'000LL + i + 1'000LL * i),
                                        std::to_string(1 + i / 8), "gpu-0", std::to_string(i)}))
        << "row " << i;
  }
}

TEST_F(SqliteRequestLogTest, DropsTheOldestWhenTheDatabaseIsLockedAndCatchesUpAfter) {
  metrics::Registry registry;
  auto opts = Opts();
  opts.buffer_capacity = 10;
  opts.flush_batch = 10;
  opts.busy_timeout_ms = 10;
  opts.reconnect_backoff_initial_ms = 5;
  opts.reconnect_backoff_max_ms = 20;
  opts.metrics = &registry;
  auto log = Make(opts);
  ASSERT_NE(log, nullptr);
  RawDb raw(opts.path);
  ASSERT_EQ(raw.Exec("BEGIN EXCLUSIVE"), SQLITE_OK);  // another writer holds the lock

  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) log->OnAdmitted(Req("req_" + std::to_string(100 + i)));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));  // no waiting

  // Wait (bounded) for the writer to have failed at least once and settled.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto s = log->stats();
  while ((s.flush_errors == 0 || s.buffered != 10) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    s = log->stats();
  }
  EXPECT_GE(s.flush_errors, 1u);
  EXPECT_EQ(s.appended, 100u);
  EXPECT_EQ(s.written, 0u);
  EXPECT_EQ(s.dropped, 90u);
  EXPECT_EQ(s.buffered, 10u);
  const std::string text = registry.RenderPrometheus();
  EXPECT_NE(text.find("sluice_request_log_dropped_total{backend=\"sqlite\"} 90"), std::string::npos)
      << text;
  EXPECT_NE(text.find("sluice_request_log_flush_errors_total{backend=\"sqlite\"}"),
            std::string::npos);

  ASSERT_EQ(raw.Exec("COMMIT"), SQLITE_OK);
  ASSERT_TRUE(log->Flush(10'000).ok());
  s = log->stats();
  EXPECT_EQ(s.written, 10u);
  EXPECT_EQ(s.dropped, 90u);
  EXPECT_EQ(s.buffered, 0u);
  // The newest ten survived.
  EXPECT_EQ(raw.Query("SELECT min(id), max(id), count(*) FROM requests"),
            (Rows{{"req_190", "req_199", "10"}}));
  const std::string after = registry.RenderPrometheus();
  EXPECT_NE(after.find("sluice_request_log_written_total{backend=\"sqlite\"} 10"),
            std::string::npos)
      << after;
  EXPECT_NE(after.find("sluice_request_log_buffered{backend=\"sqlite\"} 0"), std::string::npos);
}

// Retention: rows at fixed times around kNow, which the log takes as the
// wall clock, so nothing depends on when the test runs.
constexpr int64_t kNowUs = 1'700'000'000'000'000;
constexpr int64_t kHourUs = 3'600'000'000;
const WallTime kNow = std::chrono::system_clock::from_time_t(1'700'000'000);

void InsertAgedRows(RawDb& raw) {
  auto request = [&](const std::string& id, int64_t created_us, const std::string& completed) {
    ASSERT_EQ(raw.Exec("INSERT INTO requests (id, key_id, tier, model, status, created_at_us, "
                       "completed_at_us) VALUES ('" +
                       id + "', 'k', 'free', 'm', 'completed', " + std::to_string(created_us) +
                       ", " + completed + ")"),
              SQLITE_OK);
  };
  request("old_done", kNowUs - 30 * kHourUs, std::to_string(kNowUs - 29 * kHourUs));
  request("old_unfinished", kNowUs - 30 * kHourUs, "NULL");
  request("long_running", kNowUs - 25 * kHourUs, std::to_string(kNowUs - kHourUs));
  request("recent", kNowUs - kHourUs, std::to_string(kNowUs - kHourUs + 1'000'000));
  request("recent_queued", kNowUs - 2 * kHourUs, "NULL");
  auto batch = [&](int id, int64_t started_us) {
    ASSERT_EQ(raw.Exec("INSERT INTO batches VALUES (" + std::to_string(id) + ", 'gpu-0', 'm', 4, " +
                       std::to_string(started_us) + ", " + std::to_string(started_us + 50'000) +
                       ", 50, 1, NULL)"),
              SQLITE_OK);
  };
  batch(1, kNowUs - 26 * kHourUs);
  batch(2, kNowUs - kHourUs);
}

TEST_F(SqliteRequestLogTest, PruneDeletesRowsOlderThanTheCutoffInChunks) {
  auto opts = Opts();
  ASSERT_NE(Make(opts), nullptr);  // creates the schema
  RawDb raw(opts.path);
  InsertAgedRows(raw);
  SqliteSink sink(opts.path, 1'000);
  ASSERT_TRUE(sink.Open().ok());
  const WallTime cutoff = kNow - std::chrono::hours(24);
  Result<uint64_t> first = sink.Prune(cutoff, 1);  // one row at most
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(*first, 1u);
  Result<uint64_t> rest = sink.Prune(cutoff, 100);
  ASSERT_TRUE(rest.ok()) << rest.status().message();
  EXPECT_EQ(*rest, 2u);  // the other old request and the old batch; fewer than asked: done
  EXPECT_EQ(raw.Query("SELECT id FROM requests ORDER BY id"),
            (Rows{{"long_running"}, {"recent"}, {"recent_queued"}}));
  EXPECT_EQ(raw.Query("SELECT batch_id FROM batches"), (Rows{{"2"}}));
  EXPECT_EQ(sink.Prune(cutoff, 100).value(), 0u);
}

TEST_F(SqliteRequestLogTest, RetentionPrunesOldRowsInTheBackgroundAndKeepsRecentOnes) {
  auto opts = Opts();
  ASSERT_NE(Make(opts), nullptr);
  RawDb raw(opts.path);
  InsertAgedRows(raw);

  opts.retention_hours = -1;
  EXPECT_EQ(SqliteRequestLog::Create(opts).status().code(), ErrorCode::kInvalidArgument);
  opts.retention_hours = 24;
  opts.wall_now = [] { return kNow; };
  auto log = Make(opts);  // prunes right after start, then every minute
  ASSERT_NE(log, nullptr);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (log->stats().pruned < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(log->stats().pruned, 3u);
  EXPECT_EQ(raw.Query("SELECT id FROM requests ORDER BY id"),
            (Rows{{"long_running"}, {"recent"}, {"recent_queued"}}));
  EXPECT_EQ(raw.Query("SELECT batch_id FROM batches"), (Rows{{"2"}}));
  // Rows written now (real time, after kNow) stay too.
  log->OnAdmitted(Req("req_new"));
  ASSERT_TRUE(log->Flush(5'000).ok());
  EXPECT_EQ(raw.Query("SELECT count(*) FROM requests"), (Rows{{"4"}}));
}

}  // namespace
}  // namespace sluice::store
