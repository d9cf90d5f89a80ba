#include "common/asio_executor.h"

#include <boost/asio/post.hpp>

namespace sluice {

namespace asio = boost::asio;

struct AsioExecutor::State {
  explicit State(asio::io_context& ioc) : strand(asio::make_strand(ioc)) {}
  asio::strand<asio::io_context::executor_type> strand;
  std::mutex mu;
  TimerId next_id = 1;                                                      // GUARDED_BY(mu)
  std::unordered_map<TimerId, std::unique_ptr<asio::steady_timer>> timers;  // GUARDED_BY(mu)
  bool closed = false;                                                      // GUARDED_BY(mu)
};

AsioExecutor::AsioExecutor(asio::io_context& ioc) : state_(std::make_shared<State>(ioc)) {}

AsioExecutor::~AsioExecutor() {
  std::lock_guard lock(state_->mu);
  state_->closed = true;
  for (auto& [id, timer] : state_->timers) timer->cancel();
  state_->timers.clear();
}

void AsioExecutor::Post(std::function<void()> fn) { asio::post(state_->strand, std::move(fn)); }

Executor::TimerId AsioExecutor::RunAt(TimePoint when, std::function<void()> fn) {
  std::lock_guard lock(state_->mu);
  if (state_->closed) return 0;
  TimerId id = state_->next_id++;
  auto timer = std::make_unique<asio::steady_timer>(state_->strand, when);
  timer->async_wait([state = state_, id, fn = std::move(fn)](boost::system::error_code ec) {
    {
      std::lock_guard lock(state->mu);
      // Erased by Cancel() or the destructor: do not run.
      if (state->timers.erase(id) == 0) return;
    }
    if (!ec) fn();
  });
  state_->timers.emplace(id, std::move(timer));
  return id;
}

bool AsioExecutor::Cancel(TimerId id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->timers.find(id);
  if (it == state_->timers.end()) return false;
  it->second->cancel();
  state_->timers.erase(it);
  return true;
}

}  // namespace sluice
