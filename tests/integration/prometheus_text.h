// A reader for the Prometheus text exposition format, enough for tests:
// sample lines `name{label="value",...} number [timestamp]`; comments and
// blank lines are skipped.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::testing {

struct MetricSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Parses every sample line; nullopt when a non-comment line is malformed.
std::optional<std::vector<MetricSample>> ParsePrometheusText(std::string_view text);

// Samples named `name` whose labels include every pair in `match`.
std::vector<MetricSample> FindSamples(const std::vector<MetricSample>& samples,
                                      std::string_view name,
                                      const std::map<std::string, std::string>& match = {});

// Sum of the values of FindSamples(); nullopt when none matched.
std::optional<double> SumSamples(const std::vector<MetricSample>& samples, std::string_view name,
                                 const std::map<std::string, std::string>& match = {});

}  // namespace sluice::testing
