// BatchThroughputEstimator: how many requests per second one accelerator
// slot completes when it runs full batches, learnt from the batches it
// actually ran. The capacity input of AdmissionController.
//
// Why not simply items / busy time. With pull-based dispatch a slot at light
// load is busy almost all the time running small batches, so items per busy
// second equals the arrival rate, not what the slot could do; admission
// would then see "capacity == load" and shed at any load. A batch endpoint's
// time grows with the batch (t(n) = fixed + per_item * n), so the estimator
// keeps a cost model of that shape (the prior, from Options) and learns one
// multiplicative speed factor
//   k = EWMA(measured batch time) / EWMA(modelled time of the same batches),
// two sums decayed exponentially in time with time constant
// `time_constant_ms`. Their ratio is measured time / modelled time over the
// recent past, i.e. 1/k is an exponential average of the slot's speed in
// which each second of busy time weighs the same, whatever the batch rate.
// The estimate is max_batch_size / (k * t_model(max_batch_size)).
//
// The cost line itself. Beside the speed factor the estimator keeps the same
// decayed sums for a weighted least-squares fit of t(n) = fixed + per_item*n
// over the recent batches. When their sizes spread enough to tell the two
// apart (standard deviation >= 1 item) and the fit is plausible (both terms
// >= 0), FixedMicros()/PerItemMicros() are the fit; otherwise they are the
// prior scaled by the speed factor. So a backend whose fixed/per-item split
// differs from the prior is learnt as soon as its load varies, and the full
// batch estimate stays exact when every batch is full.
//
// Properties. Exact when batches are full, which is the case under load,
// where capacity matters. After a step change in device
// speed, the estimate has moved 63 % of the way after one time constant of
// busy time and 95 % after three. Before any batch, k = 1: the prior.
//
// Thread-safety: none; the owner serialises calls (AdmissionController
// holds a mutex).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/clock.h"

namespace sluice {

class BatchThroughputEstimator {
 public:
  struct Options {
    size_t max_batch_size = 32;             // >= 1; the batch the estimate is for
    int64_t prior_batch_fixed_us = 34'000;  // model: time of a batch of 0 items, >= 0
    int64_t prior_batch_per_item_us = 500;  // model: added per item, >= 0
    int64_t time_constant_ms = 1'000;       // EWMA time constant, >= 1
  };

  // REQUIRES: options valid (AdmissionController::Create checks them), and
  // prior_batch_fixed_us + prior_batch_per_item_us > 0.
  explicit BatchThroughputEstimator(const Options& options);

  // Records a successful batch of `batch_size` items that took `batch_time`
  // on the accelerator and finished at `now`. Ignored when batch_size is 0
  // or batch_time <= 0.
  void AddBatch(TimePoint now, size_t batch_size, SteadyClock::duration batch_time);

  // Items per second of one slot running full batches (measured or prior).
  double ItemsPerSecond() const;
  // The learnt cost line (see "The cost line itself"), in microseconds.
  double FixedMicros() const;
  double PerItemMicros() const;
  // FixedMicros() + PerItemMicros() * batch_size.
  double BatchMicros(size_t batch_size) const;
  // Measured / modelled batch time (1 until a batch was measured).
  double speed_factor() const;
  // Modelled batch time of `batch_size` items, before the speed factor.
  double ModelledMicros(size_t batch_size) const;
  uint64_t batches() const { return batches_; }

 private:
  const Options options_;
  // Whether the fit is usable; sets *fixed_us and *per_item_us when it is.
  bool Fit(double* fixed_us, double* per_item_us) const;

  double measured_us_ = 0;  // decayed sum of measured batch times
  double modelled_us_ = 0;  // decayed sum of modelled times of the same batches
  // Decayed sums for the least-squares fit: weight, n, n^2, t, n*t.
  double w_ = 0, n_ = 0, nn_ = 0, t_ = 0, nt_ = 0;
  TimePoint last_;
  uint64_t batches_ = 0;
};

}  // namespace sluice
