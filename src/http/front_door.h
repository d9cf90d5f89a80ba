// FrontDoor: Sluice's HTTP routes, on top of the domain services.
//
//   POST /v1/inference           API key (Bearer) -> result or JSON error;
//                                202 + task id when asked to answer later
//                                (`Prefer: respond-async`, "async": true)
//   GET  /v1/result/{task_id}[?wait_ms=N]  API key -> the task's state, to
//                                the key that submitted it (404 for others)
//   POST /v1/embeddings, /v1/completions, /v1/chat/completions,
//   GET  /v1/models              API key -> OpenAI's shapes, errors included
//                                (http/openai_endpoint.cc)
//   GET  /internal/health        service token -> status, utilisation, depth, rps
//   GET  /internal/requests/{id} service token -> recent request state
//   GET  /metrics                service token -> Prometheus text format
//   POST /internal/reload        service token -> re-read the config file:
//                                200 {"reloaded", "applied", "restart_required"}
//                                or 400 naming the field (app/config_reloader.h)
//   GET  /dashboard              service token -> the live dashboard page
//   GET  /dashboard/snapshot     service token -> its figures, JSON
//                                (http/dashboard_endpoint.cc); the token as
//                                Bearer or, on these two GET routes only,
//                                as a Basic password (a browser's)
//   GET  /internal/dead-letters[?limit=N]  service token -> requests given
//                                up on after every retry (newest first)
//   POST /internal/models/{m}/devices/{i}  service token -> take a device
//                                out of service or back ({"enabled": bool})
//
// Unknown paths answer 404, a known path with the wrong method 405 with an
// Allow header. Route, method and credential (API key or service token) are
// checked from the header alone (CheckHeader): a request refused there is
// answered 401/404/405 and its connection closed without reading its body.
// Failed service-token attempts are counted (sluice_auth_failures_total)
// and logged at most once per 10 s. With `serve_internal` off (an admin
// listener serves them) /internal/* and /metrics answer 404; with
// `serve_inference` off, the public routes do. Every error body but the
// OpenAI routes' is {"error": {"code", "message", "request_id"}}. Inference responses carry
// X-Request-Id and a Server-Timing header (queue, accelerator and gateway time); a request its
// model may cache also X-Cache: hit (answered from the result cache) or
// miss.
//
// Thread-safe: Handle() may be called from any I/O thread; it never blocks.
// All pointers in Options are borrowed and must outlive the FrontDoor.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>

#include <boost/asio/thread_pool.hpp>

#include "common/log_throttle.h"
#include "core/authenticator.h"
#include "core/chat_template.h"
#include "core/circuit_breaker.h"
#include "core/dead_letter_queue.h"
#include "core/inference_service.h"
#include "core/request_log.h"
#include "core/task_store.h"
#include "http/request_metrics.h"
#include "http/request_trace.h"
#include "http/types.h"
#include "metrics/registry.h"

