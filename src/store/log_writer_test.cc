#include "store/log_writer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice::store {
namespace {

// A sink whose failures the test scripts. Thread-safe: the writer thread
// calls it, the test inspects it.
class ScriptedSink final : public LogSink {
 public:
  std::atomic<bool> refuse_open{false};  // Open() fails with kUnavailable
  std::atomic<int> lost_writes{0};       // this many Write()s fail with kUnavailable
  std::atomic<int> writes{0};            // Write() calls that reached the rows
  std::string poison;                    // a batch holding this id fails with kInternal
  std::string poison2;                   // and one holding this id too

  Status Open() override { return refuse_open ? Unavailable("scripted: refused") : Status::Ok(); }
  Status Write(std::span<const LogEntry> entries) override {
    if (lost_writes.load() > 0) {
      --lost_writes;
      return Unavailable("scripted: connection lost");
    }
    ++writes;
    for (const LogEntry& e : entries) {
      const std::string id(std::get<RequestRow>(e).id.view());
      if (id == poison || (!poison2.empty() && id == poison2)) {
        return Internal("scripted: bad row " + id);
      }
    }
    std::lock_guard lock(mu_);
    for (const LogEntry& e : entries) {
      const auto& r = std::get<RequestRow>(e);
      const std::string id(r.id.view());
      written_.push_back(id);
      rows_.push_back(id + (r.finished() ? " final" : " admitted"));
    }
    return Status::Ok();
  }
  Result<uint64_t> Prune(WallTime cutoff, uint64_t max_rows) override {
    std::lock_guard lock(mu_);
    cutoffs_.push_back(cutoff);
    const uint64_t n = std::min(max_rows, expired_);
    expired_ -= n;
    return n;
  }
  void Close() override {}
  void set_expired(uint64_t rows) {
    std::lock_guard lock(mu_);
    expired_ = rows;
  }
  std::vector<WallTime> cutoffs() const {
    std::lock_guard lock(mu_);
    return cutoffs_;
  }
  std::vector<std::string> written() const {
    std::lock_guard lock(mu_);
    return written_;
  }
  std::vector<std::string> rows() const {  // "id admitted" / "id final"
    std::lock_guard lock(mu_);
    return rows_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> written_;
  std::vector<std::string> rows_;
  uint64_t expired_ = 0;           // rows Prune() may still delete
  std::vector<WallTime> cutoffs_;  // of each Prune() call
};

LogEntry Rec(const std::string& id) {
  RequestRecord r;
  r.id = id;
  return RequestRow::FromRecord(r);
}

LogEntry Final(const std::string& id) {
  RequestRecord r;
  r.id = id;
  r.completed_at = std::chrono::system_clock::from_time_t(1'700'000'000);
  return RequestRow::FromRecord(r);
}

std::unique_ptr<LogWriter> Make(const LogWriter::Options& o, std::unique_ptr<ScriptedSink> sink) {
  auto w = LogWriter::Create(o, std::move(sink), /*sink_open=*/false);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  return std::move(w).value();
}

LogWriter::Options Fast() {
  LogWriter::Options o;
  o.flush_interval_ms = 5;
  o.reconnect_backoff_initial_ms = 1;
  o.reconnect_backoff_max_ms = 5;
  return o;
}

TEST(LogWriterTest, KeepsOrderAcrossLostConnections) {
  auto sink = std::make_unique<ScriptedSink>();
  ScriptedSink* s = sink.get();
  s->lost_writes = 3;
  auto o = Fast();
  o.flush_batch = 2;
  auto w = Make(o, std::move(sink));
  for (int i = 0; i < 5; ++i) w->Append(Rec("r" + std::to_string(i)));
  ASSERT_TRUE(w->Flush(5'000).ok());
  EXPECT_EQ(s->written(), (std::vector<std::string>{"r0", "r1", "r2", "r3", "r4"}));
  auto st = w->stats();
  EXPECT_EQ(st.written, 5u);
  EXPECT_EQ(st.dropped, 0u);
  EXPECT_EQ(st.flush_errors, 3u);
}

TEST(LogWriterTest, SetsAsideARecordTheDatabaseRefusesAlone) {
  auto sink = std::make_unique<ScriptedSink>();
  ScriptedSink* s = sink.get();
  s->poison = "bad";
  auto o = Fast();
  o.flush_batch = 1;
  auto w = Make(o, std::move(sink));
  w->Append(Rec("a"));
  w->Append(Rec("bad"));
  w->Append(Rec("b"));
  ASSERT_TRUE(w->Flush(5'000).ok());
  EXPECT_EQ(s->written(), (std::vector<std::string>{"a", "b"}));
  auto st = w->stats();
  EXPECT_EQ(st.written, 2u);
  EXPECT_EQ(st.dropped, 1u);
  EXPECT_EQ(st.rejected, 1u);
  EXPECT_EQ(w->rejected_rows(), 1u);
  EXPECT_EQ(st.flush_errors, 1u);  // refused once, never tried again
}

TEST(LogWriterTest, OnlyTheRefusedRecordsOfABatchAreSetAsideTheRestLandInOrder) {
  auto sink = std::make_unique<ScriptedSink>();
  ScriptedSink* s = sink.get();
  s->poison = "r13";
  s->poison2 = "r61";
  metrics::Registry registry;
  auto o = Fast();
  o.flush_batch = 100;
  o.flush_interval_ms = 60'000;  // one batch: written when Flush() asks
  o.metrics = &registry;
  o.backend = "test";
  auto w = Make(o, std::move(sink));
  std::vector<std::string> expected;
  for (int i = 0; i < 100; ++i) {
    const std::string id = "r" + std::to_string(i);
    w->Append(Rec(id));
    if (id != "r13" && id != "r61") expected.push_back(id);
  }
  ASSERT_TRUE(w->Flush(5'000).ok());
  EXPECT_EQ(s->written(), expected);
  auto st = w->stats();
  EXPECT_EQ(st.written, 98u);
  EXPECT_EQ(st.rejected, 2u);
  EXPECT_EQ(st.dropped, 2u);
  EXPECT_EQ(st.buffered, 0u);
  // Halving finds each bad record in about 2 * log2(100) writes, not 100.
  EXPECT_LE(s->writes.load(), 40);
  EXPECT_NE(
      registry.RenderPrometheus().find("sluice_request_log_rejected_total{backend=\"test\"} 2"),
      std::string::npos);
}

TEST(LogWriterTest, FlushAndCloseGiveUpInBoundedTimeWhenTheDatabaseIsDown) {
  auto sink = std::make_unique<ScriptedSink>();
  sink->refuse_open = true;
  auto o = Fast();
  o.close_timeout_ms = 100;
  auto w = Make(o, std::move(sink));
  for (int i = 0; i < 5; ++i) w->Append(Rec("r" + std::to_string(i)));
  EXPECT_EQ(w->Flush(50).code(), ErrorCode::kDeadlineExceeded);
  EXPECT_TRUE(w->FindRequest("r3").has_value());  // still held, so still found
  const auto start = std::chrono::steady_clock::now();
  w->Close();
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(100));
  EXPECT_LT(took, std::chrono::seconds(2));
  auto st = w->stats();
  EXPECT_EQ(st.appended, 5u);
  EXPECT_EQ(st.written, 0u);
  EXPECT_EQ(st.dropped, 5u);
  EXPECT_EQ(st.buffered, 0u);
  EXPECT_GE(st.flush_errors, 1u);
}

// A batch that fails is reordered for writing (final rows first, admissions
// they supersede behind): it must go back in arrival order, so that a full
// buffer drops the oldest records and a lookup finds the newest.
TEST(LogWriterTest, AFailedBatchKeepsArrivalOrderForDropsAndLookups) {
  auto sink = std::make_unique<ScriptedSink>();
  ScriptedSink* s = sink.get();
  s->refuse_open = true;
  auto o = Fast();
  o.buffer_capacity = 4;
  o.flush_batch = 4;
  auto w = Make(o, std::move(sink));
  for (int i = 1; i <= 2; ++i) {
    w->Append(Rec("r" + std::to_string(i)));
    w->Append(Final("r" + std::to_string(i)));
  }
  // Attempts fail one after another; the batch moves between the buffer
  // and the writer's hands, and is always found at its newest.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int looked = 0;
  while (w->stats().flush_errors < 20 && std::chrono::steady_clock::now() < until) {
    auto found = w->FindRequest("r1");
    ASSERT_TRUE(found.has_value());
    ASSERT_NE(found->completed_at, WallTime{}) << "lookup " << looked;
    ++looked;
  }
  ASSERT_GE(w->stats().flush_errors, 20u);
  // Two newer records push out the two oldest (r1's), wherever the batch is.
  w->Append(Rec("r3"));
  w->Append(Final("r3"));
  s->refuse_open = false;
  ASSERT_TRUE(w->Flush(5'000).ok());
  EXPECT_EQ(s->rows(), (std::vector<std::string>{"r2 final", "r3 final"}));
  auto st = w->stats();
  EXPECT_EQ(st.appended, 6u);
  EXPECT_EQ(st.dropped, 2u);
  EXPECT_EQ(st.written, 4u);  // two final rows and the admissions they replace
  EXPECT_EQ(st.buffered, 0u);
}

TEST(LogWriterTest, PrunesPastTheRetentionPeriodInChunksFromTheInjectedClock) {
  const WallTime now = std::chrono::system_clock::from_time_t(1'700'000'000);
  auto sink = std::make_unique<ScriptedSink>();
  ScriptedSink* s = sink.get();
  s->set_expired(25'000);
  auto o = Fast();
  o.retention_ms = 3'600'000;
  o.prune_interval_ms = 3'600'000;  // only the prune right after start
  o.wall_now = [now] { return now; };
  auto w = Make(o, std::move(sink));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (w->stats().pruned < 25'000 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(w->stats().pruned, 25'000u);
  // 10,000 rows a statement, until one deletes fewer.
  EXPECT_EQ(s->cutoffs(), std::vector<WallTime>(3, now - std::chrono::hours(1)));
  w->Append(Rec("a"));
  ASSERT_TRUE(w->Flush(5'000).ok());
  EXPECT_EQ(s->written(), std::vector<std::string>{"a"});
}

TEST(LogWriterTest, KeepsEverythingWithoutRetention) {
  auto sink = std::make_unique<ScriptedSink>();
  ScriptedSink* s = sink.get();
  s->set_expired(5);
  auto w = Make(Fast(), std::move(sink));
  w->Append(Rec("a"));
  ASSERT_TRUE(w->Flush(5'000).ok());
  w->Close();
  EXPECT_TRUE(s->cutoffs().empty());
  EXPECT_EQ(w->stats().pruned, 0u);
}

TEST(LogWriterTest, RefusesBadOptions) {
  LogWriter::Options o;
  o.buffer_capacity = 0;
  EXPECT_EQ(LogWriter::Validate(o).code(), ErrorCode::kInvalidArgument);
  o = LogWriter::Options();
  o.flush_interval_ms = 0;
  EXPECT_EQ(LogWriter::Validate(o).code(), ErrorCode::kInvalidArgument);
  o = LogWriter::Options();
  o.retention_ms = -1;
  EXPECT_EQ(LogWriter::Validate(o).code(), ErrorCode::kInvalidArgument);
  o = LogWriter::Options();
  o.prune_interval_ms = 0;
  EXPECT_EQ(LogWriter::Validate(o).code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(LogWriter::Create(LogWriter::Options(), nullptr, false).ok());
}

}  // namespace
}  // namespace sluice::store
