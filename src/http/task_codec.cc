#include "http/task_codec.h"

#include <boost/json.hpp>
#include <charconv>

#include "http/inference_codec.h"

namespace sluice::http {

namespace json = boost::json;

namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool PrefersRespondAsync(const HttpRequest& request) {
  for (auto it = request.find("Prefer");
       it != request.end() && EqualsIgnoreCase(it->name_string(), "Prefer"); ++it) {
    std::string_view value = it->value();
    while (!value.empty()) {
      size_t comma = value.find(',');
      std::string_view preference = value.substr(0, comma);
      // A preference's name ends at '=' (its value) or ';' (its parameters).
      std::string_view name = Trim(preference.substr(0, preference.find_first_of("=;")));
      if (EqualsIgnoreCase(name, "respond-async")) return true;
      if (comma == std::string_view::npos) break;
      value.remove_prefix(comma + 1);
    }
  }
  return false;
}

std::string_view QueryParam(std::string_view target, std::string_view name) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    if (pair.size() > name.size() && pair.substr(0, name.size()) == name &&
        pair[name.size()] == '=') {
      return pair.substr(name.size() + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

Status ParseWaitMs(std::string_view target, int64_t max_ms, int64_t* wait_ms) {
  *wait_ms = 0;
  std::string_view text = QueryParam(target, "wait_ms");
  if (text.empty()) return Status::Ok();
  int64_t ms = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (ec != std::errc() || end != text.data() + text.size() || ms < 0 || ms > max_ms) {
    return InvalidArgument("wait_ms: expected an integer from 0 to " + std::to_string(max_ms) +
                           ", got \"" + std::string(text.substr(0, 32)) + "\"");
  }
  *wait_ms = ms;
  return Status::Ok();
}

TaskAnswer ToTaskAnswer(const InferenceOutcome& outcome, int64_t latency_ms) {
  TaskAnswer a;
  a.latency_ms = latency_ms;
  a.http_status = HttpStatusFor(outcome.status.code());
  if (outcome.status.ok()) {
    a.output = outcome.output;
    a.tokens_used = outcome.tokens_used;
    a.model_version = outcome.model_version;
    a.cached = outcome.cached;
    a.collapsed = outcome.collapsed;
  } else {
    a.error_code = ErrorCodeName(outcome.status.code());
    a.error_message = outcome.status.message();
    if (outcome.reason != nullptr) a.error_reason = outcome.reason;
  }
  return a;
}

std::string EncodeTaskAccepted(std::string_view task_id) {
  json::object o;
  o["task_id"] = task_id;
  o["status"] = "PENDING";
  return json::serialize(o);
}

std::string EncodeTask(const TaskView& task) {
  json::object o;
  o["task_id"] = task.id;
  if (!task.done) {
    o["status"] = "PENDING";
    return json::serialize(o);
  }
  const TaskAnswer& a = task.answer;
  if (a.http_status == 200) {
    o["status"] = "SUCCESS";
    o["output"] = a.output;
    json::object metadata;
    metadata["tokens_used"] = a.tokens_used;
    metadata["latency_ms"] = a.latency_ms;
    metadata["model_version"] = a.model_version;
    if (a.cached) metadata["cached"] = true;
    if (a.collapsed) metadata["collapsed"] = true;
    o["metadata"] = std::move(metadata);
  } else {
    o["status"] = "FAILED";
    json::object error;
    error["code"] = a.error_code;
    error["message"] = a.error_message;
    error["http_status"] = a.http_status;
    if (!a.error_reason.empty()) error["reason"] = a.error_reason;
    o["error"] = std::move(error);
  }
  return json::serialize(o);
}

}  // namespace sluice::http
