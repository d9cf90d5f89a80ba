// The OpenAI-compatible routes: POST /v1/embeddings, /v1/completions and
// /v1/chat/completions, GET /v1/models. Each text of a call becomes its own
// request through the same keys, limits, admission, queue and batches as
// POST /v1/inference, so one client's array and other clients' single texts
// share batches; the answer is put back together in order. Chat renders
// its messages into one prompt with the model's template (a chat backend
// gets the messages themselves). A streamed answer (stream: true) goes out
// as server-sent events: from a chat backend piece by piece as they arrive
// (RelayPiece), from a batch backend once its batch is back.
#include <algorithm>
#include <mutex>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "common/ids.h"
#include "common/utf8.h"
#include "core/tokens.h"
#include "http/front_door.h"
#include "http/openai_codec.h"

namespace sluice::http {

namespace json = boost::json;

namespace {
double Seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }

const char* DefaultCode(int http_status) {
  switch (http_status) {
    case 401:
      return "invalid_api_key";
    case 429:
      return "rate_limit_exceeded";
    default:
      return nullptr;
  }
}

// "7s": OpenAI's reset header values.
std::string ResetValue(int64_t seconds) { return std::to_string(seconds) + "s"; }

// The parameters a chat backend is sent: the sampling fields and the
// conversation itself.
std::string WithMessages(const OpenAiSampling& sampling, const std::vector<ChatMessage>& messages) {
  json::object params;
  if (!sampling.params_json.empty()) {
    boost::system::error_code ec;
    json::value v = json::parse(sampling.params_json, ec);
    if (!ec && v.is_object()) params = std::move(v.as_object());
  }
  json::array list;
  for (const ChatMessage& m : messages) {
    list.push_back(json::object{{"role", m.role}, {"content", m.content}});
  }
  params["messages"] = std::move(list);
  return json::serialize(params);
}

// One chunk of a chunked transfer encoding.
std::string Chunked(std::string_view data) {
  std::string out = fmt::format("{:x}\r\n", data.size());
  out.append(data);
  out.append("\r\n");
  return out;
}
constexpr std::string_view kLastChunk = "0\r\n\r\n";

// "cmpl-"/"chatcmpl-" + the hex of request id `id` ("req_" + hex).
std::string AnswerId(bool chat, const std::string& id) {
  return (chat ? "chatcmpl-" : "cmpl-") + id.substr(id.find('_') + 1);
}

int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

HttpResponse MakeOpenAiError(ReplyShape shape, const Status& status, const std::string& request_id,
                             int64_t retry_after_s, const char* code) {
  const int http_status = HttpStatusFor(status.code());
  return MakeErrorResponse(
      shape, http_status,
      EncodeOpenAiError(http_status, status.message(), ErrorParam(status.message()),
                        code != nullptr ? code : DefaultCode(http_status)),
      request_id, retry_after_s);
}

void AddOpenAiRateLimitHeaders(const RateLimitDecision& decision, HttpResponse& response) {
  AddRateLimitHeaders(decision, response);
  const std::pair<const char*, const RateLimitState*> limits[] = {{"requests", &decision.requests},
                                                                  {"tokens", &decision.tokens}};
  for (const auto& [name, state] : limits) {
    if (state->limit <= 0) continue;
    const std::string suffix(name);
    response.set("x-ratelimit-limit-" + suffix, std::to_string(state->limit));
    response.set("x-ratelimit-remaining-" + suffix, std::to_string(state->remaining));
    response.set("x-ratelimit-reset-" + suffix, ResetValue(state->reset_s));
  }
}

// One OpenAI call on its way: its texts' requests and their outcomes. The
// answer is sent by whichever completion finishes the call (`answered`
// makes it exactly once): the last success, or the first failure.
struct FrontDoor::OpenAiCall {
  OpenAiApi api = OpenAiApi::kEmbeddings;
  std::string model_name;
  int model = -1;
  int tier = -1;
  ReplyShape shape;
  TimePoint start;
  Reply reply;
  RateLimitDecision rate_limit;
  std::shared_ptr<RequestTrace> trace;  // the call's span; null when tracing is off
  // embeddings
  bool base64 = false;
  int dimensions = 0;
  // completions and chat
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;
  // A stream relayed as a chat backend produces it: `head` (id, created,
  // model) names every chunk; the first piece sends the header. Pieces come
  // from the backend's thread and the end from the dispatcher's: both append
  // to `stream_out` under `stream_mu`, and one drain on the connection's
  // thread hands the bytes over in that order (DrainStream).
  bool relay = false;
  CompletionAnswer head;
  std::mutex stream_mu;
  bool stream_started = false;    // GUARDED_BY(stream_mu): the header is out (or in stream_out)
  bool stream_finished = false;   // GUARDED_BY(stream_mu): the answer is decided; no more pieces
  std::string stream_out;         // GUARDED_BY(stream_mu): bytes not yet handed to the connection
  bool stream_last = false;       // GUARDED_BY(stream_mu): stream_out ends the response
  bool stream_keep_alive = true;  // GUARDED_BY(stream_mu): for the last part
  bool drain_posted = false;      // GUARDED_BY(stream_mu)

