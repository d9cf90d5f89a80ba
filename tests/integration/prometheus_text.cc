#include "tests/integration/prometheus_text.h"

#include <cmath>
#include <cstdlib>

namespace sluice::testing {
namespace {

bool IsNameChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

std::optional<double> ParseValue(std::string_view s) {
  if (s == "+Inf") return HUGE_VAL;
  if (s == "-Inf") return -HUGE_VAL;
  if (s == "NaN") return NAN;
  std::string copy(s);
  char* end = nullptr;
  double v = std::strtod(copy.c_str(), &end);
  if (copy.empty() || end != copy.c_str() + copy.size()) return std::nullopt;
  return v;
}

// Parses `name{labels} value [ts]`.
std::optional<MetricSample> ParseLine(std::string_view line) {
  MetricSample s;
  size_t i = 0;
  while (i < line.size() && IsNameChar(line[i], i == 0)) ++i;
  if (i == 0) return std::nullopt;
  s.name = std::string(line.substr(0, i));
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      size_t start = i;
      while (i < line.size() && IsNameChar(line[i], i == start)) ++i;
      std::string key(line.substr(start, i - start));
      if (key.empty() || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') {
        return std::nullopt;
      }
      i += 2;
      std::string value;
      while (i < line.size() && line[i] != '"') {
        if (line[i] == '\\' && i + 1 < line.size()) {
          ++i;
          value.push_back(line[i] == 'n' ? '\n' : line[i]);
        } else {
          value.push_back(line[i]);
        }
        ++i;
      }
      if (i >= line.size()) return std::nullopt;
      ++i;  // closing quote
      s.labels[key] = value;
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return std::nullopt;
    ++i;  // '}'
  }
  while (i < line.size() && line[i] == ' ') ++i;
  size_t end = line.find(' ', i);
  std::optional<double> value = ParseValue(line.substr(i, end - i));
  if (!value) return std::nullopt;
  s.value = *value;
  return s;
}

}  // namespace

std::optional<std::vector<MetricSample>> ParsePrometheusText(std::string_view text) {
  std::vector<MetricSample> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    std::optional<MetricSample> s = ParseLine(line);
    if (!s) return std::nullopt;
    out.push_back(std::move(*s));
  }
  return out;
}

std::vector<MetricSample> FindSamples(const std::vector<MetricSample>& samples,
                                      std::string_view name,
                                      const std::map<std::string, std::string>& match) {
  std::vector<MetricSample> out;
  for (const MetricSample& s : samples) {
    if (s.name != name) continue;
    bool all = true;
    for (const auto& [k, v] : match) {
      auto it = s.labels.find(k);
      if (it == s.labels.end() || it->second != v) {
        all = false;
        break;
      }
    }
    if (all) out.push_back(s);
  }
  return out;
}

std::optional<double> SumSamples(const std::vector<MetricSample>& samples, std::string_view name,
                                 const std::map<std::string, std::string>& match) {
  std::vector<MetricSample> found = FindSamples(samples, name, match);
  if (found.empty()) return std::nullopt;
  double sum = 0;
  for (const MetricSample& s : found) sum += s.value;
  return sum;
}

}  // namespace sluice::testing
