#include "redis/request_codec.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <map>
#include <mutex>
#include <set>

namespace sluice::redis {
namespace {

namespace json = boost::json;

Status Bad(std::string_view what, std::string_view field) {
  return InvalidArgument(std::string(what) + ": field \"" + std::string(field) +
                         "\" missing or of the wrong type");
}

// Readers: false when the field is present with the wrong type, or absent
// and required.
bool GetString(const json::object& o, std::string_view key, std::string* out, bool required) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return !required;
  const json::string* s = v->if_string();
  if (s == nullptr) return false;
  out->assign(s->data(), s->size());
  return true;
}

template <typename Int>
bool GetInt(const json::object& o, std::string_view key, Int* out, bool required) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return !required;
  if (const int64_t* i = v->if_int64()) {
    *out = static_cast<Int>(*i);
    return true;
  }
  if (const uint64_t* u = v->if_uint64()) {
    *out = static_cast<Int>(*u);
    return true;
  }
  return false;
}

Result<json::object> ParseObject(std::string_view text, std::string_view what) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return InvalidArgument(std::string(what) + ": invalid JSON: " + ec.message());
  json::object* o = v.if_object();
  if (o == nullptr) return InvalidArgument(std::string(what) + ": not a JSON object");
  return std::move(*o);
}

// The inverse of ErrorCodeName(); names this build does not know (a newer
// worker) become kInternal, so the answer still reaches its client.
ErrorCode CodeFromName(std::string_view name) {
  static const std::map<std::string, ErrorCode, std::less<>>* codes = [] {
    auto* m = new std::map<std::string, ErrorCode, std::less<>>();
    // ErrorCodeName() maps values past the last code to "internal"; the
    // first value with a name wins.
    for (int i = 0; i < 64; ++i)
      m->emplace(ErrorCodeName(static_cast<ErrorCode>(i)), static_cast<ErrorCode>(i));
    return m;
  }();
  auto it = codes->find(name);
  return it == codes->end() ? ErrorCode::kInternal : it->second;
}

json::object ResultObject(const WireResult& r) {
  json::object o;
  o["id"] = r.id;
  o["c"] = ErrorCodeName(r.code);
  if (!r.message.empty()) o["msg"] = r.message;
  if (!r.output.empty()) o["out"] = r.output;
  if (r.tokens_used != 0) o["tok"] = r.tokens_used;
  if (!r.model_version.empty()) o["mv"] = r.model_version;
  if (r.batch_id != 0) o["b"] = r.batch_id;
  if (r.batch_size != 0) o["bs"] = r.batch_size;
  if (!r.reason.empty()) o["r"] = r.reason;
  if (r.queue_wait_us != 0) o["qw"] = r.queue_wait_us;
  if (r.accelerator_us != 0) o["acc"] = r.accelerator_us;
  if (!r.worker_id.empty()) o["w"] = r.worker_id;
  return o;
}

Result<WireResult> ResultFromObject(const json::object& o) {
  constexpr std::string_view kWhat = "result";
  WireResult r;
  std::string code;
  if (!GetString(o, "id", &r.id, true)) return Bad(kWhat, "id");
  if (!GetString(o, "c", &code, true)) return Bad(kWhat, "c");
  r.code = CodeFromName(code);
  if (!GetString(o, "msg", &r.message, false)) return Bad(kWhat, "msg");
  if (!GetString(o, "out", &r.output, false)) return Bad(kWhat, "out");
  if (!GetInt(o, "tok", &r.tokens_used, false)) return Bad(kWhat, "tok");
  if (!GetString(o, "mv", &r.model_version, false)) return Bad(kWhat, "mv");
  if (!GetInt(o, "b", &r.batch_id, false)) return Bad(kWhat, "b");
  if (!GetInt(o, "bs", &r.batch_size, false)) return Bad(kWhat, "bs");
  if (!GetString(o, "r", &r.reason, false)) return Bad(kWhat, "r");
  if (!GetInt(o, "qw", &r.queue_wait_us, false)) return Bad(kWhat, "qw");
  if (!GetInt(o, "acc", &r.accelerator_us, false)) return Bad(kWhat, "acc");
  if (!GetString(o, "w", &r.worker_id, false)) return Bad(kWhat, "w");
  return r;
}

// Reasons are `const char*` in InferenceOutcome: remote ones are interned.
const char* InternReason(const std::string& reason) {
  static std::mutex mu;
  static std::set<std::string>* interned = new std::set<std::string>();
  std::lock_guard lock(mu);
  auto it = interned->find(reason);
  if (it != interned->end()) return it->c_str();
  if (interned->size() >= 256) return nullptr;
  return interned->insert(reason).first->c_str();
}

}  // namespace

std::string EncodeRequest(const WireRequest& r) {
  json::object o;
  o["id"] = r.id;
  o["gw"] = r.gateway_id;
  o["key"] = r.key_id;
  o["t"] = r.tier;
  o["tn"] = r.tier_name;
  o["m"] = r.model;
  o["in"] = r.input;
  o["mt"] = r.max_tokens;
  if (r.temperature.has_value()) o["temp"] = *r.temperature;
  if (!r.params_json.empty()) o["p"] = r.params_json;
  o["ar"] = r.arrival_us;
  o["dd"] = r.dispatch_deadline_us;
  o["td"] = r.total_deadline_us;
  o["ct"] = r.charged_tokens;
  return json::serialize(o);
}

