#include "simulation/simulation.h"

#include <algorithm>
#include <cmath>

#include "backends/sim/sim_backend.h"
#include "config/scheduler_options.h"

namespace sluice {

namespace {
constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;
}  // namespace

Result<std::unique_ptr<Simulation>> Simulation::Create(const AppConfig& app,
                                                       const Options& options) {
  if (app.models.empty()) return InvalidArgument("the configuration has no model");
  const ModelConfig* model = &app.models.front();
  if (!options.model.empty()) {
    auto it = std::find_if(app.models.begin(), app.models.end(),
                           [&](const ModelConfig& m) { return m.name == options.model; });
    if (it == app.models.end()) {
      return InvalidArgument("--model: the configuration has no model `" + options.model + "`");
    }
    model = &*it;
  }
  if (options.devices < 0) {
    return InvalidArgument("--devices: must be >= 1, got " + std::to_string(options.devices));
  }
  if (Status st = ValidateScenario(options.scenario); !st.ok()) return st;
  std::unique_ptr<Simulation> sim(new Simulation(app, *model, options));
  if (Status st = sim->Build(); !st.ok()) return st;
  return sim;
}

Simulation::Simulation(const AppConfig& app, const ModelConfig& model, const Options& options)
    : app_(app), model_(model), options_(options), tier_rng_(options.scenario.seed * kGolden + 7) {}

Simulation::~Simulation() {
  // The service and the scheduler hold pointers into the recorder and the
  // executor; tear them down first, explicitly.
  service_.reset();
  scheduler_.reset();
}

TimePoint Simulation::At(double offset_s) const {
  return executor_.start() +
         std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(offset_s));
}

double Simulation::device_full_batch_rps() const {
  const double n = static_cast<double>(model_.max_batch_size);
  const double batch_us = static_cast<double>(fixed_latency_us_) + per_item_latency_us_ * n;
  return batch_us > 0 ? n * 1e6 / batch_us : 0;
}

int Simulation::FindTier(const std::string& name) const {
  for (size_t t = 0; t < app_.tiers.size(); ++t) {
    if (app_.tiers[t].name == name) return static_cast<int>(t);
  }
  return -1;
}

Status Simulation::Build() {
  const Scenario& sc = options_.scenario;
  const bool sim_kind = model_.backend.kind == "sim";
  device_count_ = options_.devices > 0 ? options_.devices
                  : sim_kind           ? model_.backend.sim.devices
                                       : static_cast<int>(model_.backend.http.endpoints.size()) *
                                   model_.backend.http.connections_per_endpoint;
  if (device_count_ < 1) return InvalidArgument("the model has no devices; pass --devices");
  // http kinds: the devices cost what the scheduler's prior assumes.
  const BatchCostModel::Options prior = CostPriorFor(model_);
  fixed_latency_us_ = sim_kind ? model_.backend.sim.fixed_latency_us : prior.prior_batch_fixed_us;
  per_item_latency_us_ =
      sim_kind ? model_.backend.sim.per_item_latency_us : prior.prior_batch_per_item_us;
  for (const TierShare& share : sc.mix) {
    if (FindTier(share.tier) < 0) {
      return InvalidArgument("--mix: the configuration has no tier `" + share.tier + "`");
    }
  }
  for (const HostileClient& h : sc.hostile) {
    if (FindTier(h.tier) < 0) {
      return InvalidArgument("--hostile: the configuration has no tier `" + h.tier + "`");
    }
  }
  for (const ScenarioEvent& e : sc.events) {
    if (std::max(e.first_device, e.last_device) >= device_count_) {
      return InvalidArgument(
          "--event: device " + std::to_string(std::max(e.first_device, e.last_device)) +
          " does not exist (devices: 0-" + std::to_string(device_count_ - 1) + ")");
    }
  }

  int64_t longest_total_us = 0;
  for (const TierPolicy& t : app_.tiers) {
    longest_total_us = std::max(longest_total_us, t.total_timeout_us);
  }
  drain_s_ = std::max(sc.drain_s, static_cast<double>(longest_total_us) / 1e6 + 1);
  if (Status st = BuildScheduler(); !st.ok()) return st;
  BuildStreams();
  return Status::Ok();
}

