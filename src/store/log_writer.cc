#include "store/log_writer.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <numeric>
#include <unordered_set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/thread_name.h"

namespace sluice::store {

namespace {
constexpr int kWriterNice = 10;
}  // namespace
namespace {

using std::chrono::milliseconds;
using WriterClock = std::chrono::steady_clock;

constexpr auto kWarningInterval = std::chrono::seconds(10);
// Entries set aside that are logged one by one per batch; the rest as a count.
constexpr size_t kRejectionsLogged = 10;

// How an entry is named in the log when the database refuses it.
std::string Describe(const LogEntry& e) {
  if (const auto* r = std::get_if<RequestRow>(&e)) {
    return "request " + std::string(r->id.view()) +
           (r->finished() ? " (final state)" : " (admission)");
  }
  const auto& b = std::get<BatchRecord>(e);
  return "batch " + std::to_string(b.batch_id) + " of " + b.worker_id;
}
// Rows one prune statement deletes at most: short enough that a write due
// meanwhile waits little.
constexpr uint64_t kPruneChunkRows = 10'000;

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
  if (o.retention_ms < 0) return InvalidArgument("retention_ms must be >= 0");
  if (o.prune_interval_ms < 1) return InvalidArgument("prune_interval_ms must be >= 1");
  return Status::Ok();
}

Result<std::unique_ptr<LogWriter>> LogWriter::Create(const Options& options,
                                                     std::unique_ptr<LogSink> sink,
                                                     bool sink_open) {
  if (Status s = Validate(options); !s.ok()) return s;
  if (sink == nullptr) return InvalidArgument("LogWriter needs a sink");
  std::unique_ptr<LogWriter> w(new LogWriter(options, std::move(sink), sink_open));
  w->thread_ = std::thread([raw = w.get()] {
    SetCurrentThreadName("log-writer");
    raw->Run();
  });
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
    rejected_metric_ = options_.metrics->GetCounter(
        "sluice_request_log_rejected_total",
        "Request log records the database refused; set aside, the rest of their batch written.",
        labels);
    pruned_metric_ = options_.metrics->GetCounter(
        "sluice_request_log_pruned_total", "Request log rows deleted after the retention period.",
        labels);
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
    const auto* r = std::get_if<RequestRow>(&e);
    return r != nullptr && r->id.view() == id;
  };
  std::lock_guard lock(mu_);
  // Newest first: the buffer is newer than the batch in flight.
  for (auto it = buffer_.rbegin(); it != buffer_.rend(); ++it) {
    if (match(*it)) return std::get<RequestRow>(*it).ToRecord();
  }
  // Past inflight_writable_ only admissions whose final row is in the batch.
  const auto writable = inflight_.begin() + static_cast<std::ptrdiff_t>(inflight_writable_);
  for (auto it = std::make_reverse_iterator(writable); it != inflight_.rend(); ++it) {
    if (match(*it)) return std::get<RequestRow>(*it).ToRecord();
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
  ClearInflight();
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
  s.rejected = rejected_.value();
  s.flush_errors = flush_errors_.value();
  s.buffered = HeldLocked();
  s.pruned = pruned_.value();
  return s;
}

bool LogWriter::WriteDueLocked() const {
  if (abandon_ || closing_) return true;
  return !buffer_.empty() && (flush_waiters_ > 0 || buffer_.size() >= options_.flush_batch);
}

void LogWriter::ClearInflight() {
  inflight_.clear();
  inflight_order_.clear();
  inflight_writable_ = 0;
}

void LogWriter::RequeueInflight() {
  if (!inflight_order_.empty()) {  // back in arrival order, so that the oldest go first
    std::vector<LogEntry> arrived(inflight_.size());
    for (size_t i = 0; i < inflight_.size(); ++i)
      arrived[inflight_order_[i]] = std::move(inflight_[i]);
    inflight_ = std::move(arrived);
  }
  buffer_.insert(buffer_.begin(), std::make_move_iterator(inflight_.begin()),
                 std::make_move_iterator(inflight_.end()));
  ClearInflight();
  size_t over =
      buffer_.size() > options_.buffer_capacity ? buffer_.size() - options_.buffer_capacity : 0;
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(over));
  CountDropped(over);
}

