// POST /v1/inference: authenticate, decode, admit, and answer when the
// batch result (or an error) comes back; or, for a request asked to answer
// later, 202 with its task once it is queued. A request with an
// Idempotency-Key keeps its answer as a task, so that a repeat gets it.
#include <charconv>

#include <algorithm>

#include "common/crypto.h"
#include "common/ids.h"
#include "common/utf8.h"
#include "http/front_door.h"
#include "http/inference_codec.h"
#include "http/response_writer.h"
#include "http/task_codec.h"

namespace sluice::http {

namespace {
constexpr std::string_view kTimeoutHeader = "X-Request-Timeout-Ms";

// Parses X-Request-Timeout-Ms: 0 when absent; error when not a positive integer.
Status ClientTimeoutUs(const HttpRequest& request, int64_t* timeout_us) {
  *timeout_us = 0;
  auto it = request.find(kTimeoutHeader);
  if (it == request.end()) return Status::Ok();
  std::string_view v = it->value();
  int64_t ms = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), ms);
  if (ec != std::errc() || end != v.data() + v.size() || ms <= 0 || ms > 86'400'000) {
    return InvalidArgument(std::string(kTimeoutHeader) +
                           ": must be a positive integer number of milliseconds");
  }
  *timeout_us = ms * 1000;
  return Status::Ok();
}

// The Idempotency-Key header: "" when absent; an error unless 1 to 255
// visible ASCII characters.
Status IdempotencyKey(const HttpRequest& request, std::string* key) {
  key->clear();
  auto it = request.find("Idempotency-Key");
  if (it == request.end()) return Status::Ok();
  std::string_view v = it->value();
  bool visible = !v.empty() && v.size() <= 255;
  for (char c : v) visible = visible && c > 0x20 && c < 0x7f;
  if (!visible)
    return InvalidArgument("Idempotency-Key: must be 1 to 255 visible ASCII characters");
  key->assign(v);
  return Status::Ok();
}

double Seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }

// metadata.latency_ms: whole milliseconds, rounded.
int64_t RoundedMillis(SteadyClock::duration d) {
  return std::chrono::duration_cast<Millis>(d + Micros(500)).count();
}

// Appends a duration as milliseconds with 3 decimals ("12.345"), without
// going through floating-point formatting (this runs per response).
void AppendMillis(std::string& out, SteadyClock::duration d) {
  int64_t us = std::max<int64_t>(0, ToMicros(d));
  char buf[24];
  char* end = std::to_chars(buf, buf + sizeof(buf), us / 1000).ptr;
  int64_t frac = us % 1000;
  *end++ = '.';
  *end++ = static_cast<char>('0' + frac / 100);
  *end++ = static_cast<char>('0' + frac / 10 % 10);
  *end++ = static_cast<char>('0' + frac % 10);
  out.append(buf, end);
}

// Server-Timing: where the request's time went, in milliseconds.
std::string ServerTiming(SteadyClock::duration queue, SteadyClock::duration accelerator,
                         SteadyClock::duration gateway) {
  std::string v;
  v.reserve(80);
  v.append("queue;dur=");
  AppendMillis(v, queue);
  v.append(", accelerator;dur=");
  AppendMillis(v, accelerator);
  v.append(", gateway;dur=");
  AppendMillis(v, gateway);
  return v;
}
}  // namespace

