// Integration tests of PostgresRequestLog against a real PostgreSQL 15
// (testing/postgres_server.h), over TCP on loopback.
#include "store/postgres_request_log.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/ids.h"
#include "common/utf8.h"
#include "metrics/registry.h"
#include "store/postgres_sink.h"
#include "testing/postgres_server.h"

namespace sluice::store {
namespace {

using Rows = std::vector<std::vector<std::string>>;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::PostgresServer;

// Every value as text; NULL as "NULL".
Rows Query(const std::string& url, const std::string& sql) {
  pqxx::connection c(url);
  pqxx::nontransaction tx(c);
  Rows rows;
  for (const auto& row : tx.exec(sql)) {
    auto& out = rows.emplace_back();
    for (const auto& f : row) out.push_back(f.is_null() ? "NULL" : f.c_str());
  }
  return rows;
}

RequestPtr Req(const std::string& id) {
  auto r = std::make_shared<InferenceRequest>();
  r->id = id;
  r->model = "m";
  r->admitted = true;  // as InferenceService marks what enters the queue
  r->principal = {"key-1", 0, "paid", {}};
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

void AdmitAndFinish(RequestLog& log, const std::string& id) {
  auto r = Req(id);
  log.OnAdmitted(r);
  log.OnFinished(*r, Ok(1, 2), 3);
}

// Polls `done` until it holds or `timeout` passes; the writer works in the
// background, so tests wait for it this way, never with a bare sleep.
template <typename Pred>
bool WaitFor(Pred done, milliseconds timeout) {
  const auto deadline = steady_clock::now() + timeout;
  while (!done()) {
    if (steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

std::string InList(const std::vector<std::string>& ids, size_t from, size_t to) {
  std::string s = "(";
  for (size_t i = from; i < to; ++i) s += (i > from ? ",'" : "'") + ids[i] + "'";
  return s + ")";
}

// One server for the tests that keep it running; each test gets its own
// database.
class PostgresRequestLogTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new PostgresServer();
    Status s = server_->Start();
    if (!s.ok()) start_error_ = new std::string(s.ToString());
  }
  static void TearDownTestSuite() {
    delete server_;
    delete start_error_;
    server_ = nullptr;
    start_error_ = nullptr;
  }
  void SetUp() override {
    ASSERT_EQ(start_error_, nullptr) << *start_error_;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string("t_") + info->name();
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    name = name.substr(0, 60);
    pqxx::connection c(server_->url());
    pqxx::nontransaction tx(c);
    tx.exec("CREATE DATABASE " + name);
    url_ = server_->url(name);
  }
  PostgresRequestLog::Options Opts() const {
    PostgresRequestLog::Options o;
    o.url = url_;
    o.worker_id = "gpu-0";
    o.flush_interval_ms = 20;
    return o;
  }
  static std::unique_ptr<PostgresRequestLog> Make(const PostgresRequestLog::Options& o) {
    auto log = PostgresRequestLog::Create(o);
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    return log.ok() ? std::move(log).value() : nullptr;
  }

  static PostgresServer* server_;
  static std::string* start_error_;
  std::string url_;
};
PostgresServer* PostgresRequestLogTest::server_ = nullptr;
std::string* PostgresRequestLogTest::start_error_ = nullptr;

TEST_F(PostgresRequestLogTest, RoundTripsRequestsAndBatches) {
  auto log = Make(Opts());
  ASSERT_NE(log, nullptr);
  const auto before = std::chrono::system_clock::now() - std::chrono::seconds(1);
  auto a = Req("req_a");
  auto b = Req("req_b");
  auto c = Req("req_c");
  log->OnAdmitted(a);
  log->OnFinished(*a, Ok(9, 7), 12.5);  // likely in the same COPY as its admission
  log->OnAdmitted(b);
  InferenceOutcome late;
  late.status = DeadlineExceeded("too late");
  log->OnFinished(*b, late, 500);
  log->OnAdmitted(c);
  log->OnFinished(*NotAdmitted("req_d"), Ok(1, 1), 1);  // never admitted: ignored
  const WallTime t0 = std::chrono::system_clock::from_time_t(1'700'000'000);
  BatchRecord ok{9, "m", "gpu-0", 32, t0, t0 + milliseconds(50), 50.25, true, ""};
  BatchRecord bad{10, "m", "gpu-1", 4, t0, t0 + std::chrono::seconds(3), 3000, false, "timeout"};
  log->OnBatchDone(ok);
  log->OnBatchDone(bad);
  log->OnBatchDone(ok);  // reported twice, stored once
  ASSERT_TRUE(log->Flush(10'000).ok());
  EXPECT_EQ(Query(url_, "SELECT status FROM requests WHERE id = 'req_c'"), (Rows{{"queued"}}));
  log->OnFinished(*c, Ok(11, 5), 40);  // the final state replaces a stored admission
  ASSERT_TRUE(log->Flush(10'000).ok());

  EXPECT_EQ(
      Query(url_,
            "SELECT id, key_id, tier, model, status, http_status, error, latency_ms, "
            "batch_id, worker_id, tokens_used FROM requests ORDER BY id"),
      (Rows{
          {"req_a", "key-1", "paid", "m", "completed", "200", "NULL", "12.5", "9", "gpu-0", "7"},
          {"req_b", "key-1", "paid", "m", "failed", "504", "too late", "500", "NULL", "NULL", "0"},
          {"req_c", "key-1", "paid", "m", "completed", "200", "NULL", "40", "11", "gpu-0", "5"}}));
  const auto lo = std::chrono::duration_cast<std::chrono::microseconds>(before.time_since_epoch());
  EXPECT_EQ(Query(url_,
                  "SELECT count(*) FROM requests WHERE created_at <= completed_at AND "
                  "created_at >= to_timestamp(" +
                      std::to_string(lo.count() / 1e6) + ")"),
            (Rows{{"3"}}));
  EXPECT_EQ(
      Query(url_,
            "SELECT batch_id, worker_id, model, size, "
            "(extract(epoch FROM started_at) * 1000000)::bigint, "
            "(extract(epoch FROM completed_at) * 1000000)::bigint, duration_ms, ok, error "
            "FROM batches ORDER BY batch_id"),
      (Rows{{"9", "gpu-0", "m", "32", "1700000000000000", "1700000000050000", "50.25", "t", "NULL"},
            {"10", "gpu-1", "m", "4", "1700000000000000", "1700000003000000", "3000", "f",
             "timeout"}}));
  auto s = log->stats();
  EXPECT_EQ(s.appended, 9u);
  EXPECT_EQ(s.written, 9u);
  EXPECT_EQ(s.dropped, 0u);

  // A second gateway on the same database: migrating again changes nothing.
  ASSERT_NE(Make(Opts()), nullptr);
  EXPECT_EQ(Query(url_, "SELECT version FROM schema_version"), (Rows{{"1"}}));
  EXPECT_EQ(Query(url_,
                  "SELECT count(*) FROM pg_indexes WHERE indexname IN "
                  "('requests_created_at', 'batches_started_at', 'batches_batch_id')"),
            (Rows{{"3"}}));
}

TEST_F(PostgresRequestLogTest, LooksUpOldRecordsInTheDatabase) {
  auto opts = Opts();
  opts.memory_capacity = 16;
  auto log = Make(opts);
  ASSERT_NE(log, nullptr);
  const std::string id = NewRequestId();
  AdmitAndFinish(*log, id);
  ASSERT_TRUE(log->Flush(10'000).ok());
  for (int i = 0; i < 16; ++i) log->OnAdmitted(Req(NewRequestId()));  // id's slot is reused
  ASSERT_TRUE(log->Flush(10'000).ok());

  auto old = log->Lookup(id);
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->stage, RequestStage::kCompleted);
  EXPECT_EQ(old->http_status, 200);
  EXPECT_EQ(old->tier, "paid");
  EXPECT_DOUBLE_EQ(old->latency_ms, 3);
  EXPECT_EQ(old->batch_id, 1u);
  EXPECT_EQ(old->tokens_used, 2u);
  EXPECT_EQ(old->worker_id, "gpu-0");
  EXPECT_NE(old->created_at, WallTime{});
  EXPECT_GE(old->completed_at, old->created_at);
  EXPECT_FALSE(log->Lookup("req_never_seen").has_value());

  auto other_gateway = Make(Opts());
  ASSERT_NE(other_gateway, nullptr);
  EXPECT_EQ(other_gateway->Lookup(id)->stage, RequestStage::kCompleted);
}

TEST_F(PostgresRequestLogTest, KeepsServingWhileATableIsLocked) {
  auto opts = Opts();
  opts.write_timeout_ms = 200;
  opts.reconnect_backoff_initial_ms = 20;
  opts.reconnect_backoff_max_ms = 100;
  auto log = Make(opts);
  ASSERT_NE(log, nullptr);
  pqxx::connection locker(url_);
  auto lock = std::make_unique<pqxx::work>(locker);
  lock->exec("LOCK TABLE requests IN ACCESS EXCLUSIVE MODE");  // every write now hangs

  const auto start = steady_clock::now();
  for (int i = 0; i < 10'000; ++i) AdmitAndFinish(*log, "req_" + std::to_string(100'000 + i));
  const auto took = steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(2))
      << "10,000 requests took " << std::chrono::duration<double>(took).count() << " s";
  EXPECT_TRUE(WaitFor([&] { return log->stats().flush_errors >= 1; }, milliseconds(10'000)));
  EXPECT_EQ(log->stats().written, 0u);

  lock->commit();
  ASSERT_TRUE(log->Flush(30'000).ok());
  auto s = log->stats();
  EXPECT_EQ(s.written, 20'000u);
  EXPECT_EQ(s.dropped, 0u);
  EXPECT_EQ(Query(url_, "SELECT status, count(*) FROM requests GROUP BY status"),
            (Rows{{"completed", "10000"}}));
}

// Retention: rows at fixed times around kNow, which the log takes as the
// wall clock, so nothing depends on when the test runs.
constexpr int64_t kNowS = 1'700'000'000;
const WallTime kNow = std::chrono::system_clock::from_time_t(kNowS);

void InsertAgedRows(const std::string& url) {
  auto at = [](int64_t seconds_before) {
    return "to_timestamp(" + std::to_string(kNowS - seconds_before) + ")";
  };
  auto request = [&](const std::string& id, const std::string& created,
                     const std::string& completed) {
    Query(url,
          "INSERT INTO requests (id, key_id, tier, model, status, created_at, completed_at) "
          "VALUES ('" +
              id + "', 'k', 'paid', 'm', 'completed', " + created + ", " + completed + ")");
  };
  constexpr int64_t kHour = 3'600;
  request("old_done", at(30 * kHour), at(29 * kHour));
  request("old_unfinished", at(30 * kHour), "NULL");
  request("long_running", at(25 * kHour), at(kHour));
  request("recent", at(kHour), at(kHour - 1));
  request("recent_queued", at(2 * kHour), "NULL");
  for (auto [id, before] : {std::pair{1, 26 * kHour}, std::pair{2, kHour}}) {
    Query(url, "INSERT INTO batches VALUES (" + std::to_string(id) + ", 'gpu-0', 'm', 4, " +
                   at(before) + ", " + at(before - 1) + ", 50, true, NULL)");
  }
}

TEST_F(PostgresRequestLogTest, PruneDeletesRowsOlderThanTheCutoffInChunks) {
  ASSERT_NE(Make(Opts()), nullptr);  // creates the schema
  InsertAgedRows(url_);
  PostgresSink sink(url_, 2, 10'000);
  ASSERT_TRUE(sink.Open().ok());
  const WallTime cutoff = kNow - std::chrono::hours(24);
  Result<uint64_t> first = sink.Prune(cutoff, 1);  // one row at most
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(*first, 1u);
  Result<uint64_t> rest = sink.Prune(cutoff, 100);
  ASSERT_TRUE(rest.ok()) << rest.status().message();
  EXPECT_EQ(*rest, 2u);  // the other old request and the old batch; fewer than asked: done
  EXPECT_EQ(Query(url_, "SELECT id FROM requests ORDER BY id"),
            (Rows{{"long_running"}, {"recent"}, {"recent_queued"}}));
  EXPECT_EQ(Query(url_, "SELECT batch_id FROM batches"), (Rows{{"2"}}));
  EXPECT_EQ(sink.Prune(cutoff, 100).value(), 0u);
}

TEST_F(PostgresRequestLogTest, RetentionPrunesOldRowsInTheBackgroundAndKeepsRecentOnes) {
  ASSERT_NE(Make(Opts()), nullptr);
  InsertAgedRows(url_);
  auto opts = Opts();
  opts.retention_hours = 24;
  opts.wall_now = [] { return kNow; };
  auto log = Make(opts);  // prunes right after start, then every minute
  ASSERT_NE(log, nullptr);
  EXPECT_TRUE(WaitFor([&] { return log->stats().pruned >= 3; }, milliseconds(10'000)));
  EXPECT_EQ(log->stats().pruned, 3u);
  EXPECT_EQ(Query(url_, "SELECT id FROM requests ORDER BY id"),
            (Rows{{"long_running"}, {"recent"}, {"recent_queued"}}));
  EXPECT_EQ(Query(url_, "SELECT batch_id FROM batches"), (Rows{{"2"}}));
  AdmitAndFinish(*log, "req_new");  // written now (real time, after kNow): kept
  ASSERT_TRUE(log->Flush(10'000).ok());
  EXPECT_EQ(Query(url_, "SELECT count(*) FROM requests"), (Rows{{"4"}}));
}

// "ошибка 模型 💥": Cyrillic (2 bytes), CJK (3 bytes), an emoji (4 bytes).
const std::string kMultibyte =
    "\xD0\xBE\xD1\x88\xD0\xB8\xD0\xB1\xD0\xBA\xD0\xB0 \xE6\xA8\xA1\xE5\x9E\x8B "
    "\xF0\x9F\x92\xA5";
const std::string kFffd = "\xEF\xBF\xBD";

TEST_F(PostgresRequestLogTest, MultiByteBackendErrorsRoundTripIntact) {
  auto log = Make(Opts());
  ASSERT_NE(log, nullptr);
  const std::string prefix = "http:http://10.0.0.7:8000#0: inference API answered HTTP 500: ";
  // Cut by a byte budget in the middle of the emoji: SanitizeUtf8 drops the
  // partial character, so the text is valid and everything before it stays.
  auto cut = Req("req_cut");
  log->OnAdmitted(cut);
  InferenceOutcome failed;
  failed.status = BackendError("model 'm' failed after 3 attempts (the backend reported an error)");
  failed.detail = prefix + SanitizeUtf8(kMultibyte, kMultibyte.size() - 2);
  log->OnFinished(*cut, failed, 30);
  // Raw bytes cut mid-character (as `substr` made them) and a NUL byte:
  // repaired on the way in instead of failing the batch.
  auto raw = Req("req_raw");
  log->OnAdmitted(raw);
  InferenceOutcome broken;
  broken.status = BackendError("model 'm' failed after 1 attempt (the backend reported an error)");
  broken.detail = prefix + kMultibyte.substr(0, kMultibyte.size() - 2) + std::string("\0!", 2);
  log->OnFinished(*raw, broken, 40);
  ASSERT_TRUE(log->Flush(10'000).ok());

  const std::string cut_error =
      "model 'm' failed after 3 attempts (the backend reported an error); internal: " + prefix +
      kMultibyte.substr(0, kMultibyte.size() - 4);
  EXPECT_EQ(Query(url_, "SELECT error FROM requests WHERE id = 'req_cut'"), (Rows{{cut_error}}));
  EXPECT_EQ(Query(url_, "SELECT error FROM requests WHERE id = 'req_raw'"),
            (Rows{{"model 'm' failed after 1 attempt (the backend reported an error); internal: " +
                   prefix + kMultibyte.substr(0, kMultibyte.size() - 4) + kFffd + kFffd + "!"}}));
  EXPECT_EQ(log->stats().rejected, 0u);  // the normal path never needs the set-aside

  // Read back through the log's own reader once memory has moved on.
  auto opts = Opts();
  opts.memory_capacity = 16;
  auto other = Make(opts);
  ASSERT_NE(other, nullptr);
  auto found = other->Lookup("req_cut");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->error, cut_error);
  EXPECT_EQ(found->http_status, 502);
}

TEST_F(PostgresRequestLogTest, ARowPostgresRefusesIsSetAsideAndTheRestOfItsBatchLands) {
  auto opts = Opts();
  opts.flush_interval_ms = 60'000;  // one batch, written when Flush() asks
  auto log = Make(opts);
  ASSERT_NE(log, nullptr);
  for (int i = 0; i < 200; ++i) AdmitAndFinish(*log, "req_" + std::to_string(1'000 + i));
  const WallTime t0 = std::chrono::system_clock::from_time_t(1'700'000'000);
  // `size` is an integer column: PostgreSQL refuses 3,000,000,000 (22003),
  // which fails the whole COPY transaction.
  BatchRecord refused{7, "m", "gpu-0", 3'000'000'000u, t0, t0 + milliseconds(5), 5, true, ""};
  BatchRecord fine{8, "m", "gpu-0", 16, t0, t0 + milliseconds(5), 5, true, ""};
  log->OnBatchDone(refused);
  for (int i = 200; i < 300; ++i) AdmitAndFinish(*log, "req_" + std::to_string(1'000 + i));
  log->OnBatchDone(fine);
  ASSERT_TRUE(log->Flush(30'000).ok());

  EXPECT_EQ(Query(url_, "SELECT status, count(*) FROM requests GROUP BY status"),
            (Rows{{"completed", "300"}}));
  EXPECT_EQ(Query(url_, "SELECT batch_id FROM batches"), (Rows{{"8"}}));
  auto s = log->stats();
  EXPECT_EQ(s.appended, 602u);
  EXPECT_EQ(s.rejected, 1u);
  EXPECT_EQ(log->rejected_rows(), 1u);
  EXPECT_EQ(s.dropped, 1u);
  EXPECT_EQ(s.written, 601u);
  EXPECT_GE(s.flush_errors, 1u);
  EXPECT_EQ(s.buffered, 0u);
}

TEST(PostgresRequestLogOutageTest, KeepsServingWhilePostgresIsDownAndCatchesUpAfterRestart) {
  PostgresServer server;
  ASSERT_TRUE(server.Start().ok());
  metrics::Registry registry;
  PostgresRequestLog::Options opts;
  opts.url = server.url();
  opts.memory_capacity = 1'000;
  opts.buffer_capacity = 1'000;
  opts.flush_batch = 100;
  opts.flush_interval_ms = 20;
  opts.reconnect_backoff_initial_ms = 20;
  opts.reconnect_backoff_max_ms = 200;
  opts.lookup_reconnect_interval_ms = 0;
  opts.metrics = &registry;
  auto created = PostgresRequestLog::Create(opts);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto log = std::move(created).value();

  std::vector<std::string> before(5), during(10'000);
  for (auto& id : before) AdmitAndFinish(*log, id = NewRequestId());
  ASSERT_TRUE(log->Flush(10'000).ok());
  ASSERT_TRUE(server.Stop().ok());

  const auto start = steady_clock::now();
  auto slowest = steady_clock::duration::zero();
  for (auto& id : during) {
    const auto t = steady_clock::now();
    AdmitAndFinish(*log, id = NewRequestId());
    slowest = std::max(slowest, steady_clock::now() - t);
  }
  const auto took = steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(2))
      << "10,000 requests took " << std::chrono::duration<double>(took).count() << " s";
  EXPECT_LT(slowest, std::chrono::seconds(1));  // a connect attempt would block for seconds

  // The writer fails, keeps the newest 1,000 records and counts the rest.
  EXPECT_TRUE(WaitFor(
      [&] {
        auto s = log->stats();
        return s.flush_errors >= 1 && s.buffered == 1'000;
      },
      milliseconds(15'000)));
  auto s = log->stats();
  EXPECT_EQ(s.appended, 20'010u);
  EXPECT_EQ(s.written, 10u);
  EXPECT_EQ(s.dropped, 19'000u);
  EXPECT_EQ(s.buffered, 1'000u);
  EXPECT_NE(registry.RenderPrometheus().find(
                "sluice_request_log_dropped_total{backend=\"postgres\"} 19000"),
            std::string::npos);
  // An old record (out of memory) cannot be read now: a quick miss, no hang.
  const auto lookup_start = steady_clock::now();
  EXPECT_FALSE(log->Lookup(before[0]).has_value());
  EXPECT_LT(steady_clock::now() - lookup_start, std::chrono::seconds(3));

  ASSERT_TRUE(server.Start().ok());  // same port: the writer reconnects by itself
  ASSERT_TRUE(log->Flush(30'000).ok());
  s = log->stats();
  EXPECT_EQ(s.written, 1'010u);
  EXPECT_EQ(s.dropped, 19'000u);
  EXPECT_EQ(s.buffered, 0u);
  EXPECT_EQ(Query(server.url(), "SELECT count(*) FROM requests"), (Rows{{"505"}}));
  EXPECT_EQ(
      Query(server.url(), "SELECT count(*) FROM requests WHERE status = 'completed' AND id IN " +
                              InList(during, 9'500, 10'000)),
      (Rows{{"500"}}));
  auto found = log->Lookup(before[0]);  // the reader reconnected too
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->stage, RequestStage::kCompleted);
}

TEST(PostgresRequestLogStartTest, StartsWithoutTheDatabaseOnlyWhenAskedTo) {
  PostgresServer server;
  ASSERT_TRUE(server.Start().ok());
  ASSERT_TRUE(server.Stop().ok());
  PostgresRequestLog::Options opts;
  opts.url = server.url();
  opts.reconnect_backoff_initial_ms = 20;
  opts.reconnect_backoff_max_ms = 100;
  auto refused = PostgresRequestLog::Create(opts);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kUnavailable) << refused.status().ToString();

  opts.connect_at_start = false;
  auto created = PostgresRequestLog::Create(opts);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto log = std::move(created).value();
  AdmitAndFinish(*log, "req_early");
  EXPECT_TRUE(WaitFor([&] { return log->stats().flush_errors >= 1; }, milliseconds(10'000)));
  ASSERT_TRUE(server.Start().ok());
  ASSERT_TRUE(log->Flush(30'000).ok());
  EXPECT_EQ(Query(server.url(), "SELECT id, status FROM requests"),
            (Rows{{"req_early", "completed"}}));
}

TEST(PostgresRequestLogOptionsTest, RefusesBadOptions) {
  PostgresRequestLog::Options opts;
  auto empty = PostgresRequestLog::Create(opts);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), ErrorCode::kInvalidArgument);
  opts.url = "host=127.0.0.1 port";  // not key=value
  auto bad = PostgresRequestLog::Create(opts);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("url"), std::string::npos) << bad.status().message();
  opts.url = "postgresql://127.0.0.1:1/x";
  opts.lookup_timeout_ms = 0;
  auto zero = PostgresRequestLog::Create(opts);
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.status().message().find("lookup_timeout_ms"), std::string::npos);
}

}  // namespace
}  // namespace sluice::store
