// Registry: the set of metrics one process exposes on /metrics.
//
// Metrics are grouped in families, Prometheus style. A family has a name, a
// help text and a type (counter, gauge, histogram); its members (series)
// differ by their label set. Components ask the registry for their
// instruments once, at setup, keep the returned pointers and update them on
// the request path without touching the registry again:
//
//   Counter* served = registry.GetCounter("sluice_requests_total",
//                                          "Requests answered.", {{"model", "m"}});
//   ...
//   served->Inc();  // lock-free
//
// Ownership and lifetime. The registry owns every instrument it hands out;
// pointers stay valid as long as the registry. Nothing is ever unregistered,
// except callback series (RemoveCallback).
//
// Thread-safety. All methods are thread-safe; they take one mutex, so
// Get*/AddCallback* are for setup time, not per request. The instruments
// themselves are lock-free (instruments.h).
//
// Errors. Misuse is a programming error and is reported by throwing at setup
// time, never by returning nullptr:
//   - std::logic_error: a name already registered with another type (a
//     histogram's name also claims <name>_bucket, <name>_sum, <name>_count);
//     a histogram series or family with different bucket bounds; a callback
//     series and a plain one with the same name and labels.
//   - std::invalid_argument (a std::logic_error): an invalid metric or label
//     name, a label name repeated in one set, "le" as a histogram label, or
//     invalid bucket bounds.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metrics/instruments.h"

namespace sluice::metrics {

// Label name/value pairs. Order does not matter: {{"a","1"},{"b","2"}} and
// {{"b","2"},{"a","1"}} name the same series, rendered sorted by label name.
using Labels = std::vector<std::pair<std::string, std::string>>;

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Get-or-create. The same name and label set return the same object. The
  // help text of the first registration of a family wins.
  Counter* GetCounter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge* GetGauge(std::string_view name, std::string_view help, const Labels& labels = {});
  // Every series of one histogram family must use the same `upper_bounds`
  // (see Histogram for their requirements).
  Histogram* GetHistogram(std::string_view name, std::string_view help, const Labels& labels,
                          const std::vector<double>& upper_bounds);

  // A gauge whose value is computed at scrape time by `fn`, which is called
  // under the registry lock: it must be cheap, must not throw and must not
  // call back into the registry. Adding the same name and labels again
  // replaces the function. Whatever `fn` captures must stay valid until
  // RemoveCallback() or the registry's destruction.
  void AddCallbackGauge(std::string_view name, std::string_view help, const Labels& labels,
                        std::function<double()> fn);
  // A counter read at scrape time by `fn` (same contract as a callback
  // gauge): for totals another component already keeps, so that they are
  // typed counter. `fn` must never decrease.
  void AddCallbackCounter(std::string_view name, std::string_view help, const Labels& labels,
                          std::function<double()> fn);
  // Removes a callback gauge or counter (for components that go away before
  // the registry). Returns false if there was none with that name and labels.
  bool RemoveCallback(std::string_view name, const Labels& labels);

  // Prometheus text exposition format 0.0.4: per family one # HELP and one
  // # TYPE line and then its series; families in registration order, series
  // in registration order within a family, labels sorted by name. Histograms
  // render as <name>_bucket{...,le="<bound>"} (cumulative, ending with
  // le="+Inf"), <name>_sum and <name>_count. Families without series are
  // skipped. Values are formatted by FormatNumber() (text_format.h).
  std::string RenderPrometheus() const;

  // One series of a family as it is now (Read()).
  struct Reading {
    Labels labels;                  // canonical (sorted by name)
    double value = 0;               // a counter's or gauge's value
    Histogram::Snapshot histogram;  // a histogram's buckets
  };
  // The series of family `name` now, in registration order (callbacks are
  // called, as by a scrape); empty when there is no such family. For
  // readers other than the text format: the dashboard's snapshot.
  std::vector<Reading> Read(std::string_view name) const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Series;
  struct Family;

  // Returns the family `name`, creating it if needed. Throws on a type or
  // name conflict. REQUIRES: mu_ held.
  Family& FamilyFor(std::string_view name, std::string_view help, Type type);
  // Returns the series with `canonical` labels (sorted and checked) in
  // `family`, creating an empty one if needed. REQUIRES: mu_ held.
  static Series& SeriesFor(Family& family, Labels canonical);
  static const char* TypeName(Type type);

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Family>> families_;        // GUARDED_BY(mu_), registration order
  std::map<std::string, Family*, std::less<>> by_name_;  // GUARDED_BY(mu_)
};

}  // namespace sluice::metrics
