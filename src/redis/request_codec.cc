#include "redis/request_codec.h"

#include <algorithm>

#include <fmt/format.h>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <boost/json/parse_options.hpp>

#include <charconv>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <set>

#include "common/json_writer.h"
#include "common/utf8.h"

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

// Text for a JSON string: valid UTF-8, so that every reader can parse it
// (a backend's bytes are not necessarily UTF-8). Copies only when invalid.
void MakeValid(std::string* s) {
  if (!IsValidUtf8(*s)) *s = SanitizeUtf8(*s);
}

// Strict first (the normal case: our encoders write valid UTF-8). A message
// holding invalid UTF-8 (an older or foreign encoder) is parsed again with
// allow_invalid_utf8, and *lenient tells the caller to make its strings
// valid: one bad string must never lose a whole message.
json::value Parse(std::string_view text, boost::system::error_code& ec, bool* lenient) {
  *lenient = false;
  json::value v = json::parse(text, ec);
  if (!ec) return v;
  json::parse_options options;
  options.allow_invalid_utf8 = true;
  boost::system::error_code lenient_ec;
  json::value again = json::parse(text, lenient_ec, {}, options);
  if (lenient_ec) return v;  // not a UTF-8 problem: report the strict error
  ec = {};
  *lenient = true;
  return again;
}

