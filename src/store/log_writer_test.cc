#include "store/log_writer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

namespace sluice::store {
namespace {

// A sink whose failures the test scripts. Thread-safe: the writer thread
// calls it, the test inspects it.
class ScriptedSink final : public LogSink {
 public:
  std::atomic<bool> refuse_open{false};  // Open() fails with kUnavailable
  std::atomic<int> lost_writes{0};       // this many Write()s fail with kUnavailable
  std::string poison;                    // a batch holding this id fails with kInternal

  Status Open() override { return refuse_open ? Unavailable("scripted: refused") : Status::Ok(); }
  Status Write(std::span<const LogEntry> entries) override {
    if (lost_writes.load() > 0) {
      --lost_writes;
      return Unavailable("scripted: connection lost");
    }
    for (const LogEntry& e : entries) {
      if (std::get<RequestRecord>(e).id == poison) return Internal("scripted: bad row");
    }
    std::lock_guard lock(mu_);
    for (const LogEntry& e : entries) written_.push_back(std::get<RequestRecord>(e).id);
    return Status::Ok();
  }
  void Close() override {}
  std::vector<std::string> written() const {
    std::lock_guard lock(mu_);
    return written_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> written_;
};

LogEntry Rec(const std::string& id) {
  RequestRecord r;
  r.id = id;
  return r;
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

TEST(LogWriterTest, DropsABatchThatKeepsFailingWithAStatementError) {
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
  EXPECT_EQ(st.flush_errors, 3u);
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

TEST(LogWriterTest, RefusesBadOptions) {
  LogWriter::Options o;
  o.buffer_capacity = 0;
  EXPECT_EQ(LogWriter::Validate(o).code(), ErrorCode::kInvalidArgument);
  o = LogWriter::Options();
  o.flush_interval_ms = 0;
  EXPECT_EQ(LogWriter::Validate(o).code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(LogWriter::Create(LogWriter::Options(), nullptr, false).ok());
}

}  // namespace
}  // namespace sluice::store
