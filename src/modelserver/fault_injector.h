// FaultInjector: the failures `sluice model-server` is told to produce, set
// by flags at start and changed at run time through POST /admin/faults.
//
// Draw() decides, per batch, what goes wrong with it: a hang (never answer),
// a dropped connection (close without answering), a whole-batch 500, or
// per-item errors, plus the added latency. Draws come from one seeded RNG in
// arrival order, so a run with the same --seed and the same request sequence
// fails the same batches and items. Thread-safe (a mutex; draws are cheap).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice::modelserver {

struct Faults {
  int64_t added_latency_ms = 0;   // added to every batch's simulated latency, >= 0
  double error_rate = 0;          // probability a batch fails as a whole (HTTP 500), 0..1
  double item_error_rate = 0;     // probability each item fails on its own, 0..1
  bool hang = false;              // accept requests but never answer them
  bool close_connection = false;  // close the connection instead of answering
  // The text of injected failures (batch and item errors); empty: "injected
  // batch failure" / "injected item failure". Sent as is, so tests can make
  // a backend answer with any bytes (e.g. multi-byte or invalid UTF-8).
  std::string error_message;
};

// "faults: <field> must be ..." when a value is out of range.
Status ValidateFaults(const Faults& faults);

// JSON object with every field, e.g. for GET /admin/faults.
std::string FaultsToJson(const Faults& faults);
// Applies the fields present in a JSON object to `faults` (absent fields
// keep their value). kInvalidArgument names a bad field; `faults` is then
// unchanged.
Status ApplyFaultsJson(std::string_view json, Faults* faults);

// What happens to one batch.
struct FaultDecision {
  bool hang = false;
  bool close_connection = false;
  bool batch_error = false;
  std::vector<bool> item_errors;  // one per item; all false when none drawn
  int64_t added_latency_ms = 0;
  std::string error_message;  // Faults::error_message
};

class FaultInjector {
 public:
  FaultInjector(const Faults& initial, uint64_t seed) : faults_(initial), rng_(seed) {}

  Faults Get() const;
  // REQUIRES: ValidateFaults(faults).ok().
  void Set(const Faults& faults);
  FaultDecision Draw(size_t items);

 private:
  mutable std::mutex mu_;
  Faults faults_;        // GUARDED_BY(mu_)
  std::mt19937_64 rng_;  // GUARDED_BY(mu_)
};

}  // namespace sluice::modelserver
