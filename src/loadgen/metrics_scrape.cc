#include "loadgen/metrics_scrape.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>

namespace sluice::loadgen {
namespace {

constexpr std::string_view kBucket = "sluice_batch_size_bucket";
constexpr std::string_view kSum = "sluice_batch_size_sum";
constexpr std::string_view kCount = "sluice_batch_size_count";
constexpr std::string_view kUtilization = "sluice_accelerator_utilization";

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == ':';
}

bool ParseValue(std::string_view s, double* out) {
  if (s == "+Inf" || s == "Inf") {
    *out = std::numeric_limits<double>::infinity();
    return true;
  }
  if (s == "-Inf") {
    *out = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (s == "NaN") {
    *out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

// Parses `{a="x",b="y"}` at the start of *s (consumed). False if malformed.
bool ParseLabels(std::string_view* s, std::map<std::string, std::string>* labels) {
  std::string_view in = *s;
  in.remove_prefix(1);  // '{'
  while (true) {
    while (!in.empty() && (in.front() == ' ' || in.front() == ',')) in.remove_prefix(1);
    if (in.empty()) return false;
    if (in.front() == '}') {
      in.remove_prefix(1);
      *s = in;
      return true;
    }
    size_t n = 0;
    while (n < in.size() && IsNameChar(in[n])) ++n;
    if (n == 0 || n + 1 >= in.size() || in[n] != '=' || in[n + 1] != '"') return false;
    std::string name(in.substr(0, n));
    in.remove_prefix(n + 2);
    std::string value;
    while (true) {
      if (in.empty()) return false;
      const char c = in.front();
      in.remove_prefix(1);
      if (c == '"') break;
      if (c == '\\') {
        if (in.empty()) return false;
        const char e = in.front();
        in.remove_prefix(1);
        value.push_back(e == 'n' ? '\n' : e);
      } else {
        value.push_back(c);
      }
    }
    (*labels)[std::move(name)] = std::move(value);
  }
}

}  // namespace

Result<GatewaySnapshot> ParseGatewayMetrics(std::string_view text) {
  GatewaySnapshot snap;
  int line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    size_t n = 0;
    while (n < line.size() && IsNameChar(line[n])) ++n;
    const std::string_view name = line.substr(0, n);
    if (name != kBucket && name != kSum && name != kCount && name != kUtilization) continue;

    const auto bad = [&](const char* why) {
      return InvalidArgument("/metrics line " + std::to_string(line_no) + " (" + std::string(name) +
                             "): " + why);
    };
    std::string_view rest = line.substr(n);
    std::map<std::string, std::string> labels;
    if (!rest.empty() && rest.front() == '{' && !ParseLabels(&rest, &labels)) {
      return bad("malformed labels");
    }
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    const std::string_view value_text = rest.substr(0, rest.find(' '));
    double value = 0;
    if (!ParseValue(value_text, &value)) return bad("malformed value");

    GatewaySnapshot::Model& model = snap.models[labels["model"]];
    if (name == kBucket) {
      auto le = labels.find("le");
      double bound = 0;
      if (le == labels.end() || !ParseValue(le->second, &bound)) return bad("missing or bad `le`");
      model.batch_buckets.emplace_back(bound, value);
    } else if (name == kSum) {
      model.batch_sum = value;
    } else if (name == kCount) {
      model.batch_count = value;
    } else {
      model.utilization = value;
    }
  }
  for (auto& [_, model] : snap.models) {
    std::sort(model.batch_buckets.begin(), model.batch_buckets.end());
  }
  return snap;
}

std::vector<ModelGatewayDelta> DiffGateway(const GatewaySnapshot& before,
                                           const GatewaySnapshot& after) {
  static const GatewaySnapshot::Model kEmpty;
  std::vector<ModelGatewayDelta> out;
  for (const auto& [name, a] : after.models) {
    auto it = before.models.find(name);
    const GatewaySnapshot::Model& b = it == before.models.end() ? kEmpty : it->second;
    const bool restarted = a.batch_count < b.batch_count;
    const GatewaySnapshot::Model& base = restarted ? kEmpty : b;

    ModelGatewayDelta d;
    d.model = name;
    d.batches = a.batch_count - base.batch_count;
    d.batched_requests = a.batch_sum - base.batch_sum;
    d.mean_batch_size = d.batches > 0 ? d.batched_requests / d.batches : 0;
    d.utilization_before = b.utilization;
    d.utilization_after = a.utilization;
    double prev_after = 0, prev_before = 0;
    for (const auto& [le, cumulative] : a.batch_buckets) {
      double before_cumulative = 0;
      for (const auto& [ble, bc] : base.batch_buckets) {
        if (ble == le) before_cumulative = bc;
      }
      const double in_bucket = (cumulative - prev_after) - (before_cumulative - prev_before);
      d.batch_sizes.push_back({le, std::max(0.0, in_bucket)});
      prev_after = cumulative;
      prev_before = before_cumulative;
    }
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace sluice::loadgen
