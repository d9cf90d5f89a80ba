#include "simulation/outcome_recorder.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace sluice {

OutcomeRecorder::OutcomeRecorder(const Options& options) : options_(options) {
  busy_per_second_.assign(
      static_cast<size_t>(std::ceil(options_.duration_s + options_.drain_s)) + 1, 0.0);
}

size_t OutcomeRecorder::AddStream(std::string name, std::string tier) {
  Stream s;
  s.name = std::move(name);
  s.tier = std::move(tier);
  s.per_second.resize(static_cast<size_t>(std::ceil(options_.duration_s)));
  streams_.push_back(std::move(s));
  return streams_.size() - 1;
}

double OutcomeRecorder::OffsetS(TimePoint t) const {
  return std::chrono::duration<double>(t - options_.start).count();
}

uint32_t OutcomeRecorder::OnArrival(size_t stream, TimePoint at) {
  const uint32_t id = static_cast<uint32_t>(answers_.size());
  answers_.push_back(0);
  Stream& s = streams_[stream];
  const double t = OffsetS(at);
  if (t >= options_.warmup_s) ++s.offered;
  const size_t second = static_cast<size_t>(std::max(0.0, t));
  if (second < s.per_second.size()) ++s.per_second[second].offered;
  return id;
}

bool OutcomeRecorder::MarkAnswered(uint32_t id) {
  uint8_t& n = answers_[id];
  if (n < UINT8_MAX) ++n;
  if (n == 1) return true;
  ++answered_twice_;
  return false;
}

void OutcomeRecorder::Count(Stream& s, TimePoint arrival, Kind kind) {
  const double t = OffsetS(arrival);
  const size_t second = static_cast<size_t>(std::max(0.0, t));
  SecondCounts* sec = second < s.per_second.size() ? &s.per_second[second] : nullptr;
  const bool measured = t >= options_.warmup_s;
  switch (kind) {
    case Kind::kOk:
      if (sec) ++sec->ok;
      if (measured) ++s.ok;
      break;
    case Kind::kRefused:
      if (sec) ++sec->refused;
      break;
    case Kind::kTimedOut:
      if (sec) ++sec->timed_out;
      if (measured) ++s.timed_out;
      break;
    case Kind::kFailed:
      if (sec) ++sec->failed;
      if (measured) ++s.failed;
      break;
    case Kind::kOther:
      if (sec) ++sec->other;
      if (measured) ++s.other;
      break;
  }
}

OutcomeRecorder::Reason OutcomeRecorder::ReasonOf(const char* name) {
  if (name == nullptr) return kUnavailable;
  for (int r = 0; r < kReasonCount; ++r) {
    if (std::strcmp(name, ReasonName(static_cast<Reason>(r))) == 0) return static_cast<Reason>(r);
  }
  return kUnavailable;
}

const char* OutcomeRecorder::ReasonName(Reason reason) {
  switch (reason) {
    case kQueueFull:
      return "queue_full";
    case kDeadlineUnreachable:
      return "deadline_unreachable";
    case kQueueDepthThreshold:
      return "queue_depth_threshold";
    case kBackendsUnavailable:
      return "backends_unavailable";
    case kInvalid:
      return "invalid";
    case kUnavailable:
    case kReasonCount:
      break;
  }
  return "unavailable";
}

void OutcomeRecorder::OnRefused(uint32_t id, size_t stream, TimePoint arrival, const char* reason) {
  if (!MarkAnswered(id)) return;
  Stream& s = streams_[stream];
  Count(s, arrival, Kind::kRefused);
  if (OffsetS(arrival) >= options_.warmup_s) ++s.refused[ReasonOf(reason)];
}

void OutcomeRecorder::OnAnswer(uint32_t id, size_t stream, TimePoint arrival,
                               const InferenceOutcome& outcome, TimePoint now) {
  if (!MarkAnswered(id)) return;
  Stream& s = streams_[stream];
  const bool measured = OffsetS(arrival) >= options_.warmup_s;
  switch (outcome.status.code()) {
    case ErrorCode::kOk:
      Count(s, arrival, Kind::kOk);
      if (measured)
        s.latency_us.Record(static_cast<uint64_t>(std::max<int64_t>(0, ToMicros(now - arrival))));
      return;
    case ErrorCode::kUnavailable:
    case ErrorCode::kInvalidArgument:
      Count(s, arrival, Kind::kRefused);
      if (measured) {
        ++s.refused[outcome.status.code() == ErrorCode::kInvalidArgument
                        ? kInvalid
                        : ReasonOf(outcome.reason)];
        ++s.refused_after_queueing;
      }
      return;
    case ErrorCode::kDeadlineExceeded:
      return Count(s, arrival, Kind::kTimedOut);
    case ErrorCode::kBackendError:
      return Count(s, arrival, Kind::kFailed);
    default:
      return Count(s, arrival, Kind::kOther);
  }
}

