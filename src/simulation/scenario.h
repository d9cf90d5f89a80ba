// Scenario: the traffic and the faults one simulation run plays against a
// model — how much load, in which tier mix, with which arrival pattern, and
// what breaks when — plus the parsers of its compact command-line form.
//
// Everything is in virtual time, counted from the start of the run. The
// regular clients offer `rate_rps` split by `mix`; each hostile client is an
// extra stream of free-tier requests with a short client deadline (the
// X-Request-Timeout-Ms a misbehaving client would send). Events change the
// devices at given times; see ScenarioEvent.
//
// Command-line forms (ParseEvent, ParseHostile, ParseMix):
//   --event TIME:ACTION[:DEVICES]      ACTION at TIME
//   --event T1-T2:ACTION[:DEVICES]     ACTION at T1, undone at T2
//       ACTION:  down | up        the device fails every batch / works again
//                disable | enable take it out of service / put it back
//                                 (ModelScheduler::SetDeviceEnabled)
//                outage           down, for every device (a backend outage)
//       DEVICES: N, N-M (inclusive) or all (the default)
//       TIME:    a duration from the start: 30s, 1500ms, 2m (bare: seconds)
//     e.g. --event 30s:down:0-7 --event 60s:up:0-7 --event 10s-18s:outage
//   --hostile RATE:DEADLINE_MS[:T1-T2]  RATE free-tier req/s, each with a
//       client deadline of DEADLINE_MS, from T1 to T2 (default: the whole
//       run), e.g. --hostile 40:5
//   --mix free=0.7,paid=0.25,enterprise=0.05   relative weights per tier
//
// Value types; the parsers are pure functions (thread-safe). Validation
// against a configuration (tier names, device indexes) is the Simulation's.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice {

enum class ArrivalKind {
  kConstant,  // evenly spaced at the mean rate
  kPoisson,   // exponential gaps at the mean rate
  kBursty,    // Poisson, alternating bursts and lulls around the mean rate
};
const char* ArrivalKindName(ArrivalKind kind);  // "constant", "poisson", "bursty"
// "constant", "poisson" or "bursty"; kInvalidArgument otherwise.
Result<ArrivalKind> ParseArrivalKind(std::string_view text);

enum class DeviceAction {
  kDown,     // the device fails every new batch (FaultyBackend)
  kUp,       // the device works again
  kDisable,  // the scheduler takes it out of service
  kEnable,   // the scheduler puts it back
};
const char* DeviceActionName(DeviceAction action);  // "down", "up", "disable", "enable"

// One change to a range of devices at a point in virtual time.
struct ScenarioEvent {
  double at_s = 0;  // seconds from the start, >= 0
  DeviceAction action = DeviceAction::kDown;
  int first_device = 0;  // first device index affected, >= 0
  int last_device = -1;  // last device index affected (inclusive); -1 = the last device
};

// An extra stream of free-tier requests with a short client deadline.
struct HostileClient {
  double rate_rps = 40;     // requests per second (constant spacing), > 0
  int64_t deadline_ms = 5;  // client deadline (client_timeout_us / 1000), > 0
  double start_s = 0;       // first arrival no earlier than this, >= 0
  double end_s = -1;        // no arrival from this time on; < 0 = the end of the run
  std::string tier = "free";
};

struct TierShare {
  std::string tier;   // a tier name of the configuration
  double weight = 0;  // relative share of rate_rps, >= 0
};

struct Scenario {
  double duration_s = 60;  // virtual seconds of offered traffic, > 0
  // The first seconds, excluded from the report's totals and percentiles
  // (the per-second series keep them); [0, duration_s).
  double warmup_s = 0;
  double rate_rps = 1'000;  // regular clients' total offered load, requests/s, >= 0
  std::vector<TierShare> mix = {{"free", 0.70}, {"paid", 0.25}, {"enterprise", 0.05}};
  ArrivalKind arrivals = ArrivalKind::kPoisson;
  // Bursty arrivals: each period of burst_period_s starts with a burst of
  // burst_on_fraction of it at burst_factor times the mean rate; the rest
  // runs at the rate that keeps the mean (0 when burst_factor *
  // burst_on_fraction == 1).
  double burst_factor = 3;         // >= 1
  double burst_on_fraction = 0.2;  // (0, 1); burst_factor * burst_on_fraction <= 1
  double burst_period_s = 10;      // > 0
  uint64_t seed = 1;               // arrivals, tier choice, device jitter, retry jitter
  uint32_t input_bytes = 64;       // size of every request's input, >= 17
  int max_tokens = 16;             // parameters.max_tokens of every request, >= 1
  std::vector<ScenarioEvent> events;
  std::vector<HostileClient> hostile;
  // Virtual seconds after the last arrival during which the run continues so
  // that every request is answered; at least the longest tier total timeout
  // plus one second is used.
  double drain_s = 5;
};

// Checks every field on its own (ranges above). kInvalidArgument naming the
// field, the rule and the value.
Status ValidateScenario(const Scenario& scenario);

// `--event` text (see the file comment); appends one or two events.
Status ParseEvent(std::string_view text, std::vector<ScenarioEvent>* events);
// `--hostile` text (see the file comment).
Result<HostileClient> ParseHostile(std::string_view text);
// `--mix` text: NAME=WEIGHT pairs, e.g. free=70,paid=25,enterprise=5.
Result<std::vector<TierShare>> ParseMix(std::string_view text);
// A duration flag in seconds: 90, 90s, 1500ms, 2m, 1h, 1.5h.
Result<double> ParseDurationS(std::string_view text, std::string_view what);
// "free=0.7,paid=0.25,enterprise=0.05" (weights as fractions of the total).
std::string FormatMix(const std::vector<TierShare>& mix);

}  // namespace sluice
