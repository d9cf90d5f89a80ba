// LogWriter: a bounded buffer of log entries and the background thread that
// writes them to a LogSink in batches.
//
// Callers (front-door I/O threads, dispatchers) Append() entries: the call
// takes one short mutex and never waits on I/O. The writer thread takes up to
// `flush_batch` entries at a time, as soon as that many wait or every
// `flush_interval_ms`, and hands them to the sink in one transaction.
//
// When the database is slow or down, serving goes on:
//   - the buffer holds at most `buffer_capacity` entries; when full, the
//     oldest entry is dropped to make room (counted in stats().dropped, and
//     a warning at most every 10 s). While one batch is being written it
//     briefly holds up to `flush_batch` entries more.
//   - a batch that cannot be written because the database is unreachable
//     (kUnavailable: a lost connection, a timeout, a lock) goes back to the
//     front of the buffer; the writer drops its connection and opens it
//     again with exponential backoff (reconnect_backoff_initial_ms doubling
//     to reconnect_backoff_max_ms).
//   - a batch whose Write() fails with a statement error (the database
//     refused something in it) is written again in halves, and halves of
//     the halves, until the single entries the database refuses are found:
//     only those are set aside (logged once with their id, counted in
//     stats().rejected and stats().dropped), every other entry is written.
//     One bad record never costs its batch. Sinks write one transaction per
//     Write() and writing an entry twice is harmless, so a connection lost
//     halfway through simply retries the whole batch.
//
// Entries that wait in the buffer (or are being written) are found by
// FindRequest(), so a record is never invisible between memory and database.
//
// Retention: with retention_ms > 0 the writer thread also deletes rows older
// than wall_now() - retention_ms (LogSink::Prune()), soon after start and
// then every prune_interval_ms, in chunks of at most 10,000 rows between
// which pending writes go first. A failed prune is logged and tried again at
// the next interval; it never holds up writes.
//
// Thread-safety: all public methods are thread-safe. Ownership: the writer
// owns the sink and its thread; Close() (or the destructor) writes what is
// buffered, waiting at most close_timeout_ms (plus at most one statement in
// progress, which the sink bounds), then stops the thread and counts what is
// left as dropped.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "metrics/instruments.h"
#include "metrics/registry.h"
#include "store/log_sink.h"

namespace sluice::store {

class LogWriter {
 public:
  struct Options {
    // Entries waiting for the database at most; the oldest is dropped when
    // full. >= 1.
    size_t buffer_capacity = 100'000;
    // Entries per transaction; a write starts as soon as this many wait.
    // 1..buffer_capacity.
    size_t flush_batch = 1'000;
    // Longest time an entry waits before a (smaller) write. >= 1.
    int64_t flush_interval_ms = 200;
    // First wait after a failed connect or write; doubles up to the max. >= 1.
    int64_t reconnect_backoff_initial_ms = 100;
    // Longest wait between attempts. >= reconnect_backoff_initial_ms.
    int64_t reconnect_backoff_max_ms = 5'000;
    // How long Close() waits for the buffer to be written. >= 0.
    int64_t close_timeout_ms = 5'000;
    // Rows older than this are deleted in the background (see above); 0 =
    // keep forever. >= 0.
    int64_t retention_ms = 0;
    // Time between two prunes when retention_ms > 0. >= 1.
    int64_t prune_interval_ms = 60'000;
    // The wall clock the retention cutoff is taken from; null =
    // std::chrono::system_clock::now. Tests inject a fixed time.
    std::function<WallTime()> wall_now;
    // Label value of backend="..." on the metrics, and the log prefix.
    std::string backend = "log";
    // Optional; not owned; must outlive the writer. When set, registers
    // sluice_request_log_{written,dropped,rejected,flush_errors,pruned}_total and
    // sluice_request_log_buffered with label backend.
    metrics::Registry* metrics = nullptr;
  };

  // Counts since creation. appended == written + dropped + buffered.
  struct Stats {
    uint64_t appended = 0;      // Append() calls
    uint64_t written = 0;       // entries committed to the database
    uint64_t dropped = 0;       // entries given up (buffer full, refused, closed)
    uint64_t rejected = 0;      // of those dropped: refused by the database, set aside
    uint64_t flush_errors = 0;  // failed connects and Write() calls
    uint64_t buffered = 0;      // entries waiting now (including a batch in flight)
    uint64_t pruned = 0;        // database rows deleted for retention
  };

  // Validates `options` and starts the writer thread. `sink_open` says
  // whether `sink` was opened already (Open() returned OK); otherwise the
  // thread opens it. Errors: kInvalidArgument for bad options.
  static Result<std::unique_ptr<LogWriter>> Create(const Options& options,
                                                   std::unique_ptr<LogSink> sink, bool sink_open);
  static Status Validate(const Options& options);
  ~LogWriter();

  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // Queues `entry` for writing. Never blocks on I/O; after Close() the entry
  // is counted as dropped.
  void Append(LogEntry entry);