void LogWriter::WarnAboutDrops(bool force) {
  // Refused records were logged one by one; these are the other drops.
  // Only this thread sets aside records, so dropped_ >= rejected_ here.
  const uint64_t dropped = dropped_.value() - rejected_.value();
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
  uint64_t failures = 0;  // since the last success
  WriterClock::time_point last_warning{};
};

// What writing inflight_ came to.
struct LogWriter::WriteOutcome {
  Status status;              // OK: every entry written or set aside
  uint64_t failed_calls = 0;  // failed Open() and Write() calls
  // Entries the database refused (index into inflight_, its error).
  std::vector<std::pair<size_t, Status>> rejected;
};

// Most requests finish within one flush interval, so a batch usually holds
// both rows of a request; the admission row is then not worth writing (the
// final row replaces it anyway). Moves such admissions to the back of
// inflight_ (order otherwise kept), remembers the arrival order in
// inflight_order_ and returns how many entries to write.
size_t LogWriter::WithoutSupersededAdmissions() {
  auto final_row = [](const LogEntry& e) {
    const auto* r = std::get_if<RequestRow>(&e);
    return r != nullptr && r->finished() ? r : nullptr;
  };
  inflight_order_.clear();
  std::unordered_set<std::string_view> finished;  // views into inflight_
  for (const LogEntry& e : inflight_) {
    if (const RequestRow* r = final_row(e)) finished.insert(r->id.view());
  }
  if (finished.empty()) return inflight_.size();
  inflight_order_.resize(inflight_.size());
  std::iota(inflight_order_.begin(), inflight_order_.end(), size_t{0});
  auto end = std::stable_partition(inflight_order_.begin(), inflight_order_.end(), [&](size_t i) {
    const auto* r = std::get_if<RequestRow>(&inflight_[i]);
    return r == nullptr || r->finished() || !finished.contains(r->id.view());
  });
  std::vector<LogEntry> moved;
  moved.reserve(inflight_.size());
  for (size_t i : inflight_order_) moved.push_back(std::move(inflight_[i]));
  inflight_ = std::move(moved);
  return static_cast<size_t>(end - inflight_order_.begin());
}

LogWriter::WriteOutcome LogWriter::WriteInflight() {
  WriteOutcome out;
  if (!sink_open_) {
    out.status = sink_->Open();
    sink_open_ = out.status.ok();
    if (!sink_open_) ++out.failed_calls;
  }
  if (out.status.ok()) out.status = WriteInPieces(0, inflight_writable_, out);
  if (!out.status.ok()) {
    out.rejected.clear();  // the whole batch is tried again
    sink_->Close();        // on a fresh connection
    sink_open_ = false;
  }
  return out;
}

Status LogWriter::WriteInPieces(size_t from, size_t to, WriteOutcome& out) {
  if (from == to) return Status::Ok();
  Status s = sink_->Write(std::span<const LogEntry>(inflight_.data() + from, to - from));
  if (s.ok()) return s;
  ++out.failed_calls;
  if (s.code() == ErrorCode::kUnavailable) return s;
  // A statement error: the database refused something in this piece.
  if (to - from == 1) {
    out.rejected.emplace_back(from, std::move(s));
    return Status::Ok();
  }
  const size_t mid = from + (to - from) / 2;
  if (Status left = WriteInPieces(from, mid, out); !left.ok()) return left;
  return WriteInPieces(mid, to, out);
}

std::vector<std::string> LogWriter::RejectionLines(const WriteOutcome& out) const {
  std::vector<std::string> lines;
  for (size_t i = 0; i < out.rejected.size() && i < kRejectionsLogged; ++i) {
    const auto& [index, error] = out.rejected[i];
    std::string why = error.message();  // databases add lines of context: keep one log line
    std::replace(why.begin(), why.end(), '\n', ' ');
    lines.push_back(fmt::format("request log ({}): the database refused {}; set aside: {}",
                                options_.backend, Describe(inflight_[index]), why));
  }
  if (out.rejected.size() > kRejectionsLogged) {
    lines.push_back(fmt::format("request log ({}): ... and {} more records of that batch refused",
                                options_.backend, out.rejected.size() - kRejectionsLogged));
  }
  return lines;
}

