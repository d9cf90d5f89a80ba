#include "modelserver/model_api.h"

#include "backends/sim/sim_model.h"

#include <cmath>

#include <boost/json.hpp>

namespace sluice::modelserver {

namespace json = boost::json;

namespace {

Status Bad(const std::string& message) { return InvalidArgument(message); }

// A string or an array of strings (OpenAI's prompt/input).
Status ReadStrings(const json::object& o, const char* key, std::vector<ApiItem>* items) {
  const json::value* v = o.if_contains(key);
  if (!v) return Bad(std::string(key) + ": required");
  if (v->is_string()) {
    items->push_back({std::string(v->as_string())});
    return Status::Ok();
  }
  if (!v->is_array()) return Bad(std::string(key) + ": expected a string or an array of strings");
  for (size_t i = 0; i < v->as_array().size(); ++i) {
    const json::value& s = v->as_array()[i];
    if (!s.is_string())
      return Bad(std::string(key) + "[" + std::to_string(i) + "]: expected a string");
    items->push_back({std::string(s.as_string())});
  }
  return Status::Ok();
}

// max_tokens: an integer >= 1 when present.
Status ReadMaxTokens(const json::value* v, const std::string& path, int* out) {
  if (!v) return Status::Ok();
  const int64_t* n = v->if_int64();
  if (!n || *n < 1 || *n > 1'000'000) return Bad(path + ": expected an integer >= 1");
  *out = static_cast<int>(*n);
  return Status::Ok();
}

Status ParseBatch(const json::object& o, ApiRequest* r) {
  const json::value* inputs = o.if_contains("inputs");
  if (!inputs || !inputs->is_array()) return Bad("inputs: expected an array of strings");
  for (size_t i = 0; i < inputs->as_array().size(); ++i) {
    const json::value& s = inputs->as_array()[i];
    if (!s.is_string()) return Bad("inputs[" + std::to_string(i) + "]: expected a string");
    r->items.push_back({std::string(s.as_string())});
  }
  const json::value* params = o.if_contains("parameters");
  if (!params || params->is_null()) return Status::Ok();
  if (!params->is_array() || params->as_array().size() != r->items.size()) {
    return Bad("parameters: expected an array with one object per input");
  }
  for (size_t i = 0; i < r->items.size(); ++i) {
    const std::string path = "parameters[" + std::to_string(i) + "]";
    const json::object* p = params->as_array()[i].if_object();
    if (!p) return Bad(path + ": expected an object");
    if (Status s = ReadMaxTokens(p->if_contains("max_tokens"), path + ".max_tokens",
                                 &r->items[i].max_tokens);
        !s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

// A [n, 1] tensor's rows, flat or nested.
const json::value* Row(const json::array& data, size_t i) {
  const json::value& v = data[i];
  if (const json::array* a = v.if_array(); a && a->size() == 1) return &a->front();
  return &v;
}

Status ParseKServe(const json::object& o, ApiRequest* r) {
  const json::value* inputs = o.if_contains("inputs");
  if (!inputs || !inputs->is_array()) return Bad("inputs: expected an array of tensors");
  const json::array* text = nullptr;
  const json::array* max_tokens = nullptr;
  for (const json::value& t : inputs->as_array()) {
    const json::object* tensor = t.if_object();
    const json::value* name = tensor ? tensor->if_contains("name") : nullptr;
    const json::value* data = tensor ? tensor->if_contains("data") : nullptr;
    if (!name || !name->is_string() || !data || !data->is_array()) {
      return Bad("inputs: every tensor needs a name and a data array");
    }
    const json::value* shape = tensor->if_contains("shape");
    const size_t rows = data->as_array().size();
    if (!shape || !shape->is_array() || shape->as_array().size() != 2 ||
        !shape->as_array()[0].is_int64() ||
        shape->as_array()[0].as_int64() != static_cast<int64_t>(rows) ||
        shape->as_array()[1] != 1) {
      return Bad("inputs." + std::string(name->as_string()) + ": shape must be [" +
                 std::to_string(rows) + ", 1]");
    }
    if (name->as_string() == "text_input") text = &data->as_array();
    if (name->as_string() == "max_tokens") max_tokens = &data->as_array();
  }
  if (!text) return Bad("inputs: no BYTES tensor named text_input");
  if (max_tokens && max_tokens->size() != text->size()) {
    return Bad("inputs.max_tokens: must have as many rows as text_input");
  }
  for (size_t i = 0; i < text->size(); ++i) {
    const json::value* s = Row(*text, i);
    if (!s->is_string())
      return Bad("inputs.text_input row " + std::to_string(i) + ": not a string");
    r->items.push_back({std::string(s->as_string())});
    if (max_tokens) {
      if (Status st =
              ReadMaxTokens(Row(*max_tokens, i), "inputs.max_tokens row " + std::to_string(i),
                            &r->items.back().max_tokens);
          !st.ok()) {
        return st;
      }
    }
  }
  return Status::Ok();
}

// messages: [{"role", "content": string}], at least one; the item's input
// is one "role: content" line per message.
Status ParseChat(const json::object& o, ApiRequest* r) {
  const json::value* messages = o.if_contains("messages");
  if (!messages || !messages->is_array() || messages->as_array().empty()) {
    return Bad("messages: expected a non-empty array");
  }
  ApiItem item;
  for (size_t i = 0; i < messages->as_array().size(); ++i) {
    const json::object* m = messages->as_array()[i].if_object();
    const json::value* role = m ? m->if_contains("role") : nullptr;
    const json::value* content = m ? m->if_contains("content") : nullptr;
    if (!role || !role->is_string() || !content || !content->is_string()) {
      return Bad("messages[" + std::to_string(i) + "]: expected a role and a string content");
    }
    item.input.append(role->as_string()).append(": ").append(content->as_string()).append("\n");
  }
  const char* key = o.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  if (Status s = ReadMaxTokens(o.if_contains(key), key, &item.max_tokens); !s.ok()) return s;
  if (const json::value* stream = o.if_contains("stream"); stream && stream->is_bool()) {
    r->stream = stream->as_bool();
  }
  if (const json::value* so = o.if_contains("stream_options"); so && so->is_object()) {
    const json::value* usage = so->as_object().if_contains("include_usage");
    r->include_usage = usage && usage->is_bool() && usage->as_bool();
  }
  r->items.push_back(std::move(item));
  return Status::Ok();
}

}  // namespace

Result<ApiRequest> ParseApiRequest(Api api, std::string_view body, std::string_view path_model) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return Bad("body: invalid JSON (" + ec.message() + ")");
  const json::object* o = v.if_object();
  if (!o) return Bad("body: expected a JSON object");
  ApiRequest r;
  r.api = api;
  Status s;
  if (api == Api::kKServe) {
    r.model = std::string(path_model);
    s = ParseKServe(*o, &r);
  } else {
    const json::value* model = o->if_contains("model");
    if (!model || !model->is_string()) return Bad("model: expected a string");
    r.model = std::string(model->as_string());
    if (api == Api::kBatch) {
      s = ParseBatch(*o, &r);
    } else if (api == Api::kChat) {
      s = ParseChat(*o, &r);
    } else if (api == Api::kCompletions) {
      s = ReadStrings(*o, "prompt", &r.items);
      int max_tokens = 16;
      if (s.ok()) s = ReadMaxTokens(o->if_contains("max_tokens"), "max_tokens", &max_tokens);
      for (ApiItem& item : r.items) item.max_tokens = max_tokens;
    } else {
      s = ReadStrings(*o, "input", &r.items);
    }
  }
  if (!s.ok()) return s;
  if (r.items.empty()) return Bad("the batch is empty");
  if (r.items.size() > kMaxItemsPerBatch) {
    return Bad("at most " + std::to_string(kMaxItemsPerBatch) + " items per batch");
  }
  return r;
}

std::string EncodeApiReply(const ApiRequest& request, const std::vector<ItemReply>& items,
                           std::string_view model_version) {
  const int64_t n = static_cast<int64_t>(items.size());
  switch (request.api) {
    case Api::kBatch: {
      json::array outputs;
      for (const ItemReply& item : items) {
        if (!item.error.empty()) {
          outputs.push_back(json::object{{"error", item.error}});
        } else {
          outputs.push_back(
              json::object{{"output", item.output}, {"tokens_used", item.tokens_used}});
        }
      }
      return json::serialize(
          json::object{{"outputs", std::move(outputs)}, {"model_version", model_version}});
    }
    case Api::kCompletions: {
      json::array choices;
      int64_t total = 0;
      for (int64_t i = 0; i < n; ++i) {
        choices.push_back(json::object{{"index", i},
                                       {"text", items[static_cast<size_t>(i)].output},
                                       {"finish_reason", "length"}});
        total += items[static_cast<size_t>(i)].tokens_used;
      }
      return json::serialize(json::object{{"object", "text_completion"},
                                          {"model", request.model},
                                          {"choices", std::move(choices)},
                                          {"usage", json::object{{"total_tokens", total}}}});
    }
    case Api::kEmbeddings: {
      json::array data;
      for (int64_t i = 0; i < n; ++i) {
        json::array e;
        for (double x : items[static_cast<size_t>(i)].embedding) e.push_back(x);
        data.push_back(
            json::object{{"object", "embedding"}, {"index", i}, {"embedding", std::move(e)}});
      }
      return json::serialize(
          json::object{{"object", "list"}, {"model", request.model}, {"data", std::move(data)}});
    }
    case Api::kChat: {
      const ItemReply& item = items.front();
      const int64_t prompt = sim::InputTokens(request.items.front().input);
      const int64_t total = item.tokens_used;
      return json::serialize(json::object{
          {"object", "chat.completion"},
          {"model", request.model},
          {"choices", json::array{json::object{{"index", 0},
                                               {"message", json::object{{"role", "assistant"},
                                                                        {"content", item.output}}},
                                               {"finish_reason", "stop"}}}},
          {"usage", json::object{{"prompt_tokens", prompt},
                                 {"completion_tokens", total - prompt},
                                 {"total_tokens", total}}}});
    }
    case Api::kKServe: {
      json::array text, tokens;
      for (const ItemReply& item : items) {
        text.push_back(json::string(item.output));
        tokens.push_back(item.tokens_used);
      }
      json::array outputs;
      outputs.push_back(json::object{{"name", "text_output"},
                                     {"datatype", "BYTES"},
                                     {"shape", json::array{n, 1}},
                                     {"data", std::move(text)}});
      outputs.push_back(json::object{{"name", "tokens_used"},
                                     {"datatype", "INT32"},
                                     {"shape", json::array{n, 1}},
                                     {"data", std::move(tokens)}});
      return json::serialize(json::object{{"model_name", request.model},
                                          {"model_version", model_version},
                                          {"outputs", std::move(outputs)}});
    }
  }
  return "{}";
}

std::vector<std::string> ChatStreamEvents(const ApiRequest& request, std::string_view output,
                                          uint32_t tokens_used) {
  auto chunk = [&](json::object delta, const char* finish) {
    json::object choice{{"index", 0}, {"delta", std::move(delta)}};
    if (finish == nullptr) {
      choice["finish_reason"] = nullptr;
    } else {
      choice["finish_reason"] = finish;
    }
    return json::serialize(json::object{{"object", "chat.completion.chunk"},
                                        {"model", request.model},
                                        {"choices", json::array{std::move(choice)}}});
  };
  std::vector<std::string> events;
  events.push_back(chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
  size_t start = 0;
  while (start < output.size()) {
    size_t word = output.find_first_not_of(' ', start);
    size_t end = word == std::string_view::npos ? output.size() : output.find(' ', word);
    if (end == std::string_view::npos) end = output.size();
    events.push_back(chunk({{"content", output.substr(start, end - start)}}, nullptr));
    start = end;
  }
  events.push_back(chunk({}, "stop"));
  if (request.include_usage) {
    const int64_t prompt = sim::InputTokens(request.items.front().input);
    events.push_back(json::serialize(
        json::object{{"object", "chat.completion.chunk"},
                     {"model", request.model},
                     {"choices", json::array{}},
                     {"usage", json::object{{"prompt_tokens", prompt},
                                            {"completion_tokens", int64_t{tokens_used} - prompt},
                                            {"total_tokens", int64_t{tokens_used}}}}}));
  }
  events.push_back("[DONE]");
  return events;
}

}  // namespace sluice::modelserver
