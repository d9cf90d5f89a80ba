#include "app/capacity_feed.h"

#include <chrono>

namespace sluice {

CapacityFeed::CapacityFeed(boost::asio::io_context& ioc, Options options)
    : options_(std::move(options)), timer_(ioc) {
  state_->snapshots.resize(options_.models.size());
}

void CapacityFeed::Start() {
  stopped_ = false;
  Tick();
}

void CapacityFeed::Stop() {
  stopped_ = true;
  timer_.cancel();
}

CapacityFeed::Snapshot CapacityFeed::snapshot(size_t model) const {
  std::lock_guard lock(state_->mu);
  return state_->snapshots[model];
}

void CapacityFeed::Tick() {
  for (size_t i = 0; i < options_.models.size(); ++i) {
    const Model& m = options_.models[i];
    m.queue->RefreshDepthAsync(options_.connection, options_.tier_count);
    options_.registry->ReadModelAsync(
        m.name,
        [state = state_, i, m, period_ms = options_.period_ms](Result<redis::ModelCapacity> read) {
          if (!read.ok()) {
            state->read_errors.fetch_add(1, std::memory_order_relaxed);
            return;
          }
          if (m.admission != nullptr) {
            // No slot: refuse until the next read, which may bring a probing one.
            m.admission->SetSlots({read->healthy_slots, 0,
                                   SystemClock()->Now() + std::chrono::milliseconds(period_ms)});
            if (m.cost_model != nullptr && read->throughput_rps > 0 && read->healthy_slots > 0) {
              const double per_slot = read->throughput_rps / read->healthy_slots;
              const double batch_s = static_cast<double>(m.max_batch_size) / per_slot;
              m.cost_model->Record(m.max_batch_size,
                                   std::chrono::duration_cast<SteadyClock::duration>(
                                       std::chrono::duration<double>(batch_s)));
            }
          }
          std::lock_guard lock(state->mu);
          state->snapshots[i].known = true;
          state->snapshots[i].capacity = std::move(read).value();
        });
  }
  Arm();
}

void CapacityFeed::Arm() {
  if (stopped_) return;
  timer_.expires_after(std::chrono::milliseconds(options_.period_ms));
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec && !stopped_) Tick();
  });
}

}  // namespace sluice
