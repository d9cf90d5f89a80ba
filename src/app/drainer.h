// Drainer: a process's graceful shutdown, the same in `serve`, `gateway`,
// `worker` and `serve` on Redis. Begin() (the first SIGINT/SIGTERM) runs
// the stages in order: a stage's begin() stops it taking new work; once its
// idle() holds, the next stage begins. When every stage is idle, stop() is
// called. At the deadline (timeout_ms after Begin(), for all stages
// together) the stage being drained is abandon()ed (answer or give up what
// is left) and the later ones begin; they get grace_ms more to become idle
// while the answers are written. stop() follows once written() holds and
// they are idle, or when grace_ms has passed (the later stages still busy
// are abandoned then). A second Begin() calls stop() at once.
//
// Stages run in order because one role may need the next to finish its
// work: `serve` on Redis drains its gateway (whose queued requests its own
// workers still serve) before its workers.
//
// Thread-safety: Begin() and every callback run on `executor`; Begin() may
// be posted from anywhere through it. The executor must outlive the
// Drainer; polls use its clock (a VirtualExecutor in tests).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/clock.h"

namespace sluice {

class Drainer {
 public:
  struct Stage {
    std::string name;               // for the log
    std::function<void()> begin;    // stop taking new work; may be empty
    std::function<bool()> idle;     // nothing of this stage's is left; required
    std::function<void()> abandon;  // at the deadline: answer or drop the rest; may be empty
  };
  struct Options {
    Executor* executor = nullptr;   // required
    std::vector<Stage> stages;      // at least one
    int64_t timeout_ms = 30'000;    // for all stages together (server.drain_timeout_ms)
    int64_t grace_ms = 1'000;       // after an abandon, for the last answers to be written
    std::function<bool()> written;  // the answers are written; empty = at once
    std::function<void()> stop;     // ends the process's run loop; required
    int64_t poll_ms = 5;            // how often idle() is polled
  };

  explicit Drainer(Options options);
  ~Drainer();
  Drainer(const Drainer&) = delete;
  Drainer& operator=(const Drainer&) = delete;

  void Begin();
  bool begun() const { return begun_; }
  bool stopped() const { return stopped_; }
  bool abandoned() const { return abandoned_; }
  // The stage being drained (stages.size() once all are idle).
  size_t stage() const { return current_; }

 private:
  void Poll();
  void Stop();

  Options options_;
  size_t current_ = 0;
  bool begun_ = false, abandoned_ = false, stopped_ = false;
  TimePoint deadline_{};
  Executor::TimerId timer_ = 0;
};

}  // namespace sluice
