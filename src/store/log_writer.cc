#include "store/log_writer.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <unordered_set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>

namespace sluice::store {

namespace {
constexpr int kWriterNice = 10;
}  // namespace
namespace {

using std::chrono::milliseconds;
using WriterClock = std::chrono::steady_clock;

constexpr auto kWarningInterval = std::chrono::seconds(10);
// A batch that fails this often on a reachable database is dropped.
constexpr int kMaxStatementFailures = 3;

}  // namespace

Status LogWriter::Validate(const Options& o) {
  if (o.buffer_capacity < 1) return InvalidArgument("buffer_capacity must be >= 1");
  if (o.flush_batch < 1 || o.flush_batch > o.buffer_capacity) {
    return InvalidArgument("flush_batch must be between 1 and buffer_capacity (" +
                           std::to_string(o.buffer_capacity) + ")");
  }
  if (o.flush_interval_ms < 1) return InvalidArgument("flush_interval_ms must be >= 1");
  if (o.reconnect_backoff_initial_ms < 1) {
    return InvalidArgument("reconnect_backoff_initial_ms must be >= 1");
  }
  if (o.reconnect_backoff_max_ms < o.reconnect_backoff_initial_ms) {
    return InvalidArgument("reconnect_backoff_max_ms must be >= reconnect_backoff_initial_ms");
  }
  if (o.close_timeout_ms < 0) return InvalidArgument("close_timeout_ms must be >= 0");
  return Status::Ok();
}

Result<std::unique_ptr<LogWriter>> LogWriter::Create(const Options& options,
                                                     std::unique_ptr<LogSink> sink,
                                                     bool sink_open) {
  if (Status s = Validate(options); !s.ok()) return s;
  if (sink == nullptr) return InvalidArgument("LogWriter needs a sink");
  std::unique_ptr<LogWriter> w(new LogWriter(options, std::move(sink), sink_open));
  w->thread_ = std::thread([raw = w.get()] { raw->Run(); });
  return w;
}

LogWriter::LogWriter(const Options& options, std::unique_ptr<LogSink> sink, bool sink_open)
    : options_(options), sink_(std::move(sink)), sink_open_(sink_open) {
  inflight_.reserve(options_.flush_batch);
  if (options_.metrics != nullptr) {
    metrics::Labels labels{{"backend", options_.backend}};
    written_metric_ = options_.metrics->GetCounter(
        "sluice_request_log_written_total", "Request log records written to the database.", labels);
    dropped_metric_ = options_.metrics->GetCounter(
        "sluice_request_log_dropped_total",
        "Request log records given up (buffer full, failing batch, shutdown).", labels);
    flush_errors_metric_ = options_.metrics->GetCounter(
        "sluice_request_log_flush_errors_total", "Failed request log connects and writes.", labels);
    buffered_metric_ = options_.metrics->GetGauge(
        "sluice_request_log_buffered", "Request log records waiting to be written.", labels);
  }
}

LogWriter::~LogWriter() { Close(); }

void LogWriter::CountDropped(uint64_t n) {
  if (n == 0) return;
  dropped_.Inc(n);
  if (dropped_metric_ != nullptr) dropped_metric_->Inc(n);
}

void LogWriter::Append(LogEntry entry) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    ++appended_;
    if (closing_) {
      CountDropped(1);
      return;
    }
    if (buffer_.size() >= options_.buffer_capacity) {
      buffer_.pop_front();
      CountDropped(1);
    }
    buffer_.push_back(std::move(entry));
    ++accepted_;
    wake = buffer_.size() == options_.flush_batch;
    if (buffered_metric_ != nullptr) buffered_metric_->Set(static_cast<double>(HeldLocked()));
  }
  if (wake) wake_.notify_one();
}

std::optional<RequestRecord> LogWriter::FindRequest(const std::string& id) const {
  auto match = [&id](const LogEntry& e) {
    const auto* r = std::get_if<RequestRecord>(&e);
    return r != nullptr && r->id == id;
  };
  std::lock_guard lock(mu_);
  // Newest first: the buffer is newer than the batch in flight.
  for (auto it = buffer_.rbegin(); it != buffer_.rend(); ++it) {
    if (match(*it)) return std::get<RequestRecord>(*it);
  }
  for (auto it = inflight_.rbegin(); it != inflight_.rend(); ++it) {
    if (match(*it)) return std::get<RequestRecord>(*it);
  }
  return std::nullopt;
}