  std::vector<RequestPtr> requests;
  std::vector<InferenceOutcome> outcomes;  // [i] written by request i's completion only
  std::atomic<size_t> remaining{0};
  std::atomic<size_t> submitted{0};  // requests[0, submitted) were handed to the service
  std::atomic<bool> answered{false};
};

bool FrontDoor::QueueStreamBytes(OpenAiCall& call, std::string bytes, bool last) {
  call.stream_out.append(bytes);
  call.stream_last = call.stream_last || last;
  if (call.drain_posted) return false;
  call.drain_posted = true;
  return true;
}

void FrontDoor::PostDrain(const std::shared_ptr<OpenAiCall>& call) {
  call->reply.Post([call] { DrainStream(call); });
}

void FrontDoor::DrainStream(const std::shared_ptr<OpenAiCall>& call) {
  WireResponse part;
  {
    std::lock_guard lock(call->stream_mu);
    call->drain_posted = false;
    if (call->stream_out.empty()) return;
    part.bytes.swap(call->stream_out);
    part.more = !call->stream_last;
    part.keep_alive = part.more ? call->shape.keep_alive : call->stream_keep_alive;
  }
  part.status = 200;
  // On the connection's thread, one drain after another: the parts reach
  // the connection in the order their bytes were queued.
  call->reply(std::move(part));
}

void FrontDoor::HandleModelList(const HttpRequest& request, Reply& reply) {
  std::vector<ModelEntry> models;
  for (size_t i = 0; i < options_.service->model_count(); ++i) {
    models.push_back(ModelEntry{options_.service->model(i).name, started_unix_s_});
  }
  reply(MakeResponse(request, 200, EncodeModelList(models)));
}

void FrontDoor::HandleOpenAi(OpenAiApi api, HttpRequest&& request, Reply reply,
                             const std::shared_ptr<RequestTrace>& trace) {
  const std::shared_ptr<void> open = trace ? trace->KeepOpen() : nullptr;  // see HandleInference
  const Clock& clock = options_.service->clock();
  const TimePoint start = clock.Now();
  const std::string first_id = NewRequestId();
  const RateLimitDecision* limits = nullptr;  // set once the key was charged
  auto refuse = [&](const Status& s, int model, int tier, const char* code = nullptr) {
    options_.metrics->Record(model, tier, HttpStatusFor(s.code()), Seconds(clock.Now() - start), -1,
                             -1);
    HttpResponse res = MakeOpenAiError(request, s, first_id, 0, code);
    if (limits != nullptr) {
      AddOpenAiRateLimitHeaders(*limits, res);
      if (res.result_int() != 429 && res.result_int() != 503) res.erase(bhttp::field::retry_after);
    }
    reply(std::move(res));
  };

  if (trace) trace->Attribute("sluice.request_id", first_id);
  Result<Principal> authenticated = AuthenticateKey(request);
  if (!authenticated.ok()) {
    options_.metrics->RecordAuthFailure(/*service_token=*/false);
    return refuse(authenticated.status(), -1, -1);
  }
  const Principal& principal = authenticated.value();
  if (trace) trace->Event("authenticated", {{"sluice.tier", principal.tier_name}});
  const int tier = principal.tier;

  auto call = std::make_shared<OpenAiCall>();
  call->api = api;
  call->tier = tier;
  call->shape = ReplyShape(request);
  call->start = start;
  std::vector<std::string> texts;
  InferenceParams params;
  Status parsed;
  const char* wrong_task = nullptr;  // the model's task does not serve this route
  if (api == OpenAiApi::kEmbeddings) {
    Result<EmbeddingsCall> c = ParseEmbeddingsCall(request.body());
    if (c.ok()) {
      call->model_name = std::move(c->model);
      texts = std::move(c->inputs);
      call->base64 = c->base64;
      call->dimensions = c->dimensions;
    }
    parsed = c.status();
  } else {
    OpenAiSampling sampling;
    if (api == OpenAiApi::kCompletions) {
      Result<CompletionsCall> c = ParseCompletionsCall(request.body());
      if (c.ok()) {
        call->model_name = std::move(c->model);
        texts = std::move(c->prompts);
        sampling = std::move(c->sampling);
      }
      parsed = c.status();
    } else {
      Result<ChatCall> c = ParseChatCall(request.body());
      if (c.ok()) {
        call->model_name = std::move(c->model);
        sampling = std::move(c->sampling);
        const int m = options_.service->FindModel(call->model_name);
        if (m >= 0 && static_cast<size_t>(m) < options_.openai_models.size()) {
          const OpenAiModel& info = options_.openai_models[static_cast<size_t>(m)];
          // The prompt: what a batch backend runs; for a chat backend, the
          // text its tokens are estimated from (it gets the messages).
          Result<std::string> prompt = info.chat_template.Render(c->messages);
          if (prompt.ok()) texts.push_back(std::move(prompt).value());
          parsed = prompt.status();
          if (info.chat_backend) sampling.params_json = WithMessages(sampling, c->messages);
        }
      } else {
        parsed = c.status();
      }
    }
    params.max_tokens = sampling.max_tokens;
    params.temperature = sampling.temperature;
    params.json = std::move(sampling.params_json);
    call->stop = std::move(sampling.stop);
    call->stream = sampling.stream;
    call->include_usage = sampling.include_usage;
  }
  const int model = parsed.ok() ? options_.service->FindModel(call->model_name) : -1;
  call->model = model;
  if (model >= 0) {
    const bool embeddings = options_.openai_models[static_cast<size_t>(model)].embeddings;
    if (embeddings != (api == OpenAiApi::kEmbeddings)) {
      wrong_task =
          embeddings ? "serves embeddings: use /v1/embeddings" : "does not serve embeddings";
    }
  }

  // Every authenticated call counts against its key's request limit, bad
  // ones included (at no token cost), as on /v1/inference.
  int64_t cost = 0;
  if (model >= 0 && wrong_task == nullptr) {
    for (const std::string& t : texts) {
      cost += api == OpenAiApi::kEmbeddings
                  ? EstimateInputTokens(t)
                  : options_.service->TokenCost(static_cast<size_t>(model), t, params.max_tokens);
    }
  }
  const RateLimitDecision decision =
      options_.service->ChargeRateLimit(principal, cost, model, /*async=*/false);
  limits = &decision;
  call->rate_limit = decision;
  if (trace) {
    trace->Event("rate_limit",
                 {{"sluice.rate_limit.allowed", decision.allowed},
                  {"sluice.rate_limit.requests_remaining", decision.requests.remaining},
                  {"sluice.rate_limit.tokens_remaining", decision.tokens.remaining}});
  }
  if (!decision.allowed && decision.cost_exceeds_limit) {
    return refuse(
        CostOverLimitStatus(decision, api == OpenAiApi::kEmbeddings ? "input" : "max_tokens"),
        model, tier);
  }
  if (!decision.allowed) {
    options_.metrics->RecordRateLimited(tier, decision.limited_by);
    options_.metrics->Record(model, tier, 429, Seconds(clock.Now() - start), -1, -1);
    HttpResponse res = MakeOpenAiError(request, RateLimitStatus(decision), first_id,
                                       decision.retry_after_s, "rate_limit_exceeded");
    AddOpenAiRateLimitHeaders(decision, res);
    return reply(std::move(res));
  }
  if (!parsed.ok()) return refuse(parsed, -1, tier);
  if (model < 0) {
    return refuse(
        NotFound("model: '" + SanitizeUtf8(call->model_name, 200) + "' is not served here"), -1,
        tier, "model_not_found");
  }
  auto refund_and_refuse = [&](const Status& s) {
    options_.service->RefundTokens(principal, cost, model, /*async=*/false);
    refuse(s, model, tier);
  };
  if (wrong_task != nullptr) {
    return refund_and_refuse(InvalidArgument("model: '" + call->model_name + "' " + wrong_task));
  }
  const OpenAiModel& info = options_.openai_models[static_cast<size_t>(model)];
  if (call->dimensions > 0) {
    if (!info.accepts_dimensions) {
      return refund_and_refuse(
          InvalidArgument("dimensions: model '" + call->model_name + "' does not support it"));
    }
    if (call->dimensions > info.embedding_dimensions) {
      return refund_and_refuse(InvalidArgument("dimensions: must be at most " +
                                               std::to_string(info.embedding_dimensions) +
                                               " for model '" + call->model_name + "'"));
    }
  }
  const InferenceService::Model& m = options_.service->model(static_cast<size_t>(model));
  if (api == OpenAiApi::kEmbeddings) {
    params.max_tokens = 1;  // an embedding generates nothing
  } else if (params.max_tokens > m.max_tokens_limit) {
    return refund_and_refuse(InvalidArgument("max_tokens: must be at most " +
                                             std::to_string(m.max_tokens_limit) + " for model '" +
                                             call->model_name + "'"));
  }
  call->reply = std::move(reply);
  // A chat backend's stream is relayed as it comes (HTTP/1.1: chunked).
  call->relay = info.chat_backend && call->stream && texts.size() == 1 && request.version() == 11;
  call->head.chat = api == OpenAiApi::kChat;
  call->head.id = AnswerId(call->head.chat, first_id);
  call->head.created = UnixSeconds();
  call->head.model = call->model_name;
  // The first text's request takes the id already in any error's header.
  call->requests.resize(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    auto req = std::make_shared<InferenceRequest>();
    req->id = i == 0 ? first_id : NewRequestId();
    req->principal = principal;
    req->model_index = static_cast<uint32_t>(model);
    req->model = call->model_name;
    req->params = params;
    req->charged_tokens =
        api == OpenAiApi::kEmbeddings
            ? EstimateInputTokens(texts[i])
            : options_.service->TokenCost(static_cast<size_t>(model), texts[i], params.max_tokens);
    req->rate_limit = decision;
    req->input = std::move(texts[i]);
    if (trace) req->trace = trace->context();  // every text's batch links to the call's span
    if (call->relay) {
      req->on_piece = [this, weak = std::weak_ptr<OpenAiCall>(call)](std::string_view piece) {
        if (auto c = weak.lock()) RelayPiece(c, piece);
      };
    }
    call->requests[i] = std::move(req);
  }
  call->trace = trace;
  SubmitOpenAi(call, call->reply.client_watch());
}

void FrontDoor::SubmitOpenAi(const std::shared_ptr<OpenAiCall>& call, ClientWatch* watch) {
  const size_t n = call->requests.size();
  call->outcomes.resize(n);
  call->remaining.store(n, std::memory_order_relaxed);
  for (size_t i = 0; i < n; ++i) {
    // A cycle (the call holds its requests) that each completion breaks:
    // Complete() drops its callback.
    call->requests[i]->set_on_complete([this, call, i](InferenceOutcome&& outcome) {
      if (call->trace) call->trace->Answered(*call->requests[i], outcome);
      const Clock& clock = options_.service->clock();
      options_.service->Finish(*call->requests[i], outcome, ToMillis(clock.Now() - call->start));
      const bool failed = !outcome.status.ok();
      call->outcomes[i] = std::move(outcome);
      if (failed && !call->answered.exchange(true, std::memory_order_acq_rel)) {
        // The call has failed: its other texts need no accelerator time
        // (those not handed over yet are not submitted at all).
        const size_t submitted = call->submitted.load(std::memory_order_acquire);
        for (size_t k = 0; k < submitted; ++k) {
          if (!call->requests[k]->completed()) options_.service->Withdraw(call->requests[k]);
        }
        AnswerOpenAiError(call, call->outcomes[i]);
      }
      if (call->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1 &&
          !call->answered.exchange(true, std::memory_order_acq_rel)) {
        AnswerOpenAi(call);
      }
    });
  }
  // A relayed stream is always watched: its client leaving cancels the call.
  if (watch != nullptr &&
      (call->relay || options_.service->QueueDepth(static_cast<uint32_t>(call->model)) >=
                          options_.watch_client_min_queue_depth)) {
    // A client that hangs up while its texts wait: drop them before they
    // reach the accelerator.
    watch->OnClientGone([service = options_.service, weak = std::weak_ptr<OpenAiCall>(call)] {
      if (auto c = weak.lock()) {
        for (const RequestPtr& r : c->requests) service->Withdraw(r);
      }
    });
  }
  for (size_t i = 0; i < n; ++i) {
    const RequestPtr& req = call->requests[i];
    if (call->answered.load(std::memory_order_acquire)) {
      // An earlier text has failed the call: the rest end without running.
      for (size_t j = i; j < n; ++j) {
        InferenceOutcome cancelled;
        cancelled.status = Status(ErrorCode::kCancelled, "another text of the call failed");
        call->requests[j]->Complete(std::move(cancelled));
      }
      return;
    }
    AdmissionDecision admission;
    Status s = options_.service->Submit(req, /*client_timeout_us=*/0, &admission);
    call->submitted.store(i + 1, std::memory_order_release);
    if (call->trace &&
        (i == 0 || !s.ok())) {  // the call's decision: its first text's, or a refusal
      call->trace->Event("admission",
                         {{"sluice.admission", s.ok() ? std::string("admitted") : s.message()}});
    }
    if (s.ok()) continue;
    InferenceOutcome rejected;
    if (s.code() == ErrorCode::kUnavailable) {
      rejected.reason = options_.service->UnavailableReason(admission);
      rejected.retry_after_s = admission.retry_after_s;
      options_.metrics->RecordShed(call->model, call->tier, rejected.reason);
    }
    rejected.status = s;
    req->Complete(std::move(rejected));  // answers the call
    // The texts after it are never queued: they end with the same status
    // (their tokens go back to the key).
    for (size_t j = i + 1; j < n; ++j) {
      InferenceOutcome same;
      same.status = s;
      call->requests[j]->Complete(std::move(same));
    }
    return;
  }
}

void FrontDoor::AnswerOpenAiError(const std::shared_ptr<OpenAiCall>& c,
                                  const InferenceOutcome& outcome) {
  OpenAiCall& call = *c;
  const Clock& clock = options_.service->clock();
  const bool stay_open = call.shape.keep_alive && !options_.service->shutting_down();
  if (call.relay) {
    std::unique_lock lock(call.stream_mu);
    call.stream_finished = true;  // no piece may start a stream now
    if (call.stream_started) {    // the status line went out: the error is an event
      const int status = HttpStatusFor(outcome.status.code());
      call.stream_keep_alive = stay_open;
      const bool post = QueueStreamBytes(
          call,
          Chunked(EncodeStreamError(status, outcome.status.message(), outcome.reason)) +
              std::string(kLastChunk),
          /*last=*/true);
      lock.unlock();
      if (post) PostDrain(c);
      options_.metrics->Record(call.model, call.tier, status, Seconds(clock.Now() - call.start), -1,
                               -1);
      return;
    }
  }
  HttpResponse res =
      MakeOpenAiError(ReplyShape(call.shape.version, stay_open), outcome.status,
                      call.requests.front()->id, outcome.retry_after_s, outcome.reason);
  AddOpenAiRateLimitHeaders(call.rate_limit, res);
  if (res.result_int() != 429 && res.result_int() != 503) res.erase(bhttp::field::retry_after);
  options_.metrics->Record(call.model, call.tier, res.result_int(),
                           Seconds(clock.Now() - call.start), -1, -1);
  call.reply(std::move(res));
}

void FrontDoor::AnswerOpenAi(const std::shared_ptr<OpenAiCall>& c) {
  OpenAiCall& call = *c;
  const Clock& clock = options_.service->clock();
  const std::string& id = call.requests.front()->id;
  std::string body;
  const char* content_type = "application/json";
  if (call.api == OpenAiApi::kEmbeddings) {
    EmbeddingsAnswer answer;
    answer.model = call.model_name;
    answer.base64 = call.base64;
    for (const InferenceOutcome& o : call.outcomes) {
      Result<std::vector<float>> v = ParseEmbedding(o.output, call.dimensions);
      if (!v.ok()) {
        InferenceOutcome bad;
        bad.status = Status(ErrorCode::kBackendError,
                            "model '" + call.model_name + "' returned a malformed embedding");
        return AnswerOpenAiError(c, bad);
      }
      answer.vectors.push_back(std::move(v).value());
      answer.prompt_tokens += o.tokens_used;
    }
    body = EncodeEmbeddings(answer);
  } else {
    CompletionAnswer answer = call.head;
    for (size_t i = 0; i < call.outcomes.size(); ++i) {
      const InferenceOutcome& o = call.outcomes[i];
      const InferenceRequest& req = *call.requests[i];
      const int64_t prompt =
          o.prompt_tokens > 0 ? int64_t{o.prompt_tokens} : EstimateInputTokens(req.input);
      const int64_t completion = std::max<int64_t>(0, int64_t{o.tokens_used} - prompt);
      bool stopped = false;
      Choice c;
      c.text = ApplyStop(o.output, call.stop, &stopped);
      c.finish_reason = !stopped && completion >= req.params.max_tokens ? "length" : "stop";
      answer.choices.push_back(std::move(c));
      answer.usage.prompt_tokens += prompt;
      answer.usage.completion_tokens += completion;
    }
    if (call.relay) {
      std::unique_lock lock(call.stream_mu);
      call.stream_finished = true;  // no piece may start a stream now
      if (call.stream_started) {    // the text went out as it came: only the end is left
        const SteadyClock::duration total = clock.Now() - call.start;
        call.stream_keep_alive = call.shape.keep_alive && !options_.service->shutting_down();
        const bool post =
            QueueStreamBytes(call,
                             Chunked(EncodeStreamClosing(answer, answer.choices[0].finish_reason,
                                                         answer.usage, call.include_usage)) +
                                 std::string(kLastChunk),
                             /*last=*/true);
        lock.unlock();
        if (post) PostDrain(c);
        options_.metrics->Record(call.model, call.tier, 200, Seconds(total), -1, -1);
        return;
      }
    }
    if (call.stream) {
      body = EncodeCompletionEvents(answer, call.include_usage);
      content_type = "text/event-stream";
    } else {
      body = EncodeCompletion(answer);
    }
  }
  const SteadyClock::duration total = clock.Now() - call.start;
  const InferenceOutcome& first = call.outcomes.front();
  const bool stay_open = call.shape.keep_alive && !options_.service->shutting_down();
  HttpResponse res =
      MakeResponse(ReplyShape(call.shape.version, stay_open), 200, std::move(body), content_type);
  res.set("X-Request-Id", id);
  if (call.stream) res.set(bhttp::field::cache_control, "no-cache");
  AddOpenAiRateLimitHeaders(call.rate_limit, res);
  options_.metrics->Record(call.model, call.tier, 200, Seconds(total),
                           first.cached ? -1 : Seconds(first.queue_wait),
                           Seconds(total - first.queue_wait - first.accelerator_time));
  call.reply(std::move(res));
}

void FrontDoor::RelayPiece(const std::shared_ptr<OpenAiCall>& c, std::string_view piece) {
  OpenAiCall& call = *c;
  std::unique_lock lock(call.stream_mu);
  if (call.stream_finished) return;  // answered already (an error, a deadline)
  std::string bytes;
  if (!call.stream_started) {
    call.stream_started = true;
    HttpResponse head = MakeResponse(call.shape, 200, "", "text/event-stream");
    head.set(bhttp::field::cache_control, "no-cache");
    head.set("X-Request-Id", call.requests.front()->id);
    AddOpenAiRateLimitHeaders(call.rate_limit, head);
    head.erase(bhttp::field::content_length);
    head.set(bhttp::field::transfer_encoding, "chunked");
    bytes = "HTTP/1.1 200 OK\r\n";
    for (const auto& field : head) {
      bytes.append(field.name_string());
      bytes.append(": ");
      bytes.append(field.value());
      bytes.append("\r\n");
    }
    bytes.append("\r\n");
    bytes.append(Chunked(EncodeStreamOpening(call.head, call.include_usage) +
                         EncodeStreamPiece(call.head, piece, call.include_usage)));
  } else {
    bytes = Chunked(EncodeStreamPiece(call.head, piece, call.include_usage));
  }
  const bool post = QueueStreamBytes(call, std::move(bytes), /*last=*/false);
  lock.unlock();
  if (post) PostDrain(c);
}

}  // namespace sluice::http
