#include "http/dashboard_snapshot.h"

#include <boost/json.hpp>

namespace sluice::http {
namespace {

namespace json = boost::json;

const std::string& Label(const metrics::Labels& labels, std::string_view name) {
  static const std::string kNone = "none";
  for (const auto& [k, v] : labels) {
    if (k == name) return v;
  }
  return kNone;
}

// {outer label: {inner label: summed value}} over the family's series.
json::object SumBy(const metrics::Registry& registry, std::string_view family,
                   std::string_view outer, std::string_view inner) {
  json::object out;
  for (const metrics::Registry::Reading& r : registry.Read(family)) {
    if (r.value == 0) continue;
    json::value& group = out[Label(r.labels, outer)];
    if (!group.is_object()) group.emplace_object();
    json::value& slot = group.as_object()[Label(r.labels, inner)];
    slot = (slot.is_number() ? slot.to_number<double>() : 0.0) + r.value;
  }
  return out;
}

json::object Buckets(const metrics::Histogram::Snapshot& h) {
  json::object o;
  o["bounds"] = json::value_from(h.upper_bounds);
  o["counts"] = json::value_from(h.counts);
  return o;
}

}  // namespace

std::string DashboardSnapshotJson(const HealthSnapshot& health, const metrics::Registry& registry,
                                  int64_t unix_ms) {
  json::object o;
  o["time_ms"] = unix_ms;
  o["health"] = json::parse(HealthJson(health));
  o["requests"] = SumBy(registry, "sluice_requests_total", "tier", "status");
  o["shed"] = SumBy(registry, "sluice_shed_total", "model", "reason");

  metrics::Histogram::Snapshot latency;
  for (const metrics::Registry::Reading& r : registry.Read("sluice_request_duration_seconds")) {
    if (latency.counts.empty()) latency.upper_bounds = r.histogram.upper_bounds;
    latency.counts.resize(r.histogram.counts.size());
    for (size_t i = 0; i < r.histogram.counts.size(); ++i)
      latency.counts[i] += r.histogram.counts[i];
  }
  o["latency"] = Buckets(latency);

  json::object batch_size;
  for (const metrics::Registry::Reading& r : registry.Read("sluice_batch_size")) {
    batch_size[Label(r.labels, "model")] = Buckets(r.histogram);
  }
  o["batch_size"] = std::move(batch_size);
  return json::serialize(o);
}

}  // namespace sluice::http
