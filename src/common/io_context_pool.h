// IoContextPool: the process's event loops — one io_context per thread.
//
// Context 0 (main()) runs on the thread that calls Run(); it holds what the
// process has one of: listeners, timers, the dispatchers' and control
// strands. Contexts 1..threads-1 each run on a thread of their own, named
// "sluice-io-N", and take client connections (NextForConnection(), round
// robin over all contexts, main() included). A connection's reads, its
// request handler and the writing of its reply then run on one thread:
// nothing wakes a second thread per request, as it would with several
// threads sharing one io_context (asio wakes an idle thread for each handler
// queued while another waits in epoll). Work that other threads finish (a
// dispatcher's batch, a gateway's results) is handed to the connection's
// context.
//
// Thread-safety: main(), NextForConnection(), size() and Stop() may be
// called from any thread; Run() once. Ownership: handlers still queued in
// a context are destroyed with the pool, so destroy it after what they use
// (as one would an io_context). The destructor shuts every context's
// services down before it frees any context, so a handler of one context
// may hold objects of another (a session's handler holding the listener).
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace sluice {

class IoContextPool {
 public:
  // threads >= 1 (values below 1 count as 1).
  explicit IoContextPool(int threads);
  ~IoContextPool();
  IoContextPool(const IoContextPool&) = delete;
  IoContextPool& operator=(const IoContextPool&) = delete;

  boost::asio::io_context& main() { return *contexts_.front(); }
  // The context for the next client connection.
  boost::asio::io_context& NextForConnection();
  size_t size() const { return contexts_.size(); }

  // Runs every context until Stop(): main() on the calling thread, the
  // others on their own threads; returns when main() stopped or ran out of
  // work and the other threads have returned (they keep running until
  // Stop() or until they too run out of work).
  void Run();
  // Stops every context (their run() calls return soon; queued handlers
  // stay queued).
  void Stop();

 private:
  // An io_context whose services can be shut down ahead of its destruction.
  class Context : public boost::asio::io_context {
   public:
    using boost::asio::io_context::io_context;
    void ShutdownServices() { shutdown(); }
  };
  using WorkGuard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<Context>> contexts_;
  std::vector<WorkGuard> guards_;  // keep contexts 1.. running while they wait for connections
  std::atomic<size_t> next_{0};
};

}  // namespace sluice
