// GET /v1/result/{task_id}: an asynchronous task's state, to the key that
// submitted it; and the replay of a request sent again with the same
// Idempotency-Key.
#include "common/utf8.h"
#include "http/front_door.h"
#include "http/inference_codec.h"
#include "http/task_codec.h"

namespace sluice::http {

namespace {

// The response the synchronous API gave (or would have given) for `task`.
HttpResponse AnswerOf(ReplyShape shape, const TaskView& task) {
  const TaskAnswer& a = task.answer;
  if (a.http_status == 200) {
    InferenceOutcome o;
    o.output = a.output;
    o.tokens_used = a.tokens_used;
    o.model_version = a.model_version;
    o.cached = a.cached;
    o.collapsed = a.collapsed;
    return MakeResponse(shape, 200, EncodeInferenceResponse(task.id, o, a.latency_ms));
  }
  HttpResponse res = MakeResponse(
      shape, a.http_status,
      EncodeError(Status(ErrorCode::kInternal, a.error_message), task.id, a.error_code.c_str(),
                  a.error_reason.empty() ? nullptr : a.error_reason.c_str()));
  if (a.http_status == 503 || a.http_status == 429) res.set(bhttp::field::retry_after, "1");
  return res;
}

}  // namespace

void FrontDoor::HandleResult(const HttpRequest& request, std::string_view task_id, Reply reply) {
  Result<Principal> principal = AuthenticateKey(request);
  if (!principal.ok()) {
    options_.metrics->RecordAuthFailure(/*service_token=*/false);
    return reply(MakeError(request, principal.status()));
  }
  const Status not_found = NotFound("task '" + SanitizeUtf8(task_id, 100) + "' not found");
  if (options_.tasks == nullptr) return reply(MakeError(request, not_found));
  int64_t wait_ms = 0;
  if (Status s = ParseWaitMs(request.target(), options_.max_result_wait_ms, &wait_ms); !s.ok()) {
    return reply(MakeError(request, s));
  }
  // Another key's task is answered exactly as an unknown one.
  options_.tasks->Await(std::string(task_id), principal->key_id,
                        options_.service->clock().Now() + Millis(wait_ms),
                        [shape = ReplyShape(request), not_found,
                         reply = std::move(reply)](std::optional<TaskView> task) {
                          if (!task) return reply(MakeError(shape, not_found));
                          reply(MakeResponse(shape, 200, EncodeTask(*task)));
                        });
}

void FrontDoor::ReplayIdempotent(const HttpRequest& request, const std::string& task_id,
                                 const Principal& principal, bool async, int model, TimePoint until,
                                 Reply reply) {
  const int tier = principal.tier;
  const TimePoint start = options_.service->clock().Now();
  if (async) {
    HttpResponse res = MakeResponse(request, 202, EncodeTaskAccepted(task_id));
    res.set(bhttp::field::location, "/v1/result/" + task_id);
    res.set("X-Request-Id", task_id);
    res.set("Idempotent-Replayed", "true");
    options_.metrics->Record(model, tier, 202, 0, -1, -1);
    return reply(std::move(res));
  }
  options_.tasks->Await(
      task_id, principal.key_id, until,
      [this, shape = ReplyShape(request), task_id, model, tier, start,
       reply = std::move(reply)](std::optional<TaskView> task) {
        HttpResponse res;
        if (!task) {
          // The first request was refused meanwhile: nothing to repeat.
          res = MakeError(shape,
                          Unavailable("the first request with this Idempotency-Key was not "
                                      "accepted; send it again"),
                          task_id);
        } else if (!task->done) {
          res = MakeError(shape,
                          DeadlineExceeded("the first request with this Idempotency-Key has no "
                                           "answer yet"),
                          task_id);
        } else {
          res = AnswerOf(shape, *task);
          res.set("X-Request-Id", task_id);
        }
        res.set("Idempotent-Replayed", "true");
        const double seconds =
            std::chrono::duration<double>(options_.service->clock().Now() - start).count();
        options_.metrics->Record(model, tier, res.result_int(), seconds, -1, -1);
        reply(std::move(res));
      });
}

}  // namespace sluice::http
