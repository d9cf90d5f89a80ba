#include "http/front_door.h"

#include <charconv>
#include <cmath>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <spdlog/spdlog.h>

#include "common/ids.h"
#include "common/thread_name.h"
#include "common/utf8.h"
#include "http/inference_codec.h"

namespace sluice::http {

namespace json = boost::json;

HttpResponse MakeResponse(ReplyShape shape, int status, std::string body, const char* content_type,
                          bool close) {
  HttpResponse res{static_cast<bhttp::status>(status), shape.version};
  res.set(bhttp::field::server, "sluice");
  res.set(bhttp::field::content_type, content_type);
  res.keep_alive(shape.keep_alive && !close);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

HttpResponse MakeErrorResponse(ReplyShape shape, int http_status, std::string body,
                               const std::string& request_id, int64_t retry_after_s) {
  // Errors that leave unread bytes or a confused stream end the connection.
  const bool close = http_status == 413 || http_status == 431;
  HttpResponse res = MakeResponse(shape, http_status, std::move(body), "application/json", close);
  if (http_status == 503 || (http_status == 429 && retry_after_s > 0)) {
    res.set(bhttp::field::retry_after, std::to_string(std::max<int64_t>(1, retry_after_s)));
  }
  if (http_status == 401) res.set(bhttp::field::www_authenticate, "Bearer");
  if (!request_id.empty()) res.set("X-Request-Id", request_id);
  return res;
}

HttpResponse MakeError(ReplyShape shape, const Status& status, const std::string& request_id,
                       int64_t retry_after_s, const char* reason) {
  return MakeErrorResponse(shape, HttpStatusFor(status.code()),
                           EncodeError(status, request_id, nullptr, reason), request_id,
                           retry_after_s);
}

void AddRateLimitHeaders(const RateLimitDecision& decision, HttpResponse& response) {
  FormatRateLimitHeaders(decision).ForEach(
      [&](std::string_view name, const std::string& value) { response.set(name, value); });
}

namespace {
constexpr const char* kDashboardChallenge = R"(Basic realm="sluice", charset="UTF-8")";

std::string_view PathOf(std::string_view target) {
  size_t q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}
}  // namespace

enum class RouteKind {
  kError,
  kInference,
  kResult,
  kHealth,
  kMetrics,
  kDeadLetters,
  kDeviceUpdate,
  kRequestLookup,
  kDashboard,
  kDashboardSnapshot,
  kReload,
  kEmbeddings,
  kCompletions,
  kChat,
  kModels
};

struct FrontDoor::Route {
  RouteKind kind = RouteKind::kError;
  std::string_view rest;  // kDeviceUpdate: "{model}/devices/{i}"; kRequestLookup, kResult: the id
  std::optional<Status> error;  // kError: 404 or 405
  const char* allow = nullptr;  // 405: the Allow header
  bool openai = false;          // an OpenAI-compatible path: errors in OpenAI's shape
};

namespace {
// The dashboard's routes: GET only, they read figures and change nothing.
bool IsDashboard(RouteKind kind) {
  return kind == RouteKind::kDashboard || kind == RouteKind::kDashboardSnapshot;
}

// The 401 of an internal route: the dashboard's carries a Basic challenge,
// on which a browser asks for the token.
HttpResponse ServiceTokenRefusal(const HttpRequest& request, const Status& status, RouteKind kind) {
  HttpResponse res = MakeError(request, status);
  if (IsDashboard(kind)) {
    res.set(bhttp::field::www_authenticate, kDashboardChallenge);
  }
  return res;
}
}  // namespace

FrontDoor::FrontDoor(Options options)
    : options_(std::move(options)),
      started_unix_s_(std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count()) {
  boost::asio::post(lookups_, [] { SetCurrentThreadName("log-lookup"); });
}

FrontDoor::~FrontDoor() { lookups_.join(); }

FrontDoor::Route FrontDoor::Resolve(const HttpRequest& request) const {
  std::string_view path = PathOf(request.target());
  bhttp::verb method = request.method();
  Route r;
  auto want = [&](bhttp::verb m, const char* allow, RouteKind kind) {
    if (method == m) {
      r.kind = kind;
    } else {
      r.error = Status(ErrorCode::kMethodNotAllowed,
                       std::string(request.method_string()) + " is not allowed here; use " + allow);
      r.allow = allow;
    }
    return r;
  };
  constexpr std::string_view kModels = "/internal/models/";
  constexpr std::string_view kRequests = "/internal/requests/";
  constexpr std::string_view kResults = "/v1/result/";
  if (path == "/v1/inference" && options_.serve_inference) {
    return want(bhttp::verb::post, "POST", RouteKind::kInference);
  }
  if (options_.serve_inference && !options_.openai_models.empty()) {
    const std::pair<std::string_view, RouteKind> openai[] = {
        {"/v1/embeddings", RouteKind::kEmbeddings},
        {"/v1/completions", RouteKind::kCompletions},
        {"/v1/chat/completions", RouteKind::kChat},
        {"/v1/models", RouteKind::kModels}};
    for (const auto& [route_path, kind] : openai) {
      if (path != route_path) continue;
      r.openai = true;
      return kind == RouteKind::kModels ? want(bhttp::verb::get, "GET", kind)
                                        : want(bhttp::verb::post, "POST", kind);
    }
  }
  if (options_.serve_inference && path.substr(0, kResults.size()) == kResults &&
      path.size() > kResults.size()) {
    r.rest = path.substr(kResults.size());
    return want(bhttp::verb::get, "GET", RouteKind::kResult);
  }
  if (options_.serve_internal) {
    if (path == "/internal/health") return want(bhttp::verb::get, "GET", RouteKind::kHealth);
    if (path == "/metrics") return want(bhttp::verb::get, "GET", RouteKind::kMetrics);
    if (path == "/dashboard") return want(bhttp::verb::get, "GET", RouteKind::kDashboard);
    if (path == "/internal/reload" && options_.reload) {
      return want(bhttp::verb::post, "POST", RouteKind::kReload);
    }
    if (path == "/dashboard/snapshot") {
      return want(bhttp::verb::get, "GET", RouteKind::kDashboardSnapshot);
    }
    if (path == "/internal/dead-letters" && options_.dead_letters != nullptr) {
      return want(bhttp::verb::get, "GET", RouteKind::kDeadLetters);
    }
    if (path.substr(0, kModels.size()) == kModels) {
      r.rest = path.substr(kModels.size());
      return want(bhttp::verb::post, "POST", RouteKind::kDeviceUpdate);
    }
    if (path.substr(0, kRequests.size()) == kRequests && path.size() > kRequests.size()) {
      r.rest = path.substr(kRequests.size());
      return want(bhttp::verb::get, "GET", RouteKind::kRequestLookup);
    }
  }
  r.error = NotFound("no route for " + SanitizeUtf8(path, 200));
  return r;
}

Result<Principal> FrontDoor::AuthenticateKey(const HttpRequest& request) const {
  auto it = request.find(bhttp::field::authorization);
  if (it == request.end()) {
    return Status(ErrorCode::kUnauthenticated,
                  "missing Authorization header (expected 'Bearer <api key>')");
  }
  // The keys in force now: a reload may replace them as this runs.
  const std::shared_ptr<const Authenticator> auth = options_.auth->Get();
  const Principal* principal = auth->Authenticate(BearerToken(it->value()));
  if (principal == nullptr) {
    return Status(ErrorCode::kUnauthenticated, "unknown or malformed API key");
  }
  return *principal;
}

Status FrontDoor::ServiceTokenStatus(const HttpRequest& request, bool browser) {
  auto it = request.find(bhttp::field::authorization);
  std::string_view header;
  if (it != request.end()) header = std::string_view(it->value().data(), it->value().size());
  std::string_view token = BearerToken(header);
  std::string password;  // a browser's: Basic, the token as its password
  if (token.empty() && browser) token = password = BasicPassword(header);
  if (options_.auth->Get()->IsServiceToken(token)) return Status::Ok();
  uint64_t failures = options_.metrics->RecordAuthFailure(/*service_token=*/true);
  // A flood of guesses must not flood the log.
  if (token_warnings_.Allow()) {
    spdlog::warn("refused an internal request without a valid service token ({} so far)", failures);
  }
  return Status(ErrorCode::kUnauthenticated, token.empty()
                                                 ? "internal endpoints need a service token"
                                                 : "invalid service token");
}

HeaderVerdict FrontDoor::CheckHeader(const HttpRequest& header) {
  HeaderVerdict verdict;
  Route route = Resolve(header);
  if (route.error) {
    verdict.refuse =
        route.openai ? MakeOpenAiError(header, *route.error) : MakeError(header, *route.error);
    if (route.allow != nullptr) verdict.refuse->set(bhttp::field::allow, route.allow);
    return verdict;
  }
  if (route.kind == RouteKind::kInference || route.kind == RouteKind::kResult || route.openai) {
    Result<Principal> principal = AuthenticateKey(header);
    if (!principal.ok()) {
      options_.metrics->RecordAuthFailure(/*service_token=*/false);
      options_.metrics->Record(-1, -1, 401, 0, -1, -1);
      verdict.refuse = route.openai ? MakeOpenAiError(header, principal.status(), NewRequestId())
                                    : MakeError(header, principal.status(), NewRequestId());
      return verdict;
    }
  } else if (Status s = ServiceTokenStatus(header, IsDashboard(route.kind)); !s.ok()) {
    verdict.refuse = ServiceTokenRefusal(header, s, route.kind);
    return verdict;
  }
  verdict.authenticated = true;
  return verdict;
}

void FrontDoor::Handle(HttpRequest&& request, Reply reply) {
  Route route = Resolve(request);
  if (route.error) {
    HttpResponse res =
        route.openai ? MakeOpenAiError(request, *route.error) : MakeError(request, *route.error);
    if (route.allow != nullptr) res.set(bhttp::field::allow, route.allow);
    return reply(std::move(res));
  }
  // A public request's span, ended by its response's last part; null when
  // its trace is not sampled.
  std::shared_ptr<RequestTrace> trace;
  if (options_.tracer != nullptr &&
      (route.kind == RouteKind::kInference || route.kind == RouteKind::kResult || route.openai)) {
    trace = RequestTrace::Start(
        *options_.tracer, request,
        route.kind == RouteKind::kResult ? "/v1/result/{task_id}" : PathOf(request.target()),
        options_.service->clock().Now());
    if (trace) reply = trace->Wrap(std::move(reply));
  }
  switch (route.kind) {
    case RouteKind::kInference:
      return HandleInference(std::move(request), std::move(reply), trace);
    case RouteKind::kEmbeddings:
      return HandleOpenAi(OpenAiApi::kEmbeddings, std::move(request), std::move(reply), trace);
    case RouteKind::kCompletions:
      return HandleOpenAi(OpenAiApi::kCompletions, std::move(request), std::move(reply), trace);
    case RouteKind::kChat:
      return HandleOpenAi(OpenAiApi::kChat, std::move(request), std::move(reply), trace);
    case RouteKind::kModels:
      return HandleModelList(request, reply);
    default:
      break;
  }
  if (route.kind == RouteKind::kResult) return HandleResult(request, route.rest, std::move(reply));
  if (Status s = ServiceTokenStatus(request, IsDashboard(route.kind)); !s.ok()) {
    return reply(ServiceTokenRefusal(request, s, route.kind));
  }
  switch (route.kind) {
    case RouteKind::kHealth:
      return HandleHealth(request, reply);
    case RouteKind::kMetrics:
      return HandleMetrics(request, reply);
    case RouteKind::kDeadLetters:
      return HandleDeadLetters(request, reply);
    case RouteKind::kDeviceUpdate:
      return HandleDeviceUpdate(request, route.rest, reply);
    case RouteKind::kRequestLookup:
      return HandleRequestLookup(request, route.rest, reply);
    case RouteKind::kDashboard:
      return HandleDashboard(request, reply);
    case RouteKind::kDashboardSnapshot:
      return HandleDashboardSnapshot(request, reply);
    case RouteKind::kReload:
      return HandleReload(request, std::move(reply));
    case RouteKind::kInference:
    case RouteKind::kResult:
    case RouteKind::kEmbeddings:
    case RouteKind::kCompletions:
    case RouteKind::kChat:
    case RouteKind::kModels:
    case RouteKind::kError:
      break;
  }
}

std::string HealthJson(const HealthSnapshot& h) {
  // Boost.JSON prints doubles as "7.2E-1"; fixed decimals read better.
  double capacity = 0;
  std::string models;
  for (const ModelHealth& m : h.models) {
    capacity += m.capacity.capacity_rps;
    if (!models.empty()) models += ",";
    models += fmt::format(
        R"({{"name":{},"queue_depth":{},"devices":{},"healthy_devices":{},"utilization":{:.4f},)"
        R"("retries_pending":{},"recommended_devices":{})",
        json::serialize(json::string_view(m.name)), m.queue_depth, m.devices, m.healthy_devices,
        m.utilization, m.retries_pending, m.recommended_devices);
    std::string endpoints;
    for (const EndpointHealth& e : m.endpoints) {
      if (!endpoints.empty()) endpoints += ",";
      endpoints += fmt::format(R"({{"name":{},"breaker":"{}","slots":{}}})",
                               json::serialize(json::string_view(e.name)),
                               BreakerStateName(e.breaker), e.slots);
    }
    models += ",\"endpoints\":[" + endpoints + "]";
    if (m.admission) {
      const AdmissionSnapshot& c = m.capacity;
      models += fmt::format(
          R"(,"capacity_rps":{:.1f},"throughput_per_device_rps":{:.1f},"arrival_rps":{:.1f},)"
          R"("throughput_measured":{},"batch_fixed_ms":{:.3f},"batch_per_item_ms":{:.4f},)"
          R"("probing_endpoints":{})",
          c.capacity_rps, c.throughput_per_slot_rps, c.arrival_rps, c.measured, c.batch_fixed_ms,
          c.batch_per_item_ms, c.probing_endpoints);
    }
    models += "}";
  }
  std::string redis;
  if (h.redis) {
    const RedisHealth& r = *h.redis;
    redis = fmt::format(
        R"(,"redis":{{"state":{},"gateway_id":{},"subscribed":{},"pending_requests":{},)"
        R"("commands_sent":{}}},"healthy_workers":{})",
        json::serialize(json::string_view(r.state)),
        json::serialize(json::string_view(r.gateway_id)), r.subscribed, r.pending_requests,
        r.commands_sent, r.healthy_workers);
  }
  return fmt::format(
      R"({{"status":{},"gpu_utilization":{:.4f},"queue_depth":{},"requests_per_second":{:.1f},)"
      R"("capacity_rps":{:.1f},"models":[{}]{}}})",
      json::serialize(json::string_view(h.status)), h.gpu_utilization, h.queue_depth,
      h.requests_per_second, capacity, models, redis);
}

void FrontDoor::HandleHealth(const HttpRequest& request, Reply& reply) {
  HealthSnapshot h = options_.health();
  std::string body = HealthJson(h);
  // Load balancers read the status code: only a gateway that cannot serve
  // (draining, or a model with no device) answers 503.
  bool serving = h.status == "healthy" || h.status == "degraded";
  reply(MakeResponse(request, serving ? 200 : 503, std::move(body)));
}

void FrontDoor::HandleDeviceUpdate(const HttpRequest& request, std::string_view rest,
                                   Reply& reply) {
  // rest = "{model}/devices/{index}"
  constexpr std::string_view kDevices = "/devices/";
  size_t sep = rest.find(kDevices);
  size_t index = 0;
  std::string_view digits = sep == std::string_view::npos ? "" : rest.substr(sep + kDevices.size());
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
  if (!options_.set_device_enabled || sep == 0 || sep == std::string_view::npos || digits.empty() ||
      ec != std::errc() || end != digits.data() + digits.size()) {
    reply(MakeError(request, NotFound("no route for /internal/models/" + std::string(rest))));
    return;
  }
  boost::system::error_code jec;
  json::value body = json::parse(request.body(), jec);
  const json::value* enabled = body.is_object() ? body.as_object().if_contains("enabled") : nullptr;
  if (jec || enabled == nullptr || !enabled->is_bool()) {
    reply(MakeError(request, InvalidArgument("enabled: required boolean field is missing")));
    return;
  }
  std::string model(rest.substr(0, sep));
  Status s = options_.set_device_enabled(model, index, enabled->as_bool());
  if (!s.ok()) {
    reply(MakeError(request, s));
    return;
  }
  reply(MakeResponse(
      request, 200,
      fmt::format(R"({{"model":{},"device":{},"enabled":{}}})",
                  json::serialize(json::string_view(model)), index, enabled->as_bool())));
}

void FrontDoor::HandleRequestLookup(const HttpRequest& request, std::string_view id, Reply& reply) {
  // The log may have to ask its database: never on an I/O thread.
  boost::asio::post(lookups_, [this, shape = ReplyShape(request), id = std::string(id),
                               reply = std::move(reply)] { LookUpRequest(shape, id, reply); });
}

void FrontDoor::LookUpRequest(ReplyShape request, const std::string& id, const Reply& reply) {
  auto record = options_.log->Lookup(id);
  if (!record) {
    reply(
        MakeError(request, NotFound("no recent request with id '" + SanitizeUtf8(id, 200) + "'")));
    return;
  }
  json::object o;
  o["request_id"] = record->id;
  o["status"] = RequestStageName(record->stage);
  bool finished =
      record->stage == RequestStage::kCompleted || record->stage == RequestStage::kFailed;
  if (finished) {
    o["latency_ms"] = static_cast<int64_t>(std::llround(record->latency_ms));
    o["http_status"] = record->http_status;
  } else {
    o["latency_ms"] = nullptr;
  }
  if (record->error.empty()) {
    o["error"] = nullptr;
  } else {
    o["error"] = record->error;
  }
  o["model"] = record->model;
  o["tier"] = record->tier;
  o["key_id"] = record->key_id;
  if (record->batch_id != 0) o["batch_id"] = record->batch_id;
  if (record->tokens_used != 0) o["tokens_used"] = record->tokens_used;
  reply(MakeResponse(request, 200, json::serialize(o)));
}

void FrontDoor::HandleReload(const HttpRequest& request, Reply reply) {
  // It reads a file: never on an I/O thread.
  boost::asio::post(lookups_, [this, shape = ReplyShape(request), reply = std::move(reply)] {
    Result<std::string> report = options_.reload();
    reply(report.ok() ? MakeResponse(shape, 200, std::move(report).value())
                      : MakeError(shape, report.status()));
  });
}

void FrontDoor::HandleMetrics(const HttpRequest& request, Reply& reply) {
  reply(MakeResponse(request, 200, options_.registry->RenderPrometheus(),
                     "text/plain; version=0.0.4"));
}

}  // namespace sluice::http
