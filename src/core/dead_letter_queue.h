// DeadLetterQueue: requests Sluice gave up on after every retry failed,
// kept for operators (GET /internal/dead-letters) and counted in metrics.
//
// Bounded: holds the newest `capacity` entries; adding to a full queue drops
// the oldest (counted in dropped()). Inputs longer than max_input_bytes are
// cut on a character boundary (input_truncated says so). Entries are for
// operators: last_error is the internal detail (the backend's name and its
// own error text), made valid UTF-8 and cut to kMaxErrorBytes. Thread-safe;
// Add() takes a short lock and never blocks on I/O; Options::on_add sees
// each entry (a worker copies them to Redis, where gateways read them).
//
// DeadLetterSource: what GET /internal/dead-letters reads — this queue, or
// the dead lists in Redis (redis/dead_letters.h) on a gateway.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "core/request.h"

namespace sluice {

struct DeadLetter {
  std::string request_id;
  std::string model;
  std::string key_id;
  std::string tier;
  std::string input;  // possibly cut, see input_truncated
  bool input_truncated = false;
  int attempts = 0;          // batches the request was part of
  std::string last_error;    // the final batch failure, as the backend reported it
  std::string last_backend;  // the slot that failed last, e.g. "http:m/0"
  std::chrono::system_clock::time_point at;
};

// A page of the newest entries and the counters beside them.
struct DeadLetterPage {
  std::vector<DeadLetter> entries;  // newest first
  uint64_t size = 0;                // entries held now
  uint64_t total = 0;               // entries ever added
  uint64_t dropped = 0;             // entries pushed out by newer ones
};

class DeadLetterSource {
 public:
  using PageDone = std::function<void(Result<DeadLetterPage>)>;
  virtual ~DeadLetterSource() = default;
  // The newest `limit` entries; `done` runs exactly once, on any thread
  // (inline when the source is local). Never blocks.
  virtual void ReadNewest(size_t limit, PageDone done) const = 0;
};

class DeadLetterQueue final : public DeadLetterSource {
 public:
  static constexpr size_t kMaxErrorBytes = 2'048;  // of last_error and last_backend
  struct Options {
    size_t capacity = 1'000;         // entries kept; >= 1
    size_t max_input_bytes = 4'096;  // input bytes kept per entry
    // Runs after each Add(), outside the lock, on the adding thread; must
    // not block. Optional.
    std::function<void(const DeadLetter&)> on_add;
  };
  static Result<std::unique_ptr<DeadLetterQueue>> Create(const Options& options);

  void Add(const InferenceRequest& req, int attempts, const Status& last_error,
           const std::string& last_backend);

  // The newest `limit` entries, newest first.
  std::vector<DeadLetter> Newest(size_t limit) const;
  void ReadNewest(size_t limit, PageDone done) const override;
  size_t size() const;
  uint64_t total() const;    // entries ever added
  uint64_t dropped() const;  // entries pushed out by newer ones

 private:
  explicit DeadLetterQueue(const Options& options) : options_(options) {}

  const Options options_;
  mutable std::mutex mu_;
  std::deque<DeadLetter> entries_;  // GUARDED_BY(mu_); newest at the back
  uint64_t total_ = 0;              // GUARDED_BY(mu_)
  uint64_t dropped_ = 0;            // GUARDED_BY(mu_)
};

}  // namespace sluice
