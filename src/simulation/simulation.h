// Simulation: one model's REAL scheduler — the ModelScheduler that `sluice
// serve` runs (queue, admission, adaptive batching, retries, breakers) and
// the InferenceService in front of it — driven through a Scenario in
// virtual time, with simulated devices, to answer "what would this
// configuration do under this load, and under these faults?".
//
// Wiring. A VirtualExecutor is the clock and the strand of everything. Each
// device is a SimBackend (the model's sim latencies, or the cost prior of
// SchedulerOptionsFor() for http kinds) wrapped in a FaultyBackend; the
// scheduler's options come from SchedulerOptionsFor(), exactly as served.
// Every arrival is a request Submit()ted at its virtual time; its answer is
// recorded once (OutcomeRecorder). Per-key rate limits are not simulated:
// the offered load is what passed them. Hostile clients send free-tier
// requests (or their `tier`) with a client deadline.
//
// Run() plays the scenario to its end, then drains for drain_s (at least
// the longest tier total timeout + 1 s) with no new arrivals, so that every
// request is answered; what is still unanswered is reported as a bug.
//
// Determinism: the same configuration, options and scenario give the same
// report (seeded arrivals, tier choice, device jitter and retry jitter).
// Speed: about a microsecond of wall time per request on one core (an hour
// at 1,000 req/s takes a few seconds).
//
// Thread-safety: none; Run() once, from one thread (it is the event loop).
// Ownership: owns every part it builds; copies the configuration.
#pragma once

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/inference_service.h"
#include "core/model_scheduler.h"
#include "core/result_router.h"
#include "simulation/arrival_process.h"
#include "simulation/faulty_backend.h"
#include "simulation/outcome_recorder.h"
#include "simulation/scenario.h"
#include "simulation/simulation_report.h"
#include "simulation/virtual_executor.h"

namespace sluice {

class Simulation {
 public:
  struct Options {
    std::string model;  // the configured model to simulate; empty = the first
    // Device count; 0 = the configuration's (backend.sim.devices for sim,
    // endpoints x connections_per_endpoint for http kinds).
    int devices = 0;
    Scenario scenario;
  };

  // Errors: kInvalidArgument for an unknown model, a scenario field out of
  // range, a mix tier or a hostile tier the configuration lacks, an event
  // device index beyond the devices, or a part that refuses its options.
  static Result<std::unique_ptr<Simulation>> Create(const AppConfig& app, const Options& options);
  ~Simulation();

  // Plays the scenario and returns what happened. REQUIRES: called once.
  SimulationReport Run();

  int devices() const { return static_cast<int>(devices_.size()); }
  // The model's throughput on one device with full batches (req/s), from
  // the scheduler's cost prior.
  double device_full_batch_rps() const;

 private:
  // One open-loop stream of requests (a tier of the regular clients, or a
  // hostile client).
  struct Stream {
    std::unique_ptr<ArrivalProcess> arrivals;
    std::vector<uint8_t> tiers;       // regular: candidate tier indexes
    std::vector<double> cumulative;   // regular: cumulative mix weights
    int64_t client_timeout_us = 0;    // 0 = none
    size_t recorder_stream_base = 0;  // recorder stream of tiers[0] (then +1 ...)
    std::string key_id;
  };

  Simulation(const AppConfig& app, const ModelConfig& model, const Options& options);
  Status Build();                               // checks the scenario against the model, then:
  Status BuildScheduler();                      // devices, scheduler, service, recorder
  void BuildStreams();                          // the arrival streams
  int FindTier(const std::string& name) const;  // -1 when not configured
  void ScheduleNext(size_t stream);
  void Arrive(size_t stream);
  void ApplyEvent(const ScenarioEvent& event);
  TimePoint At(double offset_s) const;

  const AppConfig app_;
  const ModelConfig model_;
  const Options options_;
  int device_count_ = 0;
  int64_t fixed_latency_us_ = 0, per_item_latency_us_ = 0;
  double drain_s_ = 0;  // the drain actually run (see Run())

  // Destruction runs bottom-up: the service and scheduler go before the
  // recorder (their observer) and the executor (their strand).
  VirtualExecutor executor_;
  LocalResultRouter router_;
  std::unique_ptr<DeadLetterQueue> dead_letters_;
  std::unique_ptr<OutcomeRecorder> recorder_;
  std::vector<FaultyBackend*> devices_;  // owned by the scheduler's group
  std::unique_ptr<ModelScheduler> scheduler_;
  std::unique_ptr<InferenceService> service_;
  std::vector<Stream> streams_;
  size_t regular_recorder_streams_ = 0;
  std::mt19937_64 tier_rng_;
  std::string input_template_;
  uint64_t next_request_ = 0;
  bool ran_ = false;
};

}  // namespace sluice