namespace sluice::http {

struct EndpointHealth {
  std::string name;  // URL, or the simulated device
  BreakerState breaker = BreakerState::kClosed;
  size_t slots = 0;  // dispatcher slots (connections) to it
};

struct ModelHealth {
  std::string name;
  size_t queue_depth = 0;
  size_t devices = 0;          // accelerator slots configured
  size_t healthy_devices = 0;  // slots in service: enabled and their breaker closed
  size_t retries_pending = 0;  // requests waiting for a retry
  // Devices the offered load needs at the target utilization (0: unknown).
  size_t recommended_devices = 0;
  std::vector<EndpointHealth> endpoints;
  double utilization = 0;      // busy fraction, last 10 s
  bool admission = false;      // capacity-aware admission enabled; the rest is valid then
  AdmissionSnapshot capacity;  // learnt batch cost, capacity, arrivals, probing endpoints
};

// A gateway's view of the shared state (`sluice gateway`, `serve` with a
// `redis:` section).
struct RedisHealth {
  std::string state;            // the client's: "up", "connecting" or "down"
  std::string gateway_id;       // its result channel's id
  bool subscribed = false;      // the result channel is subscribed
  size_t pending_requests = 0;  // queued in Redis, waiting for a result
  uint64_t commands_sent = 0;   // Redis commands written so far
  size_t healthy_workers = 0;   // live workers with a healthy slot, all models
};

struct HealthSnapshot {
  // "healthy"; "degraded" (some devices out of service); "unavailable" (a
  // model has none, 503); "draining" (shutting down, 503).
  std::string status = "healthy";
  double gpu_utilization = 0;      // busy fraction of all accelerator slots, 0..1
  size_t queue_depth = 0;          // requests queued, all models
  double requests_per_second = 0;  // answered, last 10 s
  std::vector<ModelHealth> models;
  // Set in scale-out: the body gains "redis":{...} and "healthy_workers".
  std::optional<RedisHealth> redis;
};

// A model as the OpenAI-compatible routes see it (http/openai_endpoint.cc).
struct OpenAiModel {
  bool embeddings = false;          // serves /v1/embeddings (not completions or chat)
  int embedding_dimensions = 0;     // its vectors' length; 0 = unknown
  bool accepts_dimensions = false;  // `dimensions` shortens its vectors
  ChatTemplate chat_template;       // messages -> prompt for /v1/chat/completions
  // Its backend speaks chat (backends/http/chat_backend.h): chat messages
  // are forwarded as they are, and a streamed answer is relayed piece by
  // piece as the backend produces it.
  bool chat_backend = false;
};

// What a response needs from its request: HTTP version and keep-alive.
struct ReplyShape {
  unsigned version = 11;
  bool keep_alive = true;
  ReplyShape() = default;
  ReplyShape(unsigned v, bool k) : version(v), keep_alive(k) {}
  ReplyShape(const HttpRequest& r)  // NOLINT(google-explicit-constructor): a request is a shape
      : version(r.version()), keep_alive(r.keep_alive()) {}
};

class FrontDoor final : public RequestHandler {
 public:
  struct Options {
    const AuthenticatorSlot* auth = nullptr;  // required: the keys in force
    InferenceService* service = nullptr;      // required
    RequestLog* log = nullptr;                // required
    RequestMetrics* metrics = nullptr;        // required
    std::function<HealthSnapshot()> health;   // required
    // /metrics and the dashboard's figures; required.
    const metrics::Registry* registry = nullptr;
    // POST /internal/models/{model}/devices/{index} {"enabled": bool}: takes
    // an accelerator slot out of service or back (simulated failures).
    // Optional; absent = 404.
    std::function<Status(const std::string& model, size_t device, bool enabled)> set_device_enabled;
    // POST /internal/reload: re-reads the config file and returns the JSON
    // report, or the error that refused the file. Blocking (it reads a
    // file): called off the I/O threads. Optional; absent = 404.
    std::function<Result<std::string>()> reload;
    // The local queue (serve, worker) or Redis's dead lists (gateway);
    // optional; absent = 404.
    const DeadLetterSource* dead_letters = nullptr;
    // A client that hangs up while its request is queued is noticed (and
    // the request dropped before the accelerator) when the request found at
    // least this many queued ahead of it; requests that go out with the next
    // batch are not watched, which saves a socket-readiness registration
    // per request on the hot path. 0 = watch every request.
    size_t watch_client_min_queue_depth = 32;
    // The asynchronous API's tasks and the Idempotency-Key answers;
    // optional (absent: requests asking for either are refused 400 and
    // /v1/result answers 404).
    TaskStore* tasks = nullptr;
    int64_t max_result_wait_ms = 30'000;  // the longest ?wait_ms of GET /v1/result
    // The models as /v1/embeddings, /v1/completions, /v1/chat/completions
    // and /v1/models see them (index = model index); empty: those routes
    // answer 404.
    std::vector<OpenAiModel> openai_models;
    // Spans of the public routes (http/request_trace.h): a request's
    // traceparent and tracestate are read, its span exported when sampled
    // and linked from its batches' spans. Optional; null: tracing off.
    const tracing::Tracer* tracer = nullptr;
    bool serve_inference = true;  // POST /v1/inference, GET /v1/result, the OpenAI routes
    bool serve_internal = true;   // /internal/* and /metrics
  };

  explicit FrontDoor(Options options);
  ~FrontDoor() override;

  HeaderVerdict CheckHeader(const HttpRequest& header) override;
  void Handle(HttpRequest&& request, Reply reply) override;

