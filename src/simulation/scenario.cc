#include "simulation/scenario.h"

#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "common/text.h"
#include "loadgen/workload.h"

namespace sluice {

namespace {

bool ParseInt(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool ParseNumber(std::string_view s, double* out) {
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && std::isfinite(*out);
}

// `T` or `T1-T2` (durations) into seconds; *end_s = -1 without a range.
Status ParseTimeRange(std::string_view text, std::string_view what, double* start_s,
                      double* end_s) {
  const std::vector<std::string_view> parts = SplitView(text, '-');
  if (parts.size() > 2) {
    return InvalidArgument(fmt::format("{}: expected TIME or T1-T2, got `{}`", what, text));
  }
  auto start = loadgen::ParseDurationUs(parts[0], what);
  if (!start.ok()) return start.status();
  *start_s = static_cast<double>(*start) / 1e6;
  *end_s = -1;
  if (parts.size() == 2) {
    auto end = loadgen::ParseDurationUs(parts[1], what);
    if (!end.ok()) return end.status();
    *end_s = static_cast<double>(*end) / 1e6;
    if (*end_s <= *start_s) {
      return InvalidArgument(fmt::format("{}: `{}` ends before it starts", what, text));
    }
  }
  return Status::Ok();
}

Status ParseDevices(std::string_view text, std::string_view what, ScenarioEvent* e) {
  if (text.empty() || text == "all") {
    e->first_device = 0;
    e->last_device = -1;
    return Status::Ok();
  }
  const std::vector<std::string_view> parts = SplitView(text, '-');
  int64_t first = 0, last = 0;
  if (parts.size() > 2 || !ParseInt(parts[0], &first) ||
      !ParseInt(parts.size() == 2 ? parts[1] : parts[0], &last) || first < 0 || last < first ||
      last > 1'000'000) {
    return InvalidArgument(
        fmt::format("{}: devices must be N, N-M (N <= M) or all, got `{}`", what, text));
  }
  e->first_device = static_cast<int>(first);
  e->last_device = static_cast<int>(last);
  return Status::Ok();
}

DeviceAction Inverse(DeviceAction a) {
  switch (a) {
    case DeviceAction::kDown:
      return DeviceAction::kUp;
    case DeviceAction::kUp:
      return DeviceAction::kDown;
    case DeviceAction::kDisable:
      return DeviceAction::kEnable;
    case DeviceAction::kEnable:
      return DeviceAction::kDisable;
  }
  return DeviceAction::kUp;
}

}  // namespace

const char* ArrivalKindName(ArrivalKind kind) {
  switch (kind) {
    case ArrivalKind::kConstant:
      return "constant";
    case ArrivalKind::kPoisson:
      return "poisson";
    case ArrivalKind::kBursty:
      return "bursty";
  }
  return "?";
}

Result<ArrivalKind> ParseArrivalKind(std::string_view text) {
  if (text == "constant") return ArrivalKind::kConstant;
  if (text == "poisson") return ArrivalKind::kPoisson;
  if (text == "bursty") return ArrivalKind::kBursty;
  return InvalidArgument(
      fmt::format("--arrivals: expected constant, poisson or bursty, got `{}`", text));
}

const char* DeviceActionName(DeviceAction action) {
  switch (action) {
    case DeviceAction::kDown:
      return "down";
    case DeviceAction::kUp:
      return "up";
    case DeviceAction::kDisable:
      return "disable";
    case DeviceAction::kEnable:
      return "enable";
  }
  return "?";
}

Status ValidateScenario(const Scenario& s) {
  auto bad = [](std::string_view field, std::string_view rule, auto value) {
    return InvalidArgument(fmt::format("scenario.{}: must be {}, got {}", field, rule, value));
  };
  if (!(s.duration_s > 0)) return bad("duration_s", "> 0", s.duration_s);
  if (!(s.warmup_s >= 0 && s.warmup_s < s.duration_s)) {
    return bad("warmup_s", "in [0, duration_s)", s.warmup_s);
  }
  if (!(s.rate_rps >= 0) || !std::isfinite(s.rate_rps)) return bad("rate_rps", ">= 0", s.rate_rps);
  double total = 0;
  for (const TierShare& t : s.mix) {
    if (t.tier.empty()) return bad("mix", "tier names", "an empty name");
    if (!(t.weight >= 0)) return bad("mix." + t.tier, ">= 0", t.weight);
    total += t.weight;
  }
  if (s.rate_rps > 0 && !(total > 0)) return bad("mix", "a positive total weight", total);
  if (!(s.burst_factor >= 1)) return bad("burst_factor", ">= 1", s.burst_factor);
  if (!(s.burst_on_fraction > 0 && s.burst_on_fraction < 1)) {
    return bad("burst_on_fraction", "in (0, 1)", s.burst_on_fraction);
  }
  if (s.burst_factor * s.burst_on_fraction > 1 + 1e-9) {
    return bad("burst_factor * burst_on_fraction", "<= 1", s.burst_factor * s.burst_on_fraction);
  }
  if (!(s.burst_period_s > 0)) return bad("burst_period_s", "> 0", s.burst_period_s);
  if (s.input_bytes < 17) return bad("input_bytes", ">= 17", s.input_bytes);
  if (s.max_tokens < 1) return bad("max_tokens", ">= 1", s.max_tokens);
  if (!(s.drain_s >= 0)) return bad("drain_s", ">= 0", s.drain_s);
  for (const ScenarioEvent& e : s.events) {
    if (!(e.at_s >= 0)) return bad("events.at_s", ">= 0", e.at_s);
    if (e.first_device < 0) return bad("events.first_device", ">= 0", e.first_device);
    if (e.last_device != -1 && e.last_device < e.first_device) {
      return bad("events.last_device", ">= first_device or -1", e.last_device);
    }
  }
  for (const HostileClient& h : s.hostile) {
    if (!(h.rate_rps > 0)) return bad("hostile.rate_rps", "> 0", h.rate_rps);
    if (h.deadline_ms <= 0) return bad("hostile.deadline_ms", "> 0", h.deadline_ms);
    if (!(h.start_s >= 0)) return bad("hostile.start_s", ">= 0", h.start_s);
    if (h.end_s >= 0 && h.end_s <= h.start_s) return bad("hostile.end_s", "> start_s", h.end_s);
  }
  return Status::Ok();
}

Status ParseEvent(std::string_view text, std::vector<ScenarioEvent>* events) {
  const std::string what = fmt::format("--event `{}`", text);
  const std::vector<std::string_view> parts = SplitView(text, ':');
  if (parts.size() < 2 || parts.size() > 3) {
    return InvalidArgument(what + ": expected TIME:ACTION[:DEVICES]");
  }
  double start_s = 0, end_s = -1;
  if (Status st = ParseTimeRange(parts[0], what, &start_s, &end_s); !st.ok()) return st;
  ScenarioEvent e;
  e.at_s = start_s;
  const std::string_view action = parts[1];
  if (action == "down" || action == "outage") {
    e.action = DeviceAction::kDown;
  } else if (action == "up") {
    e.action = DeviceAction::kUp;
  } else if (action == "disable") {
    e.action = DeviceAction::kDisable;
  } else if (action == "enable") {
    e.action = DeviceAction::kEnable;
  } else {
    return InvalidArgument(what + ": ACTION must be down, up, disable, enable or outage, got `" +
                           std::string(action) + "`");
  }
  if (action == "outage" && parts.size() == 3) {
    return InvalidArgument(what + ": an outage takes every device down; name no devices");
  }
  if (Status st = ParseDevices(parts.size() == 3 ? parts[2] : "all", what, &e); !st.ok()) {
    return st;
  }
  events->push_back(e);
  if (end_s >= 0) {
    ScenarioEvent undo = e;
    undo.at_s = end_s;
    undo.action = Inverse(e.action);
    events->push_back(undo);
  }
  return Status::Ok();
}

Result<HostileClient> ParseHostile(std::string_view text) {
  const std::string what = fmt::format("--hostile `{}`", text);
  const std::vector<std::string_view> parts = SplitView(text, ':');
  HostileClient h;
  int64_t deadline_ms = 0;
  if (parts.size() < 2 || parts.size() > 3 || !ParseNumber(parts[0], &h.rate_rps) ||
      !(h.rate_rps > 0) || !ParseInt(parts[1], &deadline_ms) || deadline_ms <= 0) {
    return InvalidArgument(what +
                           ": expected RATE:DEADLINE_MS[:T1-T2] with RATE > 0 requests/s and "
                           "DEADLINE_MS > 0, e.g. 40:5");
  }
  h.deadline_ms = deadline_ms;
  if (parts.size() == 3) {
    if (Status st = ParseTimeRange(parts[2], what, &h.start_s, &h.end_s); !st.ok()) return st;
  }
  return h;
}

Result<double> ParseDurationS(std::string_view text, std::string_view what) {
  if (!text.empty() && text.back() == 'h') {
    double hours = 0;
    if (!ParseNumber(text.substr(0, text.size() - 1), &hours) || hours < 0 || hours > 1e4) {
      return InvalidArgument(fmt::format(
          "{}: expected a duration such as 90s, 500ms, 2m or 1h, got `{}`", what, text));
    }
    return hours * 3600;
  }
  auto us = loadgen::ParseDurationUs(text, what);
  if (!us.ok()) return us.status();
  return static_cast<double>(*us) / 1e6;
}

Result<std::vector<TierShare>> ParseMix(std::string_view text) {
  auto list = loadgen::ParseWeightedList(text, /*weight_optional=*/false, "--mix");
  if (!list.ok()) return list.status();
  std::vector<TierShare> mix;
  for (const loadgen::WeightedName& w : *list) mix.push_back({w.name, w.weight});
  return mix;
}

std::string FormatMix(const std::vector<TierShare>& mix) {
  double total = 0;
  for (const TierShare& t : mix) total += t.weight;
  std::string out;
  for (const TierShare& t : mix) {
    if (!out.empty()) out += ",";
    out += fmt::format("{}={:.3g}", t.tier, total > 0 ? t.weight / total : 0.0);
  }
  return out;
}

}  // namespace sluice