void FrontDoor::HandleInference(HttpRequest&& request, Reply reply,
                                const std::shared_ptr<RequestTrace>& trace) {
  // The span ends once this returns too: its admission event is recorded
  // after Submit(), which may already have answered (a cache hit).
  const std::shared_ptr<void> open = trace ? trace->KeepOpen() : nullptr;
  const Clock& clock = options_.service->clock();
  const TimePoint start = clock.Now();
  // Every inference response, errors included, carries an id for tracing.
  std::string id = NewRequestId();
  const RateLimitDecision* limits = nullptr;  // set once the key was charged
  auto fail_early = [&](const Status& s, int model, int tier) {
    Refuse(request, s, id, model, tier, start, limits, reply);
  };

  Result<Principal> authenticated = AuthenticateKey(request);
  if (!authenticated.ok()) {
    options_.metrics->RecordAuthFailure(/*service_token=*/false);
    return fail_early(authenticated.status(), -1, -1);
  }
  const Principal* principal = &authenticated.value();
  const int tier = principal->tier;
  if (trace) {
    trace->Attribute("sluice.request_id", id);
    trace->Event("authenticated", {{"sluice.tier", principal->tier_name}});
  }

  // Every authenticated request counts against its key's request limit, bad
  // ones included (at no token cost), so a client cannot flood with errors.
  DecodedInference decoded;
  Status decode_status = DecodeInferenceRequest(request.body(), &decoded);
  int64_t client_timeout_us = 0;
  Status timeout_status = ClientTimeoutUs(request, &client_timeout_us);
  const bool prefer_async = PrefersRespondAsync(request);
  const bool async = prefer_async || decoded.async;
  std::string idempotency_key;
  Status tasks_status = IdempotencyKey(request, &idempotency_key);
  if (tasks_status.ok() && options_.tasks == nullptr && (async || !idempotency_key.empty())) {
    tasks_status = InvalidArgument(std::string(async ? "async" : "Idempotency-Key") +
                                   ": not supported by this server yet");
  }
  const int model = decode_status.ok() ? options_.service->FindModel(decoded.model) : -1;
  const int64_t cost = model >= 0 && timeout_status.ok() && tasks_status.ok()
                           ? options_.service->TokenCost(static_cast<size_t>(model), decoded.input,
                                                         decoded.params.max_tokens)
                           : 0;
  const RateLimitDecision decision =
      options_.service->ChargeRateLimit(*principal, cost, model, async);
  limits = &decision;
  if (trace) {
    trace->Event("rate_limit",
                 {{"sluice.rate_limit.allowed", decision.allowed},
                  {"sluice.rate_limit.requests_remaining", decision.requests.remaining},
                  {"sluice.rate_limit.tokens_remaining", decision.tokens.remaining}});
  }
  if (!decision.allowed && decision.cost_exceeds_limit) {
    // Waiting would not help: this request alone is over the key's limit.
    return fail_early(CostOverLimitStatus(decision, "parameters.max_tokens"), model, tier);
  }
  if (!decision.allowed) {
    options_.metrics->RecordRateLimited(tier, decision.limited_by);
    options_.metrics->Record(model, tier, 429, Seconds(clock.Now() - start), -1, -1);
    HttpResponse res =
        MakeError(request, RateLimitStatus(decision), id, decision.retry_after_s,
                  decision.limited_by == RateLimitKind::kTokens ? "tokens_per_minute"
                                                                : "requests_per_minute");
    AddRateLimitHeaders(decision, res);
    return reply(std::move(res));
  }
  if (!decode_status.ok()) return fail_early(decode_status, -1, tier);
  if (model < 0) {
    return fail_early(
        NotFound("model '" + SanitizeUtf8(decoded.model, 200) + "' is not served here"), -1, tier);
  }
  // A bad header was charged no tokens (see `cost`).
  if (!timeout_status.ok()) return fail_early(timeout_status, model, tier);
  if (!tasks_status.ok()) return fail_early(tasks_status, model, tier);

  // A task holds the answer of a request answered later, or of one that
  // may be repeated with the same Idempotency-Key. A request that runs
  // nothing gets its tokens back; it still counts as a request.
  auto refuse = [&](const Status& s) {
    options_.service->RefundTokens(*principal, cost, model, async);
    fail_early(s, model, tier);
  };
  bool keep_task = async;
  if (!idempotency_key.empty()) {
    const std::string digest = ToHex(Sha256(request.body()));
    Result<TaskStore::Reservation> r =
        options_.tasks->Reserve(principal->key_id, idempotency_key, digest, id);
    if (!r.ok()) return refuse(r.status());
    if (r->kind == TaskStore::Reservation::Kind::kConflict) {
      return refuse(Status(ErrorCode::kUnprocessable,
                           "Idempotency-Key: already used with a different request body"));
    }
    if (r->kind == TaskStore::Reservation::Kind::kExisting) {
      options_.service->RefundTokens(*principal, cost, model, async);
      const TierPolicy& policy = options_.service->tiers()[tier];
      return ReplayIdempotent(request, r->task_id, *principal, async, model,
                              start + Micros(policy.total_timeout_us), std::move(reply));
    }
    keep_task = true;  // its task exists now
  }

  auto req = std::make_shared<InferenceRequest>();
  req->id = std::move(id);
  req->principal = *principal;
  req->model_index = static_cast<uint32_t>(model);
  req->model = std::move(decoded.model);
  req->input = std::move(decoded.input);
  req->params = std::move(decoded.params);
  req->charged_tokens = cost;
  req->rate_limit = decision;
  req->async = async;
  if (trace) {
    req->trace = trace->context();
    trace->Attribute("sluice.model", req->model);
  }

  // Runs exactly once, on whichever thread completes the request. The raw
  // pointer is safe: whoever calls Complete() holds a reference.
  InferenceRequest* raw = req.get();
  // A task's request runs to its answer even if its client leaves: nobody
  // waits for an async one, and a retry of an Idempotency-Key's wants it.
  ClientWatch* watch = keep_task ? nullptr : reply.client_watch();
  if (watch != nullptr &&
      options_.service->QueueDepth(req->model_index) >= options_.watch_client_min_queue_depth) {
    // A client that hangs up while its request waits: drop the request
    // before it reaches the accelerator (see DispatchGroup).
    watch->OnClientGone([service = options_.service, weak = std::weak_ptr<InferenceRequest>(req)] {
      if (auto r = weak.lock()) service->Withdraw(r);
    });
  }
  const unsigned version = request.version();
  const bool keep_alive = request.keep_alive();
  if (async) {
    // Nobody waits on the connection: the answer goes to the task (and the log).
    req->set_on_complete([this, raw, start](InferenceOutcome&& outcome) {
      SteadyClock::duration total = options_.service->clock().Now() - start;
      options_.service->Finish(*raw, outcome, ToMillis(total));
      options_.tasks->Complete(raw->id, ToTaskAnswer(outcome, RoundedMillis(total)));
    });
    if (!idempotency_key.empty()) {  // Reserve() created its task
      return SubmitAsync(request, req, client_timeout_us, prefer_async, model, tier, start,
                         std::move(reply));
    }
    // Its task is written first, without holding this I/O thread (a
    // gateway's store is a Redis round trip away); the request is submitted
    // once the task is readable, back on this connection's thread.
    options_.tasks->CreateAsync(
        req->id, req->principal.key_id,
        [this, req, shape = ReplyShape(version, keep_alive), client_timeout_us, prefer_async, model,
         tier, start, cost, reply = std::move(reply)](Status created) mutable {
          const Reply on_thread = reply;
          on_thread.Post([this, req, shape, client_timeout_us, prefer_async, model, tier, start,
                          cost, created = std::move(created), reply = std::move(reply)] {
            if (created.ok()) {
              return SubmitAsync(shape, req, client_timeout_us, prefer_async, model, tier, start,
                                 reply);
            }
            options_.service->RefundTokens(req->principal, cost, model, /*async=*/true);
            Refuse(shape, created, req->id, model, tier, start, &req->rate_limit, reply);
          });
        });
    return;
  }
  req->set_on_complete([this, raw, start, model, tier, version, keep_alive, keep_task, trace,
                        reply = std::move(reply)](InferenceOutcome&& outcome) {
    if (trace) trace->Answered(*raw, outcome);
    const Clock& clock = options_.service->clock();
    SteadyClock::duration total = clock.Now() - start;
    const bool stay_open = keep_alive && !options_.service->shutting_down();
    if (outcome.status.ok()) {
      // The hot path: written straight into wire form.
      const int64_t latency_ms = RoundedMillis(total);
      std::string body = EncodeInferenceResponse(raw->id, outcome, latency_ms);
      SteadyClock::duration overhead = total - outcome.queue_wait - outcome.accelerator_time;
      WireResponseBuilder b(200, version, stay_open, body.size());
      b.Field("X-Request-Id", raw->id);
      // Whether a cacheable request was answered from the cache.
      if (!raw->cache_key.empty() && options_.service->model(raw->model_index).cache != nullptr) {
        b.Field("X-Cache", outcome.cached ? "hit" : "miss");
      }
      b.Field("Server-Timing",
              ServerTiming(outcome.queue_wait, outcome.accelerator_time, overhead));
      FormatRateLimitHeaders(raw->rate_limit)
          .ForEach([&](std::string_view name, const std::string& value) { b.Field(name, value); });
      // A cached answer never queued: no queue wait to record.
      options_.metrics->Record(model, tier, 200, Seconds(total),
                               outcome.cached ? -1 : Seconds(outcome.queue_wait),
                               Seconds(overhead));
      options_.service->Finish(*raw, outcome, ToMillis(total));
      if (keep_task) options_.tasks->Complete(raw->id, ToTaskAnswer(outcome, latency_ms));
      reply(std::move(b).Finish("application/json", body));
      return;
    }
    HttpResponse res = MakeError(ReplyShape(version, stay_open), outcome.status, raw->id,
                                 outcome.retry_after_s, outcome.reason);
    AddRateLimitHeaders(raw->rate_limit, res);
    options_.metrics->Record(model, tier, res.result_int(), Seconds(total), -1, -1);
    options_.service->Finish(*raw, outcome, ToMillis(total));
    if (keep_task) options_.tasks->Complete(raw->id, ToTaskAnswer(outcome, RoundedMillis(total)));
    reply(std::move(res));
  });

  AdmissionDecision admission;
  Status submitted = options_.service->Submit(req, client_timeout_us, &admission);
  if (trace) {
    trace->Event("admission", {{"sluice.admission",
                                submitted.ok() ? std::string("admitted") : submitted.message()}});
  }
  if (Status s = std::move(submitted); !s.ok()) {
    InferenceOutcome rejected;
    if (s.code() == ErrorCode::kUnavailable) {
      rejected.reason = options_.service->UnavailableReason(admission);
      rejected.retry_after_s = admission.retry_after_s;
      options_.metrics->RecordShed(model, tier, rejected.reason);
    }
    rejected.status = std::move(s);
    // Refused: a retry with the same Idempotency-Key must run (and the
    // answer below then finds no task to keep).
    if (keep_task) options_.tasks->Discard(req->id);
    req->Complete(std::move(rejected));
  }
}

