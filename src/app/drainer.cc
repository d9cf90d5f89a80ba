#include "app/drainer.h"

#include <stdexcept>

#include <spdlog/spdlog.h>

namespace sluice {

Drainer::Drainer(Options options) : options_(std::move(options)) {
  if (options_.executor == nullptr || !options_.stop || options_.stages.empty()) {
    throw std::invalid_argument("Drainer needs an executor, stop() and at least one stage");
  }
  for (const Stage& s : options_.stages) {
    if (!s.idle) throw std::invalid_argument("Drainer stage '" + s.name + "' needs idle()");
  }
}

Drainer::~Drainer() {
  if (timer_ != 0) options_.executor->Cancel(timer_);
}

void Drainer::Begin() {
  if (stopped_) return;
  if (begun_) {
    spdlog::warn("second signal: stopping without finishing the drain");
    Stop();
    return;
  }
  begun_ = true;
  spdlog::info("shutting down: draining for up to {} ms", options_.timeout_ms);
  deadline_ = options_.executor->clock().Now() + Millis(options_.timeout_ms);
  if (const Stage& s = options_.stages.front(); s.begin) s.begin();
  Poll();
}

void Drainer::Poll() {
  timer_ = 0;
  if (stopped_) return;
  const auto& stages = options_.stages;
  while (!abandoned_ && current_ < stages.size() && stages[current_].idle()) {
    if (++current_ < stages.size() && stages[current_].begin) stages[current_].begin();
  }
  const TimePoint now = options_.executor->clock().Now();
  if (current_ == stages.size()) {
    spdlog::info("drained; exiting");
    return Stop();
  }
  if (!abandoned_ && now >= deadline_) {
    // The stage being drained ran out of time: give up what is left of it.
    // The later ones had none: they begin now and get the grace period.
    abandoned_ = true;
    spdlog::warn("drain timeout: {} not finished; giving up what is left", stages[current_].name);
    if (stages[current_].abandon) stages[current_].abandon();
    for (size_t i = current_ + 1; i < stages.size(); ++i) {
      if (stages[i].begin) stages[i].begin();
    }
    deadline_ = now + Millis(options_.grace_ms);
  }
  if (abandoned_) {
    const bool written = !options_.written || options_.written();
    bool idle = true;
    for (size_t i = current_ + 1; i < stages.size(); ++i) idle = idle && stages[i].idle();
    if (written && idle) return Stop();
    if (now >= deadline_) {
      for (size_t i = current_ + 1; i < stages.size(); ++i) {
        if (stages[i].idle()) continue;
        spdlog::warn("drain timeout: {} not finished; giving up what is left", stages[i].name);
        if (stages[i].abandon) stages[i].abandon();
      }
      if (!written) spdlog::warn("exiting with answers unwritten");
      return Stop();
    }
  }
  timer_ = options_.executor->RunAt(now + Millis(options_.poll_ms), [this] { Poll(); });
}

void Drainer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (timer_ != 0) options_.executor->Cancel(timer_);
  timer_ = 0;
  options_.stop();
}

}  // namespace sluice