 private:
  // `trace`: the request's span, null when tracing is off.
  void HandleInference(HttpRequest&& request, Reply reply,
                       const std::shared_ptr<RequestTrace>& trace);
  void HandleResult(const HttpRequest& request, std::string_view task_id, Reply reply);
  // Answers a request refused before it was submitted: counted, with the
  // key's rate-limit headers once it was charged (`limits`, else null).
  void Refuse(ReplyShape shape, const Status& s, const std::string& id, int model, int tier,
              TimePoint start, const RateLimitDecision* limits, const Reply& reply);
  // Submits an async request (its completion set; its task created) and
  // answers 202, or the refusal.
  void SubmitAsync(ReplyShape shape, const RequestPtr& req, int64_t client_timeout_us,
                   bool prefer_async, int model, int tier, TimePoint start, const Reply& reply);
  // A repeat of an Idempotency-Key's request: the first one's task (async)
  // or its answer once there is one (sync).
  void ReplayIdempotent(const HttpRequest& request, const std::string& task_id,
                        const Principal& principal, bool async, int model, TimePoint until,
                        Reply reply);
  // The OpenAI-compatible routes (http/openai_endpoint.cc).
  enum class OpenAiApi { kEmbeddings, kCompletions, kChat };
  struct OpenAiCall;
  void HandleOpenAi(OpenAiApi api, HttpRequest&& request, Reply reply,
                    const std::shared_ptr<RequestTrace>& trace);
  void HandleModelList(const HttpRequest& request, Reply& reply);
  // Queues each request of `call`; the answer goes out once all are back,
  // or at the first failure.
  void SubmitOpenAi(const std::shared_ptr<OpenAiCall>& call, ClientWatch* watch);
  void AnswerOpenAi(const std::shared_ptr<OpenAiCall>& call);
  void AnswerOpenAiError(const std::shared_ptr<OpenAiCall>& call, const InferenceOutcome& outcome);
  // A piece of a relayed stream; the first sends the response's header.
  // Nothing once the call is answered.
  void RelayPiece(const std::shared_ptr<OpenAiCall>& call, std::string_view piece);
  // Appends bytes of a relayed stream (`last`: they end it); true when the
  // caller must PostDrain() once it has released the lock.
  // REQUIRES: call.stream_mu held.
  static bool QueueStreamBytes(OpenAiCall& call, std::string bytes, bool last);
  // Has DrainStream() run on the connection's thread.
  static void PostDrain(const std::shared_ptr<OpenAiCall>& call);
  // Hands what is queued to the connection, in order. On the connection's
  // thread (drains run one after another there).
  static void DrainStream(const std::shared_ptr<OpenAiCall>& call);
  void HandleHealth(const HttpRequest& request, Reply& reply);
  void HandleRequestLookup(const HttpRequest& request, std::string_view id, Reply& reply);
  void LookUpRequest(ReplyShape shape, const std::string& id, const Reply& reply);
  void HandleMetrics(const HttpRequest& request, Reply& reply);
  void HandleDashboard(const HttpRequest& request, Reply& reply);
  void HandleReload(const HttpRequest& request, Reply reply);
  void HandleDashboardSnapshot(const HttpRequest& request, Reply& reply);
  void HandleDeviceUpdate(const HttpRequest& request, std::string_view rest, Reply& reply);
  void HandleDeadLetters(const HttpRequest& request, Reply& reply);
  // What a request's path and method ask for: a handler, or an error
  // (404/405) to answer. `needs_service_token`: an internal route.
  struct Route;
  Route Resolve(const HttpRequest& request) const;
  // The API key's principal (a copy: a reload may replace the keys), or the
  // 401 status to answer.
  Result<Principal> AuthenticateKey(const HttpRequest& request) const;
  // OK or the 401 (counted, logged). `browser`: a Basic password is taken
  // too (the dashboard's GET routes only: a browser sends cached Basic
  // credentials with any page's requests, so a route that changes anything
  // must take Bearer alone).
  Status ServiceTokenStatus(const HttpRequest& request, bool browser);

  Options options_;
  const int64_t started_unix_s_;  // /v1/models' "created"
  LogThrottle token_warnings_;    // refused service tokens, once per 10 s
  // Request-log lookups (they may query a database) run here, off the I/O
  // threads, on a thread named "log-lookup".
  boost::asio::thread_pool lookups_{1};
};

// The JSON body of GET /internal/health (also the dashboard's "health").
std::string HealthJson(const HealthSnapshot& health);

// Builds a response with the common headers (Server, Content-Type,
// keep-alive as the request asked unless `close`).
HttpResponse MakeResponse(ReplyShape shape, int status, std::string body,
                          const char* content_type = "application/json", bool close = false);
// An error response with the JSON `body`: 503 adds Retry-After
// (retry_after_s, default 1), 429 too when retry_after_s > 0; 401 adds
// WWW-Authenticate; a non-empty request id adds X-Request-Id; 413 and 431
// close the connection. MakeError() and MakeOpenAiError() write the body.
HttpResponse MakeErrorResponse(ReplyShape shape, int http_status, std::string body,
                               const std::string& request_id, int64_t retry_after_s);
// A JSON error response for `status` (see MakeErrorResponse()); `reason`
// becomes the body's "reason" field.
HttpResponse MakeError(ReplyShape shape, const Status& status, const std::string& request_id = "",
                       int64_t retry_after_s = 0, const char* reason = nullptr);
// Adds the rate-limit fields of `decision` (X-RateLimit-*, RateLimit,
// RateLimit-Policy, and Retry-After when rejected) to `response`.
void AddRateLimitHeaders(const RateLimitDecision& decision, HttpResponse& response);
// An error in OpenAI's shape ({"error": {"message", "type", "param",
// "code"}}) with the status, Retry-After and X-Request-Id MakeError()
// would give; "param" is the field the message starts with, "code" is
// `code` or one by status (invalid_api_key, rate_limit_exceeded).
HttpResponse MakeOpenAiError(ReplyShape shape, const Status& status,
                             const std::string& request_id = "", int64_t retry_after_s = 0,
                             const char* code = nullptr);
// AddRateLimitHeaders() plus OpenAI's names: x-ratelimit-{limit,remaining,
// reset}-{requests,tokens} for each limit configured.
void AddOpenAiRateLimitHeaders(const RateLimitDecision& decision, HttpResponse& response);

}  // namespace sluice::http