Status LogWriter::Flush(int64_t timeout_ms) {
  std::unique_lock lock(mu_);
  const uint64_t target = accepted_;
  ++flush_waiters_;
  wake_.notify_one();
  // Entries leave the buffer in order, so those before `target` are gone
  // once fewer than (accepted_ - target) remain.
  bool done = drained_.wait_for(lock, milliseconds(timeout_ms),
                                [&] { return accepted_ - HeldLocked() >= target || abandon_; });
  --flush_waiters_;
  if (done && accepted_ - HeldLocked() >= target) return Status::Ok();
  return DeadlineExceeded("request log (" + options_.backend +
                          "): " + std::to_string(HeldLocked()) + " records still buffered after " +
                          std::to_string(timeout_ms) + " ms");
}

void LogWriter::Close() {
  std::lock_guard close_lock(close_mu_);
  std::unique_lock lock(mu_);
  if (closed_) return;
  closing_ = true;
  wake_.notify_one();
  drained_.wait_for(lock, milliseconds(options_.close_timeout_ms),
                    [&] { return HeldLocked() == 0; });
  abandon_ = true;
  wake_.notify_one();
  lock.unlock();
  if (thread_.joinable()) thread_.join();
  lock.lock();
  const size_t left = HeldLocked();
  CountDropped(left);
  buffer_.clear();
  inflight_.clear();
  if (buffered_metric_ != nullptr) buffered_metric_->Set(0);
  closed_ = true;
  drained_.notify_all();
  lock.unlock();
  if (left > 0) {
    spdlog::warn("request log ({}): closed with {} records unwritten", options_.backend, left);
  }
}

LogWriter::Stats LogWriter::stats() const {
  Stats s;
  std::lock_guard lock(mu_);
  s.appended = appended_;
  s.written = written_.value();
  s.dropped = dropped_.value();
  s.flush_errors = flush_errors_.value();
  s.buffered = HeldLocked();
  return s;
}

bool LogWriter::WriteDueLocked() const {
  if (abandon_ || closing_) return true;
  return !buffer_.empty() && (flush_waiters_ > 0 || buffer_.size() >= options_.flush_batch);
}

void LogWriter::RequeueInflight() {
  buffer_.insert(buffer_.begin(), std::make_move_iterator(inflight_.begin()),
                 std::make_move_iterator(inflight_.end()));
  inflight_.clear();
  size_t over =
      buffer_.size() > options_.buffer_capacity ? buffer_.size() - options_.buffer_capacity : 0;
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(over));
  CountDropped(over);
}

void LogWriter::WarnAboutDrops(bool force) {
  const uint64_t dropped = dropped_.value();
  if (dropped == warned_drops_) return;
  const auto now = WriterClock::now();
  if (!force && now - last_drop_warning_ < kWarningInterval) return;
  spdlog::warn("request log ({}): dropped {} records ({} in total); the database is slow or down",
               options_.backend, dropped - warned_drops_, dropped);
  warned_drops_ = dropped;
  last_drop_warning_ = now;
}

// The writer thread's retry bookkeeping.
struct LogWriter::RetryState {
  milliseconds backoff;
  int statement_failures = 0;  // consecutive, of the batch in flight
  uint64_t failures = 0;       // since the last success
  WriterClock::time_point last_warning{};
};

// Most requests finish within one flush interval, so a batch usually holds
// both rows of a request; the admission row is then not worth writing (the
// final row replaces it anyway). Moves such admissions to the back of
// inflight_ (order otherwise kept) and returns how many entries to write.
size_t LogWriter::WithoutSupersededAdmissions() {
  auto final_row = [](const LogEntry& e) {
    const auto* r = std::get_if<RequestRecord>(&e);
    return r != nullptr && r->completed_at != WallTime{} ? r : nullptr;
  };
  std::unordered_set<std::string> finished;
  for (const LogEntry& e : inflight_) {
    if (const RequestRecord* r = final_row(e)) finished.insert(r->id);
  }
  if (finished.empty()) return inflight_.size();
  auto end = std::stable_partition(inflight_.begin(), inflight_.end(), [&](const LogEntry& e) {
    const auto* r = std::get_if<RequestRecord>(&e);
    return r == nullptr || final_row(e) != nullptr || !finished.contains(r->id);
  });
  return static_cast<size_t>(end - inflight_.begin());
}