void FrontDoor::Refuse(ReplyShape shape, const Status& s, const std::string& id, int model,
                       int tier, TimePoint start, const RateLimitDecision* limits,
                       const Reply& reply) {
  options_.metrics->Record(model, tier, HttpStatusFor(s.code()),
                           Seconds(options_.service->clock().Now() - start), -1, -1);
  HttpResponse res = MakeError(shape, s, id);
  if (limits != nullptr) {
    AddRateLimitHeaders(*limits, res);
    // Retry-After only where retrying can help.
    if (res.result_int() != 429 && res.result_int() != 503) res.erase(bhttp::field::retry_after);
  }
  reply(std::move(res));
}

void FrontDoor::SubmitAsync(ReplyShape shape, const RequestPtr& req, int64_t client_timeout_us,
                            bool prefer_async, int model, int tier, TimePoint start,
                            const Reply& reply) {
  const Clock& clock = options_.service->clock();
  AdmissionDecision admission;
  Status s = options_.service->Submit(req, client_timeout_us, &admission);
  if (s.ok()) {
    HttpResponse res = MakeResponse(shape, 202, EncodeTaskAccepted(req->id));
    res.set(bhttp::field::location, "/v1/result/" + req->id);
    res.set("X-Request-Id", req->id);
    if (prefer_async) res.set("Preference-Applied", "respond-async");
    AddRateLimitHeaders(req->rate_limit, res);
    options_.metrics->Record(model, tier, 202, Seconds(clock.Now() - start), -1, -1);
    return reply(std::move(res));
  }
  // Refused now: answered now, as a synchronous request would be.
  InferenceOutcome rejected;
  if (s.code() == ErrorCode::kUnavailable) {
    rejected.reason = options_.service->UnavailableReason(admission);
    rejected.retry_after_s = admission.retry_after_s;
    options_.metrics->RecordShed(model, tier, rejected.reason);
  }
  HttpResponse res = MakeError(shape, s, req->id, rejected.retry_after_s, rejected.reason);
  AddRateLimitHeaders(req->rate_limit, res);
  if (res.result_int() != 429 && res.result_int() != 503) res.erase(bhttp::field::retry_after);
  options_.metrics->Record(model, tier, res.result_int(), Seconds(clock.Now() - start), -1, -1);
  rejected.status = std::move(s);
  options_.tasks->Discard(req->id);    // first: the answer below finds no task to keep
  req->Complete(std::move(rejected));  // the log's record
  reply(std::move(res));
}

}  // namespace sluice::http
