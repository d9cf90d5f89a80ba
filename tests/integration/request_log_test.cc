// The durable request log of `sluice serve` (SQLite, the default): every
// answered request lands in the database with its status, batches get their
// own rows, the log survives the process, and /internal/requests/{id} finds
// records that have left the in-memory window.
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

using std::chrono::milliseconds;

// A temp dir removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-log-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) != nullptr ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Runs `sql` returning rows of text columns.
std::vector<std::vector<std::string>> Query(const std::string& db_path, const std::string& sql) {
  std::vector<std::vector<std::string>> rows;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "cannot open " << db_path << ": " << sqlite3_errmsg(db);
    sqlite3_close(db);
    return rows;
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
  } else {
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        const unsigned char* text = sqlite3_column_text(st, c);
        row.emplace_back(text != nullptr ? reinterpret_cast<const char*>(text) : "");
      }
      rows.push_back(std::move(row));
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rows;
}

class RequestLogTest : public SluiceTest {};

TEST_F(RequestLogTest, EveryRequestIsWrittenToSqliteWithItsStatus) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string db = dir.path() + "/requests.db";
  TestConfig config;
  config.request_log = "sqlite";
  config.sqlite_path = db;
  config.recent_requests = 16;  // older lookups must come from the database
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));

  constexpr size_t kOk = 300;
  std::vector<LoadRequest> requests;
  for (size_t i = 0; i < kOk; ++i) {
    requests.push_back(InferenceRequest(kPaidKey, "logged-" + std::to_string(i)));
  }
  // Ten that fail validation: logged? No: never admitted, so not in the log.
  for (int i = 0; i < 10; ++i) requests.push_back(InferenceRequest(kPaidKey, ""));
  std::vector<LoadResult> results = LoadClient::Run(
      {.port = port(), .connections = 50, .timeout = milliseconds(30'000)}, requests);
  std::map<std::string, int> status_of;
  for (size_t i = 0; i < kOk; ++i) {
    ASSERT_EQ(results[i].status, 200) << results[i].body;
    std::string id = StringField(ParseJsonOrNull(results[i].body), "request_id").value_or("");
    ASSERT_TRUE(IsRequestId(id)) << results[i].body;
    status_of[id] = 200;
  }
  for (size_t i = kOk; i < results.size(); ++i) EXPECT_EQ(results[i].status, 400);

  // The first request left the 16-entry memory window: found in SQLite.
  const std::string first = StringField(ParseJsonOrNull(results[0].body), "request_id").value();
  auto client = NewClient();
  boost::json::value record = WaitForFinalRecord(*client, first, milliseconds(5'000));
  EXPECT_EQ(StringField(record, "status"), "completed") << record;

  // SIGTERM drains and flushes the log; then the database has every request.
  ASSERT_TRUE(process().Terminate());
  ASSERT_EQ(process().WaitExit(milliseconds(15'000)), 0);
  auto rows = Query(db, "SELECT id, status, http_status, tier, model, batch_id FROM requests");
  ASSERT_EQ(rows.size(), kOk);
  for (const auto& row : rows) {
    ASSERT_EQ(status_of.count(row[0]), 1u) << row[0];
    EXPECT_EQ(row[1], "completed");
    EXPECT_EQ(row[2], "200");
    EXPECT_EQ(row[3], "paid");
    EXPECT_EQ(row[4], kModel);
    EXPECT_NE(row[5], "0");
  }
  auto batches = Query(db, "SELECT COUNT(*), SUM(size), MIN(ok) FROM batches");
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_GT(std::stoi(batches[0][0]), 0);
  EXPECT_EQ(batches[0][1], std::to_string(kOk));
  EXPECT_EQ(batches[0][2], "1");
}

TEST_F(RequestLogTest, AnUnwritableDatabasePathFailsAtStartWithAClearMessage) {
  TestConfig config;
  config.request_log = "sqlite";
  config.sqlite_path = "/nonexistent-dir/requests.db";
  SluiceProcessOptions options;
  options.binary_path = SLUICE_BINARY;
  options.config_yaml = config.Yaml();
  SluiceProcess process(std::move(options));
  Status started = process.Start();
  EXPECT_FALSE(started.ok());
}

}  // namespace
}  // namespace sluice::testing
