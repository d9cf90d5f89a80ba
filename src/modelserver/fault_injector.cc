#include "modelserver/fault_injector.h"

#include <boost/json.hpp>

namespace sluice::modelserver {

namespace json = boost::json;

Status ValidateFaults(const Faults& f) {
  if (f.added_latency_ms < 0) return InvalidArgument("faults: added_latency_ms must be >= 0");
  if (!(f.error_rate >= 0 && f.error_rate <= 1)) {
    return InvalidArgument("faults: error_rate must be between 0 and 1");
  }
  if (!(f.item_error_rate >= 0 && f.item_error_rate <= 1)) {
    return InvalidArgument("faults: item_error_rate must be between 0 and 1");
  }
  return Status::Ok();
}

std::string FaultsToJson(const Faults& f) {
  return json::serialize(json::object{{"added_latency_ms", f.added_latency_ms},
                                      {"error_rate", f.error_rate},
                                      {"item_error_rate", f.item_error_rate},
                                      {"hang", f.hang},
                                      {"close_connection", f.close_connection},
                                      {"error_message", f.error_message}});
}

Status ApplyFaultsJson(std::string_view text, Faults* faults) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return InvalidArgument("faults: body must be a JSON object");
  Faults f = *faults;
  for (const auto& [key, value] : v.as_object()) {
    if (key == "added_latency_ms") {
      const int64_t* n = value.if_int64();
      if (!n) return InvalidArgument("faults: added_latency_ms must be an integer");
      f.added_latency_ms = *n;
    } else if (key == "error_rate" || key == "item_error_rate") {
      if (!value.is_number())
        return InvalidArgument("faults: " + std::string(key) + " must be a number");
      (key == "error_rate" ? f.error_rate : f.item_error_rate) = value.to_number<double>(ec);
    } else if (key == "hang" || key == "close_connection") {
      if (!value.is_bool())
        return InvalidArgument("faults: " + std::string(key) + " must be a boolean");
      (key == "hang" ? f.hang : f.close_connection) = value.as_bool();
    } else if (key == "error_message") {
      if (!value.is_string()) return InvalidArgument("faults: error_message must be a string");
      f.error_message = std::string(value.as_string());
    } else {
      return InvalidArgument("faults: unknown field \"" + std::string(key) + "\"");
    }
  }
  if (Status s = ValidateFaults(f); !s.ok()) return s;
  *faults = f;
  return Status::Ok();
}

Faults FaultInjector::Get() const {
  std::lock_guard lock(mu_);
  return faults_;
}

void FaultInjector::Set(const Faults& faults) {
  std::lock_guard lock(mu_);
  faults_ = faults;
}

FaultDecision FaultInjector::Draw(size_t items) {
  std::lock_guard lock(mu_);
  FaultDecision d;
  d.hang = faults_.hang;
  d.close_connection = faults_.close_connection;
  d.added_latency_ms = faults_.added_latency_ms;
  d.error_message = faults_.error_message;
  d.item_errors.assign(items, false);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  // Rates of 0 and 1 draw nothing, so they are exact and leave the sequence alone.
  auto happens = [&](double p) { return p >= 1.0 || (p > 0.0 && u(rng_) < p); };
  d.batch_error = happens(faults_.error_rate);
  for (size_t i = 0; i < items; ++i) d.item_errors[i] = happens(faults_.item_error_rate);
  return d;
}

}  // namespace sluice::modelserver
