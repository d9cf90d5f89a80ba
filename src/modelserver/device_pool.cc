#include "modelserver/device_pool.h"

#include <utility>

namespace sluice::modelserver {

Result<std::unique_ptr<DevicePool>> DevicePool::Create(const Options& options) {
  if (options.executor == nullptr) return InvalidArgument("device pool needs an executor");
  if (options.devices < 1) return InvalidArgument("--devices must be at least 1");
  std::unique_ptr<DevicePool> pool(new DevicePool(options));
  for (int i = 0; i < options.devices; ++i) {
    SimBackend::Options o;
    o.model = options.model;
    o.model_version = options.model_version;
    o.device_index = i;
    o.fixed_latency_us = options.fixed_latency_us;
    o.per_item_latency_us = options.per_item_latency_us;
    o.jitter = options.jitter;
    o.seed = options.seed;
    o.executor = options.executor;
    auto device = SimBackend::Create(o);
    if (!device.ok()) return device.status();
    pool->devices_.push_back(std::move(device.value()));
    pool->free_.push_back(static_cast<size_t>(options.devices - 1 - i));  // device 0 first
  }
  return pool;
}

void DevicePool::Submit(std::vector<RequestPtr> batch, int64_t added_latency_us, DoneFn done) {
  options_.executor->Post(
      [this, job = Job{std::move(batch), added_latency_us, std::move(done)}]() mutable {
        waiting_.push_back(std::move(job));
        StartNext();
      });
}

void DevicePool::StartNext() {
  while (!free_.empty() && !waiting_.empty()) {
    const size_t device = free_.back();
    free_.pop_back();
    auto job = std::make_shared<Job>(std::move(waiting_.front()));
    waiting_.pop_front();
    auto run = [this, device, job] {
      devices_[device]->RunBatch(job->batch, [this, device, job](BatchResult&& result) {
        free_.push_back(device);
        job->done(std::move(result));
        StartNext();
      });
    };
    if (job->added_latency_us > 0) {
      options_.executor->RunAt(options_.executor->clock().Now() + Micros(job->added_latency_us),
                               std::move(run));
    } else {
      run();
    }
  }
}

}  // namespace sluice::modelserver