Status Simulation::BuildScheduler() {
  const Scenario& sc = options_.scenario;
  const bool sim_kind = model_.backend.kind == "sim";
  OutcomeRecorder::Options ro;
  ro.start = executor_.start();
  ro.duration_s = sc.duration_s;
  ro.warmup_s = sc.warmup_s;
  ro.drain_s = drain_s_;
  ro.devices = device_count_;
  ro.clock = &executor_.clock();
  recorder_ = std::make_unique<OutcomeRecorder>(ro);

  std::vector<std::unique_ptr<Backend>> slots;
  for (int d = 0; d < device_count_; ++d) {
    SimBackend::Options o;
    o.model = model_.name;
    o.model_version = model_.version;
    o.device_index = d;
    o.fixed_latency_us = fixed_latency_us_;
    o.per_item_latency_us = per_item_latency_us_;
    o.jitter = sim_kind ? model_.backend.sim.jitter : 0.0;
    o.seed = (sim_kind ? model_.backend.sim.seed : 1) + sc.seed * kGolden;
    o.executor = &executor_;
    auto device = SimBackend::Create(o);
    if (!device.ok()) return device.status();
    auto faulty = FaultyBackend::Create({.executor = &executor_}, std::move(device).value());
    if (!faulty.ok()) return faulty.status();
    devices_.push_back(faulty->get());
    slots.push_back(std::move(faulty).value());
  }

  auto dead_letters = DeadLetterQueue::Create({});
  if (!dead_letters.ok()) return dead_letters.status();
  dead_letters_ = std::move(dead_letters).value();
  ModelScheduler::Options so = SchedulerOptionsFor(app_, model_);
  so.dispatch.executor = &executor_;
  so.dispatch.router = &router_;
  so.dispatch.dead_letters = dead_letters_.get();
  so.dispatch.retry_seed = sc.seed * 2 + 1;  // never 0 (= random)
  so.observer = recorder_.get();
  auto scheduler = ModelScheduler::Create(so, std::move(slots));
  if (!scheduler.ok()) return scheduler.status();
  scheduler_ = std::move(scheduler).value();

  InferenceService::Options io;
  io.tiers = app_.tiers;
  io.models.push_back({model_.name, model_.version, model_.max_tokens_limit,
                       model_.default_max_tokens, scheduler_->queue(), scheduler_->admission()});
  io.clock = &executor_.clock();
  auto service = InferenceService::Create(io);
  if (!service.ok()) return service.status();
  service_ = std::move(service).value();
  return Status::Ok();
}

void Simulation::BuildStreams() {
  const Scenario& sc = options_.scenario;
  // The regular clients: one arrival process, a tier drawn per request.
  Stream regular;
  ArrivalProcess::Options ao;
  ao.kind = sc.arrivals;
  ao.rate_rps = sc.rate_rps;
  ao.end_s = sc.duration_s;
  ao.burst_factor = sc.burst_factor;
  ao.burst_on_fraction = sc.burst_on_fraction;
  ao.burst_period_s = sc.burst_period_s;
  ao.seed = sc.seed;
  regular.arrivals = std::make_unique<ArrivalProcess>(ao);
  regular.key_id = "sim-client";
  double cumulative = 0;
  for (const TierShare& share : sc.mix) {
    regular.tiers.push_back(static_cast<uint8_t>(FindTier(share.tier)));
    cumulative += share.weight;
    regular.cumulative.push_back(cumulative);
    recorder_->AddStream(share.tier, share.tier);
  }
  regular_recorder_streams_ = sc.mix.size();
  streams_.push_back(std::move(regular));
  for (size_t i = 0; i < sc.hostile.size(); ++i) {
    const HostileClient& h = sc.hostile[i];
    Stream s;
    ArrivalProcess::Options ho;
    ho.kind = ArrivalKind::kConstant;
    ho.rate_rps = h.rate_rps;
    ho.start_s = h.start_s;
    ho.end_s = h.end_s < 0 ? sc.duration_s : std::min(h.end_s, sc.duration_s);
    ho.seed = sc.seed + (i + 1) * kGolden;
    s.arrivals = std::make_unique<ArrivalProcess>(ho);
    s.tiers.push_back(static_cast<uint8_t>(FindTier(h.tier)));
    s.client_timeout_us = h.deadline_ms * 1000;
    s.key_id = "hostile-" + std::to_string(i + 1);
    s.recorder_stream_base = recorder_->AddStream(s.key_id, h.tier);
    streams_.push_back(std::move(s));
  }
  input_template_.assign(sc.input_bytes, 'x');
}

