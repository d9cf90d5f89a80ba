#include "common/io_context_pool.h"

#include <string>
#include <thread>

#include "common/thread_name.h"

namespace sluice {

IoContextPool::IoContextPool(int threads) {
  const int n = threads < 1 ? 1 : threads;
  contexts_.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    // One thread runs each context (hint 1); asio keeps its locking, which
    // the other threads posting into it need.
    contexts_.push_back(std::make_unique<Context>(1));
  }
  for (size_t i = 1; i < contexts_.size(); ++i) {
    guards_.emplace_back(boost::asio::make_work_guard(*contexts_[i]));
  }
}

IoContextPool::~IoContextPool() {
  // Pending handlers are destroyed by their context's shutdown, and may
  // release objects bound to another context (a session's last handler
  // frees the listener's state): every context's services must still exist
  // then, shut down or not.
  guards_.clear();
  for (auto& c : contexts_) c->ShutdownServices();
  contexts_.clear();
}

boost::asio::io_context& IoContextPool::NextForConnection() {
  return *contexts_[next_.fetch_add(1, std::memory_order_relaxed) % contexts_.size()];
}

void IoContextPool::Run() {
  std::vector<std::thread> others;
  for (size_t i = 1; i < contexts_.size(); ++i) {
    others.emplace_back([this, i] {
      SetCurrentThreadName("sluice-io-" + std::to_string(i));
      contexts_[i]->run();
    });
  }
  contexts_.front()->run();
  for (WorkGuard& g : guards_) g.reset();
  for (std::thread& t : others) t.join();
}

void IoContextPool::Stop() {
  for (auto& c : contexts_) c->stop();
}

}  // namespace sluice