std::string LogWriter::OnWritten(const WriteOutcome& out, RetryState& retry) {
  if (out.failed_calls > 0) {
    flush_errors_.Inc(out.failed_calls);
    if (flush_errors_metric_ != nullptr) flush_errors_metric_->Inc(out.failed_calls);
  }
  const size_t refused = out.rejected.size();
  const size_t n = inflight_.size() - refused;
  written_.Inc(n);
  if (written_metric_ != nullptr) written_metric_->Inc(n);
  if (refused > 0) {
    rejected_.Inc(refused);  // before CountDropped: see WarnAboutDrops()
    if (rejected_metric_ != nullptr) rejected_metric_->Inc(refused);
    CountDropped(refused);
  }
  ClearInflight();
  std::string note;
  if (retry.failures > 0) {
    note = fmt::format("request log ({}): writing again after {} failed attempts", options_.backend,
                       retry.failures);
  }
  retry = RetryState{milliseconds(options_.reconnect_backoff_initial_ms)};
  return note;
}

std::string LogWriter::OnFailed(const WriteOutcome& out, RetryState& retry) {
  const Status& s = out.status;
  flush_errors_.Inc(out.failed_calls);
  if (flush_errors_metric_ != nullptr) flush_errors_metric_->Inc(out.failed_calls);
  ++retry.failures;
  RequeueInflight();
  const auto now = WriterClock::now();
  if (retry.failures > 1 && now - retry.last_warning < kWarningInterval) return "";
  retry.last_warning = now;
  return fmt::format("request log ({}): write failed ({} attempts so far), retrying in {} ms: {}",
                     options_.backend, retry.failures, retry.backoff.count(), s.message());
}

bool LogWriter::PruneExpired() {
  const WallTime now = options_.wall_now ? options_.wall_now() : std::chrono::system_clock::now();
  const WallTime cutoff =
      now - std::chrono::duration_cast<WallTime::duration>(milliseconds(options_.retention_ms));
  while (true) {
    Status s = Status::Ok();
    if (!sink_open_) {
      s = sink_->Open();
      sink_open_ = s.ok();
    }
    Result<uint64_t> deleted = s.ok() ? sink_->Prune(cutoff, kPruneChunkRows) : Result<uint64_t>(s);
    if (!deleted.ok()) {
      if (deleted.status().code() == ErrorCode::kUnavailable) {
        sink_->Close();  // the next write opens a fresh connection
        sink_open_ = false;
      }
      spdlog::warn("request log ({}): deleting rows past the retention period failed: {}",
                   options_.backend, deleted.status().message());
      return false;
    }
    pruned_.Inc(*deleted);
    if (pruned_metric_ != nullptr) pruned_metric_->Inc(*deleted);
    if (*deleted < kPruneChunkRows) return false;
    std::lock_guard lock(mu_);
    if (WriteDueLocked()) return true;  // writes first; the rest right after
  }
}

void LogWriter::Run() {
  // Background work: below the I/O threads, so that on a busy core a flush
  // never preempts a request being handled (Linux: per-thread nice value).
  // Failing to lower it is harmless.
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kWriterNice);
  const milliseconds interval(options_.flush_interval_ms);
  RetryState retry{milliseconds(options_.reconnect_backoff_initial_ms)};
  auto next_write = WriterClock::now() + interval;
  auto next_prune = WriterClock::now();  // first prune right after start

  std::unique_lock lock(mu_);
  while (true) {
    const bool pruning = options_.retention_ms > 0;
    wake_.wait_until(lock, pruning ? std::min(next_write, next_prune) : next_write,
                     [&] { return WriteDueLocked(); });
    if (abandon_ || (closing_ && buffer_.empty())) break;
    if (pruning && WriterClock::now() >= next_prune && !WriteDueLocked()) {
      lock.unlock();
      const bool more = PruneExpired();
      lock.lock();
      next_prune =
          more ? WriterClock::now() : WriterClock::now() + milliseconds(options_.prune_interval_ms);
      continue;  // then write what became due meanwhile
    }
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

    const WriteOutcome out = WriteInflight();  // no lock held: appenders go on
    const Status& s = out.status;

    lock.lock();
    const std::vector<std::string> refused = RejectionLines(out);  // reads inflight_
    const std::string note = s.ok() ? OnWritten(out, retry) : OnFailed(out, retry);
    if (buffered_metric_ != nullptr) buffered_metric_->Set(static_cast<double>(HeldLocked()));
    drained_.notify_all();
    lock.unlock();
    for (const std::string& line : refused) spdlog::warn("{}", line);
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
