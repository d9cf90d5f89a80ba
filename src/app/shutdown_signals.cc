#include "app/shutdown_signals.h"

#include <csignal>

namespace sluice {

ShutdownSignals::ShutdownSignals(boost::asio::io_context& ioc, Executor& executor,
                                 std::function<void()> on_signal)
    : signals_(ioc, SIGINT, SIGTERM), executor_(executor), on_signal_(std::move(on_signal)) {
  Wait();
}

void ShutdownSignals::Wait() {
  signals_.async_wait([this](boost::system::error_code ec, int) {
    if (ec) return;
    executor_.Post(on_signal_);
    Wait();
  });
}

}  // namespace sluice
