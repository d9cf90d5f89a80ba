// Executor on a Boost.Asio strand with steady timers.
//
// Thread-safe. Callbacks run serially on the strand of the io_context passed
// in; the io_context must outlive this object and every pending timer.
// Destroying the executor cancels pending timers (their callbacks do not run).
#pragma once

#include <memory>
#include <mutex>
#include <unordered_map>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "common/clock.h"

namespace sluice {

class AsioExecutor final : public Executor {
 public:
  explicit AsioExecutor(boost::asio::io_context& ioc);
  ~AsioExecutor() override;

  const Clock& clock() const override { return *SystemClock(); }
  void Post(std::function<void()> fn) override;
  TimerId RunAt(TimePoint when, std::function<void()> fn) override;
  bool Cancel(TimerId id) override;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace sluice
