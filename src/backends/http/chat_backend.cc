#include "backends/http/chat_backend.h"

#include <boost/asio/post.hpp>
#include <boost/json.hpp>

namespace sluice::http_backend {

namespace json = boost::json;
using protocol_internal::EstimateTokens;
using protocol_internal::HttpFailure;
using protocol_internal::ItemParametersJson;
using protocol_internal::Malformed;

std::vector<std::string> TakeSseData(std::string& buffer) {
  std::vector<std::string> data;
  size_t start = 0;
  for (;;) {
    // An event ends at a blank line ("\n\n", or "\r\n\r\n").
    size_t end = buffer.find("\n\n", start);
    size_t crlf = buffer.find("\r\n\r\n", start);
    size_t skip = 2;
    if (crlf != std::string::npos && (end == std::string::npos || crlf < end)) {
      end = crlf;
      skip = 4;
    }
    if (end == std::string::npos) break;
    std::string_view event(buffer.data() + start, end - start);
    while (!event.empty()) {
      size_t nl = event.find('\n');
      std::string_view line = event.substr(0, nl);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.substr(0, 5) == "data:") {
        line.remove_prefix(5);
        if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
        data.emplace_back(line);
      }
      if (nl == std::string_view::npos) break;
      event.remove_prefix(nl + 1);
    }
    start = end + skip;
  }
  buffer.erase(0, start);
  return data;
}

namespace {

// One call in flight: what the stream has said so far.
struct ChatCall {
  RequestPtr request;
  std::string text;
  int64_t prompt_tokens = -1;  // from the usage chunk, when one comes
  int64_t completion_tokens = -1;
  bool done = false;       // [DONE] seen
  bool malformed = false;  // an event that is not a JSON object
  std::string error;       // an error event's message
};

std::string RequestBody(const InferenceRequest& r, const std::string& model) {
  json::object body;
  {
    boost::system::error_code ec;
    json::value v = json::parse(ItemParametersJson(r), ec);
    if (!ec && v.is_object()) body = std::move(v.as_object());
  }
  if (!body.contains("messages")) {
    body["messages"] = json::array{json::object{{"role", "user"}, {"content", r.input}}};
  }
  body["model"] = model;
  body["stream"] = true;
  body["stream_options"] = json::object{{"include_usage", true}};
  body.erase("n");
  return json::serialize(body);
}

// Takes in one event's data; false when the stream is malformed.
bool OnEvent(ChatCall& call, const std::string& data) {
  if (data == "[DONE]") {
    call.done = true;
    return true;
  }
  boost::system::error_code ec;
  json::value v = json::parse(data, ec);
  if (ec || !v.is_object()) return false;
  const json::object& o = v.as_object();
  if (const json::value* e = o.if_contains("error")) {
    const json::value* m = e->is_object() ? e->as_object().if_contains("message") : nullptr;
    call.error = m != nullptr && m->is_string() ? std::string(m->as_string()) : "error event";
    return true;
  }
  if (const json::value* choices = o.if_contains("choices"); choices && choices->is_array()) {
    for (const json::value& c : choices->as_array()) {
      const json::value* delta = c.is_object() ? c.as_object().if_contains("delta") : nullptr;
      const json::value* content =
          delta && delta->is_object() ? delta->as_object().if_contains("content") : nullptr;
      if (content == nullptr || !content->is_string() || content->as_string().empty()) continue;
      const std::string_view piece = content->as_string();
      call.text.append(piece);
      if (call.request->on_piece) {
        call.request->MarkStreaming();
        call.request->on_piece(piece);
      }
    }
  }
  if (const json::value* usage = o.if_contains("usage"); usage && usage->is_object()) {
    const json::object& u = usage->as_object();
    if (const json::value* p = u.if_contains("prompt_tokens"); p && p->is_int64()) {
      call.prompt_tokens = p->as_int64();
    }
    if (const json::value* c = u.if_contains("completion_tokens"); c && c->is_int64()) {
      call.completion_tokens = c->as_int64();
    }
  }
  return true;
}

}  // namespace