Result<WireRequest> DecodeRequest(std::string_view text) {
  constexpr std::string_view kWhat = "request";
  Result<json::object> parsed = ParseObject(text, kWhat);
  if (!parsed.ok()) return parsed.status();
  const json::object& o = *parsed;
  WireRequest r;
  if (!GetString(o, "id", &r.id, true)) return Bad(kWhat, "id");
  if (!GetString(o, "gw", &r.gateway_id, true)) return Bad(kWhat, "gw");
  if (!GetString(o, "key", &r.key_id, true)) return Bad(kWhat, "key");
  if (!GetInt(o, "t", &r.tier, true)) return Bad(kWhat, "t");
  if (!GetString(o, "tn", &r.tier_name, true)) return Bad(kWhat, "tn");
  if (!GetString(o, "m", &r.model, true)) return Bad(kWhat, "m");
  if (!GetString(o, "in", &r.input, true)) return Bad(kWhat, "in");
  if (!GetInt(o, "mt", &r.max_tokens, true)) return Bad(kWhat, "mt");
  if (const json::value* t = o.if_contains("temp")) {
    if (!t->is_number()) return Bad(kWhat, "temp");
    r.temperature = t->to_number<double>();
  }
  if (!GetString(o, "p", &r.params_json, false)) return Bad(kWhat, "p");
  if (!GetInt(o, "ar", &r.arrival_us, true)) return Bad(kWhat, "ar");
  if (!GetInt(o, "dd", &r.dispatch_deadline_us, true)) return Bad(kWhat, "dd");
  if (!GetInt(o, "td", &r.total_deadline_us, true)) return Bad(kWhat, "td");
  if (!GetInt(o, "ct", &r.charged_tokens, false)) return Bad(kWhat, "ct");
  return r;
}

std::string EncodeResult(const WireResult& result) { return json::serialize(ResultObject(result)); }

Result<WireResult> DecodeResult(std::string_view text) {
  Result<json::object> parsed = ParseObject(text, "result");
  if (!parsed.ok()) return parsed.status();
  return ResultFromObject(*parsed);
}

Result<std::vector<WireResult>> DecodeResultBatch(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return InvalidArgument("result batch: invalid JSON: " + ec.message());
  const json::array* a = v.if_array();
  if (a == nullptr) return InvalidArgument("result batch: not a JSON array");
  std::vector<WireResult> results;
  results.reserve(a->size());
  for (const json::value& item : *a) {
    const json::object* o = item.if_object();
    if (o == nullptr) return InvalidArgument("result batch: an item is not an object");
    Result<WireResult> r = ResultFromObject(*o);
    if (!r.ok()) return r.status();
    results.push_back(std::move(r).value());
  }
  return results;
}

WallClockAnchor WallClockAnchor::Now(const Clock& clock) {
  WallClockAnchor a;
  a.steady = clock.Now();
  a.epoch_us = std::chrono::duration_cast<std::chrono::microseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  return a;
}

WireRequest ToWireRequest(const InferenceRequest& request, std::string_view gateway_id,
                          const WallClockAnchor& now) {
  WireRequest w;
  w.id = request.id;
  w.gateway_id = std::string(gateway_id);
  w.key_id = request.principal.key_id;
  w.tier = request.principal.tier;
  w.tier_name = request.principal.tier_name;
  w.model = request.model;
  w.input = request.input;
  w.max_tokens = request.params.max_tokens;
  w.temperature = request.params.temperature;
  w.params_json = request.params.json;
  w.arrival_us = now.ToEpochUs(request.arrival);
  w.dispatch_deadline_us = now.ToEpochUs(request.dispatch_deadline);
  w.total_deadline_us = now.ToEpochUs(request.total_deadline);
  w.charged_tokens = request.charged_tokens;
  return w;
}

RequestPtr FromWireRequest(const WireRequest& wire, const WallClockAnchor& now) {
  auto r = std::make_shared<InferenceRequest>();
  r->id = wire.id;
  r->principal.key_id = wire.key_id;
  r->principal.tier = static_cast<TierIndex>(wire.tier);
  r->principal.tier_name = wire.tier_name;
  r->model = wire.model;
  r->input = wire.input;
  r->params.max_tokens = wire.max_tokens;
  r->params.temperature = wire.temperature;
  r->params.json = wire.params_json;
  r->arrival = now.ToSteady(wire.arrival_us);
  r->dispatch_deadline = now.ToSteady(wire.dispatch_deadline_us);
  r->total_deadline = now.ToSteady(wire.total_deadline_us);
  r->charged_tokens = wire.charged_tokens;
  return r;
}

WireResult ToWireResult(std::string_view id, const InferenceOutcome& outcome,
                        std::string_view worker_id) {
  WireResult w;
  w.id = std::string(id);
  w.code = outcome.status.code();
  w.message = outcome.status.message();
  w.output = outcome.output;
  w.tokens_used = outcome.tokens_used;
  w.model_version = outcome.model_version;
  w.batch_id = outcome.batch_id;
  w.batch_size = outcome.batch_size;
  if (outcome.reason != nullptr) w.reason = outcome.reason;
  w.queue_wait_us = ToMicros(outcome.queue_wait);
  w.accelerator_us = ToMicros(outcome.accelerator_time);
  w.worker_id = std::string(worker_id);
  return w;
}

InferenceOutcome ToOutcome(const WireResult& result) {
  InferenceOutcome o;
  o.status = result.code == ErrorCode::kOk ? Status::Ok() : Status(result.code, result.message);
  o.output = result.output;
  o.tokens_used = result.tokens_used;
  o.model_version = result.model_version;
  o.batch_id = result.batch_id;
  o.batch_size = result.batch_size;
  if (!result.reason.empty()) o.reason = InternReason(result.reason);
  o.queue_wait = Micros(result.queue_wait_us);
  o.accelerator_time = Micros(result.accelerator_us);
  return o;
}

}  // namespace sluice::redis
