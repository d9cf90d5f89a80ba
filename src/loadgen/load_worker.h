// LoadWorker: one load-generating thread — an io_context, its share of the
// connections, its own arrival schedule and request factory, and its own
// RunStats. A run uses one or two of them (`--threads`).
//
// Open loop: a timer fires at each scheduled arrival and the request goes out
// on a free connection at once; if none is free it waits in a FIFO for the
// next one (its latency still counts from the scheduled time). Responses
// never hold back the schedule. If the thread itself is busy, due arrivals
// are handled late and in bursts (at most kMaxBurst per turn, so responses
// keep flowing); that lateness is measured (GeneratorStats::schedule_lag_ns)
// so a report can tell the generator's limits from the server's.
//
// Lifecycle: Create() → OpenConnections() (starts the thread; blocks until
// every connection attempt finished or the connect timeout) → Begin(t0)
// → Wait() (blocks until every request was answered or the drain timeout
// passed; what is left then counts as timeouts) → stats(). Closed
// connections are reopened with backoff during the run.
//
// Thread-safety: the methods above are for one controlling thread;
// TakeProgress() may be called from any thread at any time. The destructor
// stops the run if it is still going and joins the thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/clock.h"
#include "common/status.h"
#include "loadgen/load_connection.h"
#include "loadgen/request_factory.h"
#include "loadgen/run_stats.h"
#include "loadgen/schedule.h"
#include "loadgen/workload.h"

namespace sluice::loadgen {

struct WorkerOptions {
  boost::asio::ip::tcp::endpoint endpoint;  // where to connect
  size_t connections = 64;                  // this worker's connections; >= 1
  ScheduleOptions schedule;                 // this worker's share of the arrivals
  const WorkloadSpec* workload = nullptr;   // borrowed; must outlive the worker
  RequestFactory::Options factory;          // Host header, path, seed, stream id
  int64_t late_threshold_us = 1000;         // schedule lag counted as "late"
  int64_t connect_timeout_us = 3'000'000;   // OpenConnections() bound
  int64_t drain_timeout_us = 5'000'000;     // after the schedule, then timeouts
};

// Live counters since the start (warm-up included), for the progress line.
struct WorkerProgress {
  uint64_t scheduled = 0;                // arrivals handled
  uint64_t answered = 0;                 // responses of any status
  uint64_t ok = 0;                       // 200 responses
  uint64_t failed = 0;                   // non-200 responses, transport errors, timeouts
  uint64_t waiting = 0;                  // requests waiting for a connection right now
  uint64_t late = 0;                     // arrivals handled later than the late threshold
  LatencyHistogram interval_latency_ns;  // 200s since the previous TakeProgress()
  void Merge(const WorkerProgress& o);
};

class LoadWorker final : private LoadConnection::Listener {
 public:
  static constexpr int kMaxBurst = 128;  // arrivals handled per timer turn

  // Validates the options and builds the schedule.
  static Result<std::unique_ptr<LoadWorker>> Create(const WorkerOptions& options);
  ~LoadWorker() override;

  // Starts the thread and connects. Returns how many connections are open;
  // Unavailable (with the first connect error) when none could be opened.
  Result<size_t> OpenConnections();
  // Starts the schedule at `t0` (steady clock; the warm-up begins there).
  void Begin(TimePoint t0);
  // Blocks until the run is over.
  void Wait();
  // Thread-safe: true once the run is over (Wait() would not block).
  bool done() const { return done_.load(std::memory_order_acquire); }
  // Thread-safe. Resets the interval histogram.
  WorkerProgress TakeProgress();
  // REQUIRES: Wait() returned.
  const RunStats& stats() const { return stats_; }
  int64_t total_ns() const { return schedule_.total_ns(); }

 private:
  struct Pending {
    int64_t scheduled_ns = 0;  // offset from t0
    TimePoint handled_at;      // when the loop handled the arrival
    PlannedRequest plan;
    int step = -1;         // -1: warm-up
    bool waited = false;   // queued for a connection
    bool retried = false;  // resent once after a stale keep-alive connection
  };

  LoadWorker(const WorkerOptions& options, ArrivalSchedule schedule);

  void ArmArrivalTimers();
  void ArmTimer(int i, int64_t offset_ns);
  void OnArrivals();
  void HandleArrival(const Arrival& a, TimePoint now);
  void SendOn(LoadConnection* c, Pending p, TimePoint now);
  void NextFor(LoadConnection* c);
  void Reopen(LoadConnection* c, bool after_failure);
  void CheckDone();
  void Finish();
  void RecordFailure(const Pending& p, bool timeout);
  void FinishOpening();

  void OnConnected(LoadConnection* c) override;
  void OnConnectFailed(LoadConnection* c, const boost::system::error_code& ec) override;
  void OnResponse(LoadConnection* c, const LoadConnection::Response& r) override;
  void OnRequestFailed(LoadConnection* c, const boost::system::error_code& ec,
                       bool nothing_received) override;

  // Declared first: destroyed last, after the connections and timers.
  boost::asio::io_context ioc_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  WorkerOptions options_;
  ArrivalSchedule schedule_;
  RequestFactory factory_;
  RunStats stats_;

  std::vector<std::unique_ptr<LoadConnection>> connections_;
  std::vector<std::unique_ptr<boost::asio::steady_timer>> retry_timers_;  // per connection
  std::vector<int> connect_failures_in_row_;                              // per connection
  std::vector<std::optional<Pending>> in_flight_;                         // per connection
  std::deque<LoadConnection*> idle_;
  std::deque<Pending> waiting_;
  size_t busy_ = 0;

  boost::asio::steady_timer arrival_timers_[2];
  std::optional<int64_t> armed_ns_[2];  // arrival offset each timer waits for
  boost::asio::steady_timer drain_timer_;
  boost::asio::steady_timer connect_timer_;
  TimePoint t0_;
  double begin_cpu_s_ = 0;             // this thread's CPU time at Begin()
  std::optional<Arrival> next_;        // the next arrival to handle
  std::optional<Arrival> after_next_;  // the one after it
  bool begun_ = false;
  bool schedule_done_ = false;
  bool finished_ = false;

  // Opening phase (worker thread), reported through a promise-like handoff.
  bool opening_ = true;
  size_t open_attempts_done_ = 0;
  size_t open_ = 0;
  boost::system::error_code first_connect_error_;
  std::mutex open_mu_;
  std::condition_variable open_cv_;
  bool open_done_ = false;  // GUARDED_BY(open_mu_)
  size_t open_result_ = 0;  // GUARDED_BY(open_mu_)
  std::string open_error_;  // GUARDED_BY(open_mu_)

  std::mutex progress_mu_;
  WorkerProgress progress_;  // GUARDED_BY(progress_mu_)

  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace sluice::loadgen