void Simulation::ScheduleNext(size_t stream) {
  std::optional<double> next = streams_[stream].arrivals->Next();
  if (!next) return;
  executor_.RunAt(At(*next), [this, stream] {
    Arrive(stream);
    ScheduleNext(stream);
  });
}

void Simulation::Arrive(size_t index) {
  const Stream& stream = streams_[index];
  size_t pick = 0;
  if (stream.tiers.size() > 1) {
    const double u = std::generate_canonical<double, 53>(tier_rng_) * stream.cumulative.back();
    pick = static_cast<size_t>(
        std::upper_bound(stream.cumulative.begin(), stream.cumulative.end(), u) -
        stream.cumulative.begin());
    pick = std::min(pick, stream.tiers.size() - 1);
  }
  const size_t recorder_stream = stream.recorder_stream_base + pick;
  const TierIndex tier = stream.tiers[pick];
  const TimePoint now = executor_.Now();
  const uint32_t id = recorder_->OnArrival(recorder_stream, now);

  auto req = std::make_shared<InferenceRequest>();
  req->id = "sim-" + std::to_string(next_request_++);
  req->principal.key_id = stream.key_id;
  req->principal.tier = tier;
  req->principal.tier_name = app_.tiers[tier].name;
  req->model_index = 0;
  req->model = model_.name;
  req->input = input_template_;
  // A unique prefix, so that no two requests carry the same input.
  static const char* kHex = "0123456789abcdef";
  for (int i = 0; i < 16 && i < static_cast<int>(req->input.size()); ++i) {
    req->input[i] = kHex[(next_request_ >> (60 - 4 * i)) & 0xf];
  }
  req->params.max_tokens = options_.scenario.max_tokens;
  req->set_on_complete([rec = recorder_.get(), ex = &executor_, id, recorder_stream,
                        now](InferenceOutcome&& outcome) {
    rec->OnAnswer(id, recorder_stream, now, outcome, ex->Now());
  });
  AdmissionDecision decision;
  Status st = service_->Submit(req, stream.client_timeout_us, &decision);
  if (st.ok()) return;
  const char* reason = st.code() == ErrorCode::kInvalidArgument ? "invalid"
                       : st.code() != ErrorCode::kUnavailable   ? "other"
                       : !decision.admitted ? AdmissionRejectName(decision.reason)
                                            : "queue_full";
  recorder_->OnRefused(id, recorder_stream, now, reason);
}

void Simulation::ApplyEvent(const ScenarioEvent& e) {
  const int last = e.last_device < 0 ? device_count_ - 1 : e.last_device;
  for (int d = e.first_device; d <= last; ++d) {
    switch (e.action) {
      case DeviceAction::kDown:
      case DeviceAction::kUp:
        devices_[d]->SetDown(e.action == DeviceAction::kDown);
        break;
      case DeviceAction::kDisable:
      case DeviceAction::kEnable:
        // Validated in Build(): the index exists.
        (void)scheduler_->SetDeviceEnabled(d, e.action == DeviceAction::kEnable);
        break;
    }
  }
}

SimulationReport Simulation::Run() {
  SimulationReport report;
  if (ran_) return report;
  ran_ = true;
  const Scenario& sc = options_.scenario;
  scheduler_->Start();
  for (size_t i = 0; i < streams_.size(); ++i) ScheduleNext(i);
  for (const ScenarioEvent& e : sc.events) {
    executor_.RunAt(At(e.at_s), [this, e] { ApplyEvent(e); });
  }
  executor_.RunUntil(At(sc.duration_s + drain_s_));

  report.model = model_.name;
  report.devices = device_count_;
  report.duration_s = sc.duration_s;
  report.warmup_s = sc.warmup_s;
  report.rate_rps = sc.rate_rps;
  report.arrivals = ArrivalKindName(sc.arrivals);
  report.mix = FormatMix(sc.mix);
  report.seed = sc.seed;
  report.device_full_batch_rps = device_full_batch_rps();
  recorder_->Fill(regular_recorder_streams_, executor_.Now(), &report);
  report.events = executor_.events_run();
  return report;
}

}  // namespace sluice