  // The newest buffered state of request `id`, if any entry for it is still
  // waiting to be written. O(buffered) under the buffer mutex.
  std::optional<RequestRecord> FindRequest(const std::string& id) const;

  // Waits until every entry appended before the call has left the buffer
  // (written, or dropped: see stats()) and asks the writer to write now
  // rather than at the next interval. Errors: kDeadlineExceeded after
  // `timeout_ms` (the database is slow or down).
  Status Flush(int64_t timeout_ms);

  // Writes what is buffered (bounded by close_timeout_ms), then stops the
  // thread. Idempotent.
  void Close();

  Stats stats() const;
  // Entries the database refused and the writer set aside (stats().rejected).
  uint64_t rejected_rows() const { return rejected_.value(); }

 private:
  struct RetryState;
  struct WriteOutcome;

  LogWriter(const Options& options, std::unique_ptr<LogSink> sink, bool sink_open);
  void Run();
  // Opens the sink if needed and writes inflight_, setting aside the entries
  // the database refuses. Writer thread, mu_ NOT held.
  WriteOutcome WriteInflight();
  // Writes inflight_[from, to), whose Write() just failed with a statement
  // error: in halves, down to single entries, which are set aside in `out`.
  // Returns OK, or the first kUnavailable. Writer thread, mu_ NOT held.
  Status WriteInPieces(size_t from, size_t to, WriteOutcome& out);
  size_t WithoutSupersededAdmissions();  // REQUIRES: mu_ held
  // Account for the outcome of writing inflight_; return a line to log (after
  // mu_ is released), or "". REQUIRES: mu_ held.
  std::string OnWritten(const WriteOutcome& out, RetryState& retry);
  std::string OnFailed(const WriteOutcome& out, RetryState& retry);
  // One line per entry set aside (at most 10, then a count), for the log.
  std::vector<std::string> RejectionLines(const WriteOutcome& out) const;
  // Moves the in-flight batch back to the front of the buffer and drops the
  // oldest beyond capacity. REQUIRES: mu_ held.
  void RequeueInflight();
  void ClearInflight();  // REQUIRES: mu_ held
  // Drops `n` entries; REQUIRES: mu_ held.
  void CountDropped(uint64_t n);
  // REQUIRES: mu_ held.
  size_t HeldLocked() const { return buffer_.size() + inflight_.size(); }
  bool WriteDueLocked() const;
  void WarnAboutDrops(bool force);
  // Deletes rows past the retention period, a chunk at a time, until none
  // is left or a write is due; returns true when rows may be left. Writer
  // thread, mu_ NOT held.
  bool PruneExpired();

  const Options options_;
  std::unique_ptr<LogSink> sink_;  // used by the writer thread only
  bool sink_open_;                 // writer thread only

  // Instruments: our own, plus the registry's when configured.
  metrics::Counter written_, dropped_, rejected_, flush_errors_, pruned_;
  metrics::Counter* written_metric_ = nullptr;
  metrics::Counter* rejected_metric_ = nullptr;
  metrics::Counter* pruned_metric_ = nullptr;
  metrics::Counter* dropped_metric_ = nullptr;
  metrics::Counter* flush_errors_metric_ = nullptr;
  metrics::Gauge* buffered_metric_ = nullptr;

  std::mutex close_mu_;  // serialises Close()
  mutable std::mutex mu_;
  std::condition_variable wake_;     // the writer waits here
  std::condition_variable drained_;  // Flush()/Close() wait here
  std::deque<LogEntry> buffer_;      // GUARDED_BY(mu_), oldest first
  // The batch being written: changed only by the writer thread with mu_
  // held, read by the writer without mu_ while it writes (no one else
  // changes it then) and by FindRequest() with mu_ held.
  std::vector<LogEntry> inflight_;
  size_t inflight_writable_ = 0;  // leading entries of inflight_ worth writing
  // Empty, or inflight_order_[i] = where inflight_[i] arrived in its batch
  // (WithoutSupersededAdmissions() reorders it); same guard as inflight_.
  std::vector<size_t> inflight_order_;
  uint64_t appended_ = 0;      // GUARDED_BY(mu_)
  uint64_t accepted_ = 0;      // GUARDED_BY(mu_): entries ever put in buffer_
  int flush_waiters_ = 0;      // GUARDED_BY(mu_)
  bool closing_ = false;       // GUARDED_BY(mu_): no more entries accepted
  bool abandon_ = false;       // GUARDED_BY(mu_): writer must exit now
  bool closed_ = false;        // GUARDED_BY(mu_)
  uint64_t warned_drops_ = 0;  // writer thread only
  std::chrono::steady_clock::time_point last_drop_warning_{};  // writer thread only
  std::thread thread_;
};

}  // namespace sluice::store