Result<json::object> ParseObject(std::string_view text, std::string_view what, bool* lenient) {
  boost::system::error_code ec;
  json::value v = Parse(text, ec, lenient);
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

Result<WireResult> ResultFromObject(const json::object& o, bool lenient) {
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
  if (!GetString(o, "dt", &r.detail, false)) return Bad(kWhat, "dt");
  if (lenient) {
    for (std::string* s :
         {&r.id, &r.message, &r.output, &r.model_version, &r.reason, &r.worker_id, &r.detail}) {
      MakeValid(s);
    }
  }
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

// The encoders write their text directly (JsonObjectWriter): one runs per
// request on a gateway and one per result on a worker, and a json::object
// would allocate per member.
namespace {
// An entry's payload: the request's fields that the entry's prefix, its
// hash field (the id) and its key (the model) do not hold already.
void AppendPayload(std::string& out, const WireRequest& r) {
  JsonObjectWriter o(out);
  o.String("key", r.key_id).String("tn", r.tier_name).String("in", r.input);
  o.Int("mt", r.max_tokens);
  if (r.temperature.has_value()) o.Double("temp", *r.temperature);
  if (!r.params_json.empty()) o.String("p", r.params_json);
  o.Int("td", r.total_deadline_us);
  o.Int("ct", r.charged_tokens);
  if (r.tokens_per_minute > 0) o.Int("tpm", r.tokens_per_minute);
  if (r.async) o.Int("as", 1);
  if (!r.traceparent.empty()) o.String("tp", r.traceparent);
  o.Close();
}

// The prefix's decimal field `text` as a T, or false.
template <typename T>
bool ParseDecimal(std::string_view text, T* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}
}  // namespace

std::string EncodeEntry(const WireRequest& r) {
  std::string entry;
  entry.reserve(224 + r.input.size() + r.params_json.size());
  fmt::format_to(std::back_inserter(entry), "{}|{}|{}|0|{}|", r.tier, r.dispatch_deadline_us,
                 r.arrival_us, r.gateway_id);
  AppendPayload(entry, r);
  return entry;
}

Result<WireRequest> DecodeEntry(std::string_view entry, std::string_view id,
                                std::string_view model) {
  // Five '|'-terminated fields: tier, dispatch deadline, arrival, attempts,
  // gateway.
  std::string_view rest = entry;
  std::string_view fields[5];
  for (std::string_view& f : fields) {
    const size_t bar = rest.find('|');
    if (bar == std::string_view::npos) return InvalidArgument("queue entry: malformed prefix");
    f = rest.substr(0, bar);
    rest.remove_prefix(bar + 1);
  }
  WireRequest r;
  auto malformed = [](const char* field) {
    return InvalidArgument(std::string("queue entry: malformed ") + field);
  };
  if (!ParseDecimal(fields[0], &r.tier)) return malformed("tier");
  if (!ParseDecimal(fields[1], &r.dispatch_deadline_us)) return malformed("dispatch deadline");
  if (!ParseDecimal(fields[2], &r.arrival_us)) return malformed("arrival");
  if (!ParseDecimal(fields[3], &r.attempts)) return malformed("attempts");
  // Wall-clock microseconds since 1970, before the year 2096: anything else
  // is corrupt (and would overflow when turned into a steady time point).
  constexpr int64_t kMaxEpochUs = 4'000'000'000'000'000;
  for (auto [name, v] :
       {std::pair<const char*, int64_t>{"dispatch deadline", r.dispatch_deadline_us},
        {"arrival", r.arrival_us}}) {
    if (v < 0 || v > kMaxEpochUs) return malformed(name);
  }
  // The gateway id (its result channel), the id (the hash field) and the
  // model (the key) are kept byte for byte: they name things in Redis.
  r.gateway_id = std::string(fields[4]);
  r.id = std::string(id);
  r.model = std::string(model);

  constexpr std::string_view kPayload = "request";
  bool lenient = false;
  Result<json::object> parsed = ParseObject(rest, kPayload, &lenient);
  if (!parsed.ok()) return parsed.status();
  const json::object& o = *parsed;
  if (!GetString(o, "key", &r.key_id, true)) return Bad(kPayload, "key");
  if (!GetString(o, "tn", &r.tier_name, true)) return Bad(kPayload, "tn");
  if (!GetString(o, "in", &r.input, true)) return Bad(kPayload, "in");
  if (!GetInt(o, "mt", &r.max_tokens, true)) return Bad(kPayload, "mt");
  if (const json::value* t = o.if_contains("temp")) {
    // 0..2, as every front door checks. Kept to 6 decimals: Boost.JSON's
    // number parsing is not always correctly rounded, so a full-precision
    // value could read back as a neighbouring double and an entry would not
    // encode the same twice; 6 decimals are a fixed point of write + read.
    if (!t->is_number()) return Bad(kPayload, "temp");
    const double temperature = t->to_number<double>();
    if (!(temperature >= 0 && temperature <= 2)) return Bad(kPayload, "temp");
    r.temperature = std::round(temperature * 1e6) / 1e6;
  }
  if (!GetString(o, "p", &r.params_json, false)) return Bad(kPayload, "p");
  if (!GetInt(o, "td", &r.total_deadline_us, true)) return Bad(kPayload, "td");
  if (r.total_deadline_us < 0 || r.total_deadline_us > kMaxEpochUs) return Bad(kPayload, "td");
  if (!GetInt(o, "ct", &r.charged_tokens, false)) return Bad(kPayload, "ct");
  if (!GetInt(o, "tpm", &r.tokens_per_minute, false) || r.tokens_per_minute < 0) {
    return Bad(kPayload, "tpm");
  }
  // A hint for scheduling: any non-zero integer is async.
  int64_t async = 0;
  if (!GetInt(o, "as", &async, false)) return Bad(kPayload, "as");
  r.async = async != 0;
  if (!GetString(o, "tp", &r.traceparent, false)) return Bad(kPayload, "tp");
  if (!r.traceparent.empty() && !tracing::ParseTraceparent(r.traceparent)) r.traceparent.clear();
  if (lenient) {
    for (std::string* s : {&r.key_id, &r.tier_name, &r.input, &r.params_json}) MakeValid(s);
  }
  return r;
}

std::string EncodeResult(const WireResult& r) {
  std::string out;
  out.reserve(160 + r.output.size() + r.message.size() + r.detail.size());
  JsonObjectWriter o(out);
  o.String("id", r.id).String("c", ErrorCodeName(r.code));
  if (!r.message.empty()) o.String("msg", r.message);
  if (!r.output.empty()) o.String("out", r.output);
  if (r.tokens_used != 0) o.Int("tok", r.tokens_used);
  if (!r.model_version.empty()) o.String("mv", r.model_version);
  if (r.batch_id != 0) o.Uint("b", r.batch_id);
  if (r.batch_size != 0) o.Uint("bs", r.batch_size);
  if (!r.reason.empty()) o.String("r", r.reason);
  if (r.queue_wait_us != 0) o.Int("qw", r.queue_wait_us);
  if (r.accelerator_us != 0) o.Int("acc", r.accelerator_us);
  if (!r.worker_id.empty()) o.String("w", r.worker_id);
  if (!r.detail.empty()) o.String("dt", r.detail);
  o.Close();
  return out;
}

Result<WireResult> DecodeResult(std::string_view text) {
  bool lenient = false;
  Result<json::object> parsed = ParseObject(text, "result", &lenient);
  if (!parsed.ok()) return parsed.status();
  return ResultFromObject(*parsed, lenient);
}

Result<std::vector<WireResult>> DecodeResultBatch(std::string_view text, size_t* bad_items) {
  if (bad_items != nullptr) *bad_items = 0;
  boost::system::error_code ec;
  bool lenient = false;
  json::value v = Parse(text, ec, &lenient);
  if (ec) return InvalidArgument("result batch: invalid JSON: " + ec.message());
  const json::array* a = v.if_array();
  if (a == nullptr) return InvalidArgument("result batch: not a JSON array");
  std::vector<WireResult> results;
  results.reserve(a->size());
  for (const json::value& item : *a) {
    const json::object* o = item.if_object();
    Result<WireResult> r =
        o != nullptr ? ResultFromObject(*o, lenient) : Bad("result", "(the item itself)");
    if (r.ok()) {
      results.push_back(std::move(r).value());
      continue;
    }
    if (bad_items != nullptr) ++*bad_items;
    // The rest of the message is still delivered; an item whose id can be
    // read is answered as an error at once rather than left to its deadline.
    WireResult failed;
    if (o == nullptr || !GetString(*o, "id", &failed.id, true) || failed.id.empty()) continue;
    MakeValid(&failed.id);
    failed.code = ErrorCode::kInternal;
    failed.message = "the worker's answer for this request could not be read";
    failed.detail = r.status().message();
    results.push_back(std::move(failed));
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
  w.tokens_per_minute = request.principal.rate_limit.tokens_per_minute;
  w.async = request.async;
  if (request.trace.valid()) w.traceparent = tracing::FormatTraceparent(request.trace);
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
  r->async = wire.async;
  r->principal.rate_limit.tokens_per_minute = wire.tokens_per_minute;
  if (auto trace = tracing::ParseTraceparent(wire.traceparent)) r->trace = *trace;
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
  w.detail = outcome.detail;
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
  // Times from another process: kept in [0, one day], so that converting
  // them to the clock's nanoseconds cannot overflow.
  constexpr int64_t kMaxTimeUs = 86'400'000'000;
  o.queue_wait = Micros(std::clamp<int64_t>(result.queue_wait_us, 0, kMaxTimeUs));
  o.accelerator_time = Micros(std::clamp<int64_t>(result.accelerator_us, 0, kMaxTimeUs));
  o.detail = result.detail;
  return o;
}

}  // namespace sluice::redis