Result<std::unique_ptr<ChatBackend>> ChatBackend::Create(const HttpBackend::Options& options) {
  if (options.io_context == nullptr) return InvalidArgument("chat backend needs an io_context");
  if (options.model.empty()) return InvalidArgument("chat backend needs a model name");
  Result<Endpoint> endpoint = ParseEndpointUrl(options.url);
  if (!endpoint.ok()) return endpoint.status();
  auto connection = MakeSlotConnection(options, endpoint.value());
  if (!connection.ok()) return connection.status();
  std::string target = endpoint->base_path + "/v1/chat/completions";
  return std::unique_ptr<ChatBackend>(
      new ChatBackend(options, std::move(target), std::move(connection.value())));
}

ChatBackend::ChatBackend(const HttpBackend::Options& options, std::string target,
                         std::unique_ptr<HttpConnection> connection)
    : options_(options),
      name_("openai-chat:" + options.url + "#" + std::to_string(options.slot_index)),
      target_(std::move(target)),
      link_(std::make_shared<SlotConnection>()),
      busy_(std::make_shared<std::atomic<bool>>(false)) {
  link_->connection = std::move(connection);
}

ChatBackend::~ChatBackend() {
  std::unique_ptr<HttpConnection> connection;
  {
    std::lock_guard lock(link_->mu);
    link_->closed = true;
    connection = std::move(link_->connection);
  }
}

void ChatBackend::RunBatch(const std::vector<RequestPtr>& batch, DoneFn done) {
  auto fail_later = [&](Status s) {
    boost::asio::post(*options_.io_context, [done = std::move(done), s = std::move(s)]() {
      BatchResult r;
      r.status = s;
      done(std::move(r));
    });
  };
  if (batch.size() != 1) {
    return fail_later(
        Internal(name_ + " takes one request per call, not " + std::to_string(batch.size())));
  }
  if (busy_->exchange(true)) return fail_later(Internal(name_ + " is already running a call"));
  auto call = std::make_shared<ChatCall>();
  call->request = batch.front();
  // The completions must not touch `this` (the backend may go first).
  auto finish = [call, done = std::move(done), busy = busy_, name = name_,
                 version = options_.model_version](Result<HttpReply> reply) mutable {
    BatchResult result;
    result.model_version = version;
    busy->store(false);
    if (!reply.ok() && reply.status().code() == ErrorCode::kCancelled) {
      result.items.push_back(
          ItemResult{Status(ErrorCode::kCancelled, "client closed the connection"), "", 0});
      return done(std::move(result));
    }
    Status s;
    if (!reply.ok()) {
      s = reply.status();
    } else if (reply->status / 100 != 2) {
      s = HttpFailure(reply->status, reply->body);
    } else {
      for (const std::string& data : TakeSseData(reply->body)) {
        if (!OnEvent(*call, data)) call->malformed = true;
      }
      if (call->malformed) s = Malformed("openai chat", "an event is not a JSON object");
      if (s.ok() && !call->error.empty()) s = BackendError("openai chat: " + call->error);
      if (s.ok() && !call->done) s = Malformed("openai chat", "the stream ended before [DONE]");
    }
    if (!s.ok()) {
      result.status = Status(s.code(), name + ": " + s.message());
      return done(std::move(result));
    }
    const InferenceRequest& r = *call->request;
    const int64_t prompt = call->prompt_tokens >= 0 ? call->prompt_tokens : EstimateTokens(r.input);
    const int64_t completion =
        call->completion_tokens >= 0 ? call->completion_tokens : EstimateTokens(call->text);
    result.items.push_back(ItemResult{Status::Ok(), std::move(call->text),
                                      static_cast<uint32_t>(prompt + completion),
                                      static_cast<uint32_t>(prompt)});
    done(std::move(result));
  };
  // Each read: its complete events; a client that left ends the call.
  auto progress = [call](std::string& body) {
    if (call->request->cancelled()) return false;
    for (const std::string& data : TakeSseData(body)) {
      if (!OnEvent(*call, data)) call->malformed = true;  // `finish` reports it
    }
    return true;
  };
  std::string body = RequestBody(*call->request, options_.model);
  {
    std::lock_guard lock(link_->mu);
    if (!link_->closed) {
      link_->connection->PostStreaming(target_, std::move(body), std::move(progress),
                                       std::move(finish), call->request->batch_traceparent);
      return;
    }
  }
  finish(Unavailable("the backend was shut down"));
}

}  // namespace sluice::http_backend