Status LogWriter::WriteInflight(bool* wrote) {
  Status s = Status::Ok();
  if (!sink_open_) {
    s = sink_->Open();
    sink_open_ = s.ok();
  }
  if (s.ok()) {
    *wrote = true;
    s = sink_->Write(std::span<const LogEntry>(inflight_.data(), inflight_writable_));
  }
  if (!s.ok()) {
    sink_->Close();  // a fresh connection for the next attempt
    sink_open_ = false;
  }
  return s;
}

std::string LogWriter::OnWritten(RetryState& retry) {
  const size_t n = inflight_.size();
  written_.Inc(n);
  if (written_metric_ != nullptr) written_metric_->Inc(n);
  inflight_.clear();
  std::string note;
  if (retry.failures > 0) {
    note = fmt::format("request log ({}): writing again after {} failed attempts", options_.backend,
                       retry.failures);
  }
  retry = RetryState{milliseconds(options_.reconnect_backoff_initial_ms)};
  return note;
}

std::string LogWriter::OnFailed(const Status& s, bool wrote, RetryState& retry) {
  flush_errors_.Inc();
  if (flush_errors_metric_ != nullptr) flush_errors_metric_->Inc();
  ++retry.failures;
  const bool batch_at_fault = wrote && s.code() != ErrorCode::kUnavailable;
  if (batch_at_fault && ++retry.statement_failures >= kMaxStatementFailures) {
    const size_t n = inflight_.size();
    CountDropped(n);
    inflight_.clear();
    retry.statement_failures = 0;
    return fmt::format("request log ({}): dropped a batch of {} records that failed {} times: {}",
                       options_.backend, n, kMaxStatementFailures, s.message());
  }
  RequeueInflight();
  const auto now = WriterClock::now();
  if (retry.failures > 1 && now - retry.last_warning < kWarningInterval) return "";
  retry.last_warning = now;
  return fmt::format("request log ({}): write failed ({} attempts so far), retrying in {} ms: {}",
                     options_.backend, retry.failures, retry.backoff.count(), s.message());
}

void LogWriter::Run() {
  // Background work: below the I/O threads, so that on a busy core a flush
  // never preempts a request being handled (Linux: per-thread nice value).
  // Failing to lower it is harmless.
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kWriterNice);
  const milliseconds interval(options_.flush_interval_ms);
  RetryState retry{milliseconds(options_.reconnect_backoff_initial_ms)};
  auto next_write = WriterClock::now() + interval;

  std::unique_lock lock(mu_);
  while (true) {
    wake_.wait_until(lock, next_write, [&] { return WriteDueLocked(); });
    if (abandon_ || (closing_ && buffer_.empty())) break;
    if (buffer_.empty()) {
      next_write = WriterClock::now() + interval;
      continue;
    }
    const size_t n = std::min(options_.flush_batch, buffer_.size());
    const auto first = buffer_.begin();
    const auto last = first + static_cast<std::ptrdiff_t>(n);
    inflight_.assign(std::make_move_iterator(first), std::make_move_iterator(last));
    buffer_.erase(first, last);
    inflight_writable_ = WithoutSupersededAdmissions();  // under mu_: FindRequest reads inflight_
    lock.unlock();

    bool wrote = false;                      // only a failed Write() can be the batch's fault
    const Status s = WriteInflight(&wrote);  // no lock held: appenders go on

    lock.lock();
    const std::string note = s.ok() ? OnWritten(retry) : OnFailed(s, wrote, retry);
    if (buffered_metric_ != nullptr) buffered_metric_->Set(static_cast<double>(HeldLocked()));
    drained_.notify_all();
    lock.unlock();
    if (!note.empty()) spdlog::log(s.ok() ? spdlog::level::info : spdlog::level::warn, "{}", note);
    WarnAboutDrops(/*force=*/false);
    lock.lock();
    if (s.ok()) {
      next_write = WriterClock::now() + interval;
    } else {
      wake_.wait_for(lock, retry.backoff, [&] { return abandon_; });
      retry.backoff = std::min(retry.backoff * 2, milliseconds(options_.reconnect_backoff_max_ms));
      next_write = WriterClock::now();
    }
  }
  lock.unlock();
  WarnAboutDrops(/*force=*/true);
  if (sink_open_) sink_->Close();
  sink_open_ = false;
}

}  // namespace sluice::store
