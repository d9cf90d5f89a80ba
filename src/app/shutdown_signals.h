// ShutdownSignals: every SIGINT/SIGTERM the process receives while this
// object lives is handed to `on_signal` on `executor` (for the Drainer:
// Begin() on the first, stop at once on the second). Build it before the
// run loop starts; destroy it after the loop stopped.
#pragma once

#include <functional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "common/clock.h"

namespace sluice {

class ShutdownSignals {
 public:
  ShutdownSignals(boost::asio::io_context& ioc, Executor& executor,
                  std::function<void()> on_signal);
  ShutdownSignals(const ShutdownSignals&) = delete;
  ShutdownSignals& operator=(const ShutdownSignals&) = delete;

 private:
  void Wait();

  boost::asio::signal_set signals_;
  Executor& executor_;
  std::function<void()> on_signal_;
};

}  // namespace sluice
