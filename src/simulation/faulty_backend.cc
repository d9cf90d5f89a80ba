#include "simulation/faulty_backend.h"

namespace sluice {

Result<std::unique_ptr<FaultyBackend>> FaultyBackend::Create(const Options& options,
                                                             std::unique_ptr<Backend> inner) {
  if (options.executor == nullptr) return InvalidArgument("faulty backend needs an executor");
  if (!inner) return InvalidArgument("faulty backend needs a backend to wrap");
  if (options.failure_delay_us < 0) {
    return InvalidArgument("failure_delay_us must be >= 0, got " +
                           std::to_string(options.failure_delay_us));
  }
  return std::unique_ptr<FaultyBackend>(new FaultyBackend(options, std::move(inner)));
}

void FaultyBackend::RunBatch(const std::vector<RequestPtr>& batch, DoneFn done) {
  if (!down()) return inner_->RunBatch(batch, std::move(done));
  refused_.fetch_add(1, std::memory_order_relaxed);
  // The name is copied: the timer may outlive this object.
  auto fail = [done = std::move(done), name = inner_->name()]() mutable {
    BatchResult r;
    r.status = BackendError("connect to " + name + ": connection refused (device down)");
    done(std::move(r));
  };
  Executor& ex = *options_.executor;
  ex.RunAt(ex.clock().Now() + Micros(options_.failure_delay_us), std::move(fail));
}

}  // namespace sluice