void OutcomeRecorder::OnBatchDone(size_t slot, size_t batch_size,
                                  SteadyClock::duration accelerator_time, bool ok) {
  ++batches_;
  if (ok) {
    ok_batch_items_ += batch_size;
  } else {
    ++failed_batches_;
  }
  // The batch covered [end - d, end); split it over the seconds it covered.
  const double end = OffsetS(options_.clock->Now());
  const double begin = end - std::chrono::duration<double>(accelerator_time).count();
  busy_window_s_ +=
      std::max(0.0, std::min(end, options_.duration_s) - std::max(begin, options_.warmup_s));
  for (double t = std::max(0.0, begin); t < end;) {
    const double second = std::floor(t);
    const double until = std::min(end, second + 1);
    const size_t i = static_cast<size_t>(second);
    if (i < busy_per_second_.size()) busy_per_second_[i] += until - t;
    t = until;
  }
}

void OutcomeRecorder::OnBreakerChange(size_t /*endpoint*/, const std::string& /*name*/,
                                      BreakerState state) {
  if (state == BreakerState::kOpen) ++breaker_opens_;
}

StreamReport OutcomeRecorder::ToReport(const Stream& s) const {
  StreamReport r;
  r.name = s.name;
  r.tier = s.tier;
  r.offered = s.offered;
  r.ok = s.ok;
  for (int i = 0; i < kReasonCount; ++i) {
    if (s.refused[i] == 0) continue;
    r.refused[ReasonName(static_cast<Reason>(i))] = s.refused[i];
    r.refused_total += s.refused[i];
  }
  r.refused_after_queueing = s.refused_after_queueing;
  r.timed_out = s.timed_out;
  r.failed = s.failed;
  r.other = s.other;
  r.success_ratio = s.offered == 0 ? 1.0 : static_cast<double>(s.ok) / s.offered;
  r.p50_ms = s.latency_us.ValueAtQuantile(0.50) / 1e3;
  r.p95_ms = s.latency_us.ValueAtQuantile(0.95) / 1e3;
  r.p99_ms = s.latency_us.ValueAtQuantile(0.99) / 1e3;
  r.max_ms = s.latency_us.max() / 1e3;
  r.mean_ms = s.latency_us.mean() / 1e3;
  r.per_second = s.per_second;
  return r;
}

void OutcomeRecorder::Fill(size_t regular_streams, TimePoint now, SimulationReport* report) const {
  Stream all;
  all.name = "all";
  all.per_second.resize(static_cast<size_t>(std::ceil(options_.duration_s)));
  for (size_t i = 0; i < streams_.size(); ++i) {
    const Stream& s = streams_[i];
    (i < regular_streams ? report->tiers : report->hostile).push_back(ToReport(s));
    all.offered += s.offered;
    all.ok += s.ok;
    all.timed_out += s.timed_out;
    all.failed += s.failed;
    all.other += s.other;
    for (int r = 0; r < kReasonCount; ++r) all.refused[r] += s.refused[r];
    all.refused_after_queueing += s.refused_after_queueing;
    all.latency_us.Merge(s.latency_us);
    for (size_t sec = 0; sec < all.per_second.size(); ++sec)
      all.per_second[sec] += s.per_second[sec];
  }
  report->all = ToReport(all);
  const double measured_s = options_.duration_s - options_.warmup_s;
  report->goodput_rps = measured_s > 0 ? static_cast<double>(all.ok) / measured_s : 0;
  report->utilization = measured_s > 0 ? busy_window_s_ / (options_.devices * measured_s) : 0;
  const size_t seconds =
      std::min(busy_per_second_.size(), static_cast<size_t>(std::ceil(OffsetS(now))));
  report->utilization_per_second.clear();
  for (size_t i = 0; i < seconds; ++i) {
    report->utilization_per_second.push_back(busy_per_second_[i] / options_.devices);
  }
  const uint64_t ok_batches = batches_ - failed_batches_;
  report->mean_batch_size = ok_batches ? static_cast<double>(ok_batch_items_) / ok_batches : 0;
  report->batches = batches_;
  report->failed_batches = failed_batches_;
  report->retried_requests = retried_requests_;
  report->dead_letters = dead_letters_;
  report->breaker_opens = breaker_opens_;
  report->answered_twice = answered_twice_;
  report->unanswered = static_cast<uint64_t>(std::count(answers_.begin(), answers_.end(), 0));
}

}  // namespace sluice
