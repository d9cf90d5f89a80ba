// DurableRequestLog: the part SqliteRequestLog and PostgresRequestLog share.
//
// It composes three layers, newest first:
//   1. a MemoryRequestLog (the last `memory_capacity` requests of this
//      process, with their live stage), which answers Lookup() for recent
//      requests exactly as the in-memory log does;
//   2. a LogWriter, whose buffer holds records not yet in the database;
//   3. a RecordReader, which finds older records (and those written by other
//      processes) in the database.
//
// OnAdmitted() records the request's admission (stage queued, created_at);
// OnFinished() its final state, which replaces the admission row;
// OnBatchDone() a batch row. Each call updates memory and appends to the
// writer's buffer: a short mutex, no I/O. A finish of a request that was
// never admitted (InferenceRequest::admitted) is ignored, as RequestLog says;
// every other finish is written, however far the memory window has moved.
//
// Lookup() of a record still in memory returns the memory record, whose
// created_at, completed_at and worker_id are empty; records from the buffer
// or the database have them.
//
// Thread-safe. The destructor calls Close().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "core/memory_request_log.h"
#include "core/request_log.h"
#include "metrics/registry.h"
#include "store/log_sink.h"
#include "store/log_writer.h"
#include "store/request_row.h"

namespace sluice::store {

// Knobs common to both durable logs.
struct DurableLogOptions {
  // Requests kept in memory for Lookup() (older ones come from the
  // database). >= 16.
  size_t memory_capacity = 100'000;
  // Records waiting for the database at most; when full, the oldest are
  // dropped (counted). About 160 bytes each (plus a failed request's error
  // text). >= 1.
  size_t buffer_capacity = 100'000;
  // Records per transaction; a write starts as soon as this many wait.
  // 1..buffer_capacity.
  size_t flush_batch = 1'000;
  // Longest time a record waits before a (smaller) write. >= 1.
  int64_t flush_interval_ms = 200;
  // First wait after a failed connect or write; doubles up to the max. >= 1.
  int64_t reconnect_backoff_initial_ms = 100;
  // Longest wait between reconnect attempts. >= reconnect_backoff_initial_ms.
  int64_t reconnect_backoff_max_ms = 5'000;
  // How long Close() (and the destructor) waits to write what is buffered;
  // what is left after it is dropped. >= 0.
  int64_t close_timeout_ms = 5'000;
  // Request and batch rows older than this many hours are deleted by the
  // writer thread, every prune_interval_ms (request rows by completed_at, or
  // created_at while unfinished; batch rows by completed_at). 0 = keep
  // forever. 0..876000 (100 years).
  int64_t retention_hours = 0;
  // Time between two prunes when retention_hours > 0. >= 1.
  int64_t prune_interval_ms = 60'000;
  // The wall clock the retention cutoff is taken from; null =
  // std::chrono::system_clock::now. Tests inject a fixed time.
  std::function<WallTime()> wall_now;
  // Stored as worker_id on the records of batched requests (the outcome does
  // not say which worker ran it); empty = none.
  std::string worker_id;
  // Optional; not owned; must outlive the log. Gets
  // sluice_request_log_{written,dropped,rejected,flush_errors,pruned}_total and
  // sluice_request_log_buffered, labelled backend="sqlite"|"postgres".
  metrics::Registry* metrics = nullptr;
};

class DurableRequestLog : public RequestLog {
 public:
  ~DurableRequestLog() override;
  DurableRequestLog(const DurableRequestLog&) = delete;
  DurableRequestLog& operator=(const DurableRequestLog&) = delete;

  void OnAdmitted(const RequestPtr& req) override;
  void OnFinished(const InferenceRequest& req, const InferenceOutcome& outcome,
                  double latency_ms) override;
  void OnBatchDone(const BatchRecord& batch) override;
  // Memory, then the buffer, then the database (which may block for the
  // backend's lookup bound; see each subclass).
  std::optional<RequestRecord> Lookup(const std::string& id) const override;

  // Writes what is buffered now; see LogWriter::Flush().
  Status Flush(int64_t timeout_ms) { return writer_->Flush(timeout_ms); }
  // Writes what is buffered (bounded by close_timeout_ms) and stops the
  // writer. Later records are counted as dropped. Idempotent.
  void Close() { writer_->Close(); }
  LogWriter::Stats stats() const { return writer_->stats(); }
  // Records the database refused, set aside while the rest of their batch
  // was written (see LogWriter).
  uint64_t rejected_rows() const { return writer_->rejected_rows(); }

 protected:
  struct Parts {
    std::unique_ptr<MemoryRequestLog> memory;
    std::unique_ptr<LogWriter> writer;
    std::unique_ptr<RecordReader> reader;
  };
  DurableRequestLog(std::string worker_id, Parts parts);

  // Checks the common options. Errors: kInvalidArgument naming the field.
  static Status Validate(const DurableLogOptions& options);
  // Builds the memory log and the writer (which starts writing to `sink`).
  // `sink_open` as in LogWriter::Create().
  static Result<Parts> MakeParts(const DurableLogOptions& options, const std::string& backend,
                                 std::unique_ptr<LogSink> sink, bool sink_open,
                                 std::unique_ptr<RecordReader> reader);

 private:
  const std::string worker_id_;
  LabelInterner labels_;  // the key/tier/model/worker text of rows
  std::unique_ptr<MemoryRequestLog> memory_;
  std::unique_ptr<LogWriter> writer_;
  std::unique_ptr<RecordReader> reader_;
};

}  // namespace sluice::store
