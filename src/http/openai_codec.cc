#include "http/openai_codec.h"

#include <cmath>
#include <cstring>
#include <iterator>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "common/crypto.h"

namespace sluice::http {

namespace json = boost::json;

namespace {

Status Bad(std::string_view param, std::string_view what) {
  return InvalidArgument(std::string(param) + ": " + std::string(what));
}

Result<json::object> ParseObject(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return InvalidArgument("the request body is not valid JSON");
  if (!v.is_object()) return InvalidArgument("the request body must be a JSON object");
  return std::move(v.as_object());
}

// `o[key]` when present and not null.
const json::value* Field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v == nullptr || v->is_null() ? nullptr : v;
}

Status ReadModel(const json::object& o, std::string* model) {
  const json::value* v = Field(o, "model");
  if (v == nullptr) return Bad("model", "required");
  if (!v->is_string() || v->as_string().empty()) return Bad("model", "must be a non-empty string");
  model->assign(v->as_string());
  return Status::Ok();
}

// A string, or an array of 1..kMaxOpenAiInputs strings.
Status ReadTexts(const json::object& o, std::string_view key, std::vector<std::string>* out) {
  const json::value* v = Field(o, key);
  if (v == nullptr) return Bad(key, "required");
  if (v->is_string()) {
    out->emplace_back(v->as_string());
    return Status::Ok();
  }
  if (!v->is_array()) return Bad(key, "must be a string or an array of strings");
  const json::array& a = v->as_array();
  if (a.empty()) return Bad(key, "must not be an empty array");
  if (a.size() > kMaxOpenAiInputs) {
    return Bad(key, "at most " + std::to_string(kMaxOpenAiInputs) + " items");
  }
  out->reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_string()) {
      return Bad(std::string(key) + "[" + std::to_string(i) + "]",
                 a[i].is_array() || a[i].is_int64()
                     ? "must be a string (token arrays are not supported)"
                     : "must be a string");
    }
    out->emplace_back(a[i].as_string());
  }
  return Status::Ok();
}

Status ReadNumber(const json::object& o, std::string_view key, double lo, double hi,
                  std::optional<double>* out) {
  const json::value* v = Field(o, key);
  if (v == nullptr) return Status::Ok();
  if (!v->is_number()) return Bad(key, "must be a number");
  const double x = v->to_number<double>();
  if (!(x >= lo && x <= hi)) return Bad(key, fmt::format("must be between {} and {}", lo, hi));
  *out = x;
  return Status::Ok();
}

Status ReadInt(const json::object& o, std::string_view key, int64_t lo, int64_t hi,
               std::optional<int64_t>* out) {
  const json::value* v = Field(o, key);
  if (v == nullptr) return Status::Ok();
  const int64_t* n = v->if_int64();
  if (n == nullptr) {
    const uint64_t* u = v->if_uint64();
    if (u == nullptr) return Bad(key, "must be an integer");
    return Bad(key, fmt::format("must be between {} and {}", lo, hi));
  }
  if (*n < lo || *n > hi) return Bad(key, fmt::format("must be between {} and {}", lo, hi));
  *out = *n;
  return Status::Ok();
}

Status ReadBool(const json::object& o, std::string_view key, bool* out) {
  const json::value* v = Field(o, key);
  if (v == nullptr) return Status::Ok();
  if (!v->is_bool()) return Bad(key, "must be true or false");
  *out = v->as_bool();
  return Status::Ok();
}

// Fields Sluice cannot honour: refused unless absent or at their default.
Status RefuseUnsupported(const json::object& o) {
  std::optional<int64_t> n;
  if (Status s = ReadInt(o, "n", 1, 1, &n); !s.ok()) return Bad("n", "only 1 is supported");
  std::optional<int64_t> best_of;
  if (Status s = ReadInt(o, "best_of", 1, 1, &best_of); !s.ok()) {
    return Bad("best_of", "only 1 is supported");
  }
  for (const char* key : {"logprobs", "top_logprobs", "echo"}) {
    const json::value* v = Field(o, key);
    if (v != nullptr && !(v->is_bool() && !v->as_bool())) return Bad(key, "not supported");
  }
  for (const char* key : {"tools", "functions"}) {
    const json::value* v = Field(o, key);
    if (v != nullptr && !(v->is_array() && v->as_array().empty())) {
      return Bad(key, "not supported");
    }
  }
  return Status::Ok();
}

Status ReadSampling(const json::object& o, bool chat, OpenAiSampling* s) {
  if (Status st = RefuseUnsupported(o); !st.ok()) return st;
  std::optional<int64_t> max_tokens;
  // Chat's newer name for the same limit wins over the older one.
  const char* key =
      chat && Field(o, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  if (Status st = ReadInt(o, key, 1, 1'000'000, &max_tokens); !st.ok()) return st;
  s->max_tokens = max_tokens ? static_cast<int>(*max_tokens) : 0;
  if (Status st = ReadNumber(o, "temperature", 0, 2, &s->temperature); !st.ok()) return st;
  if (Status st = ReadNumber(o, "top_p", 0, 1, &s->top_p); !st.ok()) return st;
  if (const json::value* v = Field(o, "stop")) {
    if (v->is_string()) {
      s->stop.emplace_back(v->as_string());
    } else if (v->is_array() && v->as_array().size() <= 4) {
      for (const json::value& x : v->as_array()) {
        if (!x.is_string()) return Bad("stop", "must be a string or up to 4 strings");
        s->stop.emplace_back(x.as_string());
      }
    } else {
      return Bad("stop", "must be a string or up to 4 strings");
    }
    for (const std::string& x : s->stop) {
      if (x.empty()) return Bad("stop", "must not hold an empty string");
    }
  }
  if (Status st = ReadBool(o, "stream", &s->stream); !st.ok()) return st;
  if (const json::value* v = Field(o, "stream_options")) {
    if (!v->is_object()) return Bad("stream_options", "must be an object");
    if (!s->stream) return Bad("stream_options", "only allowed when stream is true");
    Status st = ReadBool(v->as_object(), "include_usage", &s->include_usage);
    if (!st.ok()) return Bad("stream_options.include_usage", "must be true or false");
  }
  // What a backend needs beyond max_tokens and temperature, keys in order.
  if (s->top_p || !s->stop.empty()) {
    json::object params;
    if (!s->stop.empty()) {
      json::array stop;
      for (const std::string& x : s->stop) stop.emplace_back(x);
      params["stop"] = std::move(stop);
    }
    if (s->top_p) params["top_p"] = *s->top_p;
    s->params_json = json::serialize(params);
  }
  return Status::Ok();
}

// A message's content: a string, or an array of {"type": "text", "text"}
// parts (joined).
Status ReadContent(const json::value* v, const std::string& at, std::string* out) {
  if (v == nullptr) return Bad(at, "required");
  if (v->is_string()) {
    out->assign(v->as_string());
    return Status::Ok();
  }
  if (!v->is_array()) return Bad(at, "must be a string or an array of text parts");
  const json::array& parts = v->as_array();
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string part_at = at + "[" + std::to_string(i) + "]";
    const json::object* p = parts[i].if_object();
    const json::value* type = p ? p->if_contains("type") : nullptr;
    const json::value* text = p ? p->if_contains("text") : nullptr;
    if (type == nullptr || !type->is_string() || type->as_string() != "text") {
      return Bad(part_at + ".type", "only text parts are supported");
    }
    if (text == nullptr || !text->is_string()) return Bad(part_at + ".text", "must be a string");
    out->append(text->as_string());
  }
  return Status::Ok();
}

const char* ErrorType(int http_status) {
  switch (http_status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 429:
      return "rate_limit_error";
    default:
      return http_status >= 500 ? "server_error" : "invalid_request_error";
  }
}

json::object UsageObject(const Usage& u) {
  return json::object{{"prompt_tokens", u.prompt_tokens},
                      {"completion_tokens", u.completion_tokens},
                      {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

// The text's stream pieces: each word with the spaces before it.
std::vector<std::string_view> Pieces(std::string_view text) {
  std::vector<std::string_view> pieces;
  size_t start = 0;
  while (start < text.size()) {
    size_t word = text.find_first_not_of(' ', start);
    size_t end = word == std::string_view::npos ? text.size() : text.find(' ', word);
    if (end == std::string_view::npos) end = text.size();
    pieces.push_back(text.substr(start, end - start));
    start = end;
  }
  return pieces;
}

void AppendEvent(std::string& out, const json::object& o) {
  out.append("data: ");
  out.append(json::serialize(o));
  out.append("\n\n");
}

}  // namespace

Result<EmbeddingsCall> ParseEmbeddingsCall(std::string_view body) {
  Result<json::object> parsed = ParseObject(body);
  if (!parsed.ok()) return parsed.status();
  const json::object& o = *parsed;
  EmbeddingsCall call;
  if (Status s = ReadModel(o, &call.model); !s.ok()) return s;
  if (Status s = ReadTexts(o, "input", &call.inputs); !s.ok()) return s;
  if (const json::value* v = Field(o, "encoding_format")) {
    if (!v->is_string() || (v->as_string() != "float" && v->as_string() != "base64")) {
      return Bad("encoding_format", "must be float or base64");
    }
    call.base64 = v->as_string() == "base64";
  }
  std::optional<int64_t> dims;
  if (Status s = ReadInt(o, "dimensions", 1, 65536, &dims); !s.ok()) return s;
  call.dimensions = dims ? static_cast<int>(*dims) : 0;
  return call;
}

Result<CompletionsCall> ParseCompletionsCall(std::string_view body) {
  Result<json::object> parsed = ParseObject(body);
  if (!parsed.ok()) return parsed.status();
  const json::object& o = *parsed;
  CompletionsCall call;
  if (Status s = ReadModel(o, &call.model); !s.ok()) return s;
  if (Status s = ReadTexts(o, "prompt", &call.prompts); !s.ok()) return s;
  if (Status s = ReadSampling(o, /*chat=*/false, &call.sampling); !s.ok()) return s;
  if (const json::value* v = Field(o, "suffix"); v != nullptr)
    return Bad("suffix", "not supported");
  return call;
}

Result<ChatCall> ParseChatCall(std::string_view body) {
  Result<json::object> parsed = ParseObject(body);
  if (!parsed.ok()) return parsed.status();
  const json::object& o = *parsed;
  ChatCall call;
  if (Status s = ReadModel(o, &call.model); !s.ok()) return s;
  const json::value* messages = Field(o, "messages");
  if (messages == nullptr) return Bad("messages", "required");
  if (!messages->is_array() || messages->as_array().empty()) {
    return Bad("messages", "must be a non-empty array");
  }
  for (size_t i = 0; i < messages->as_array().size(); ++i) {
    const std::string at = "messages[" + std::to_string(i) + "]";
    const json::object* m = messages->as_array()[i].if_object();
    if (m == nullptr) return Bad(at, "must be an object");
    const json::value* role = m->if_contains("role");
    if (role == nullptr || !role->is_string()) return Bad(at + ".role", "required string");
    const std::string_view r = role->as_string();
    if (r != "system" && r != "developer" && r != "user" && r != "assistant") {
      return Bad(at + ".role", "must be system, developer, user or assistant");
    }
    ChatMessage message;
    message.role = std::string(r);
    if (Status s = ReadContent(Field(*m, "content"), at + ".content", &message.content); !s.ok()) {
      return s;
    }
    call.messages.push_back(std::move(message));
  }
  if (Status s = ReadSampling(o, /*chat=*/true, &call.sampling); !s.ok()) return s;
  return call;
}

std::string ErrorParam(std::string_view message) {
  const size_t colon = message.find(": ");
  if (colon == std::string_view::npos || colon == 0) return "";
  const std::string_view head = message.substr(0, colon);
  for (char c : head) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
                    c == '[' || c == ']';
    if (!ok) return "";
  }
  return std::string(head);
}

std::string EncodeOpenAiError(int http_status, std::string_view message, std::string_view param,
                              const char* code) {
  json::object e;
  e["message"] = message;
  e["type"] = ErrorType(http_status);
  if (param.empty()) {
    e["param"] = nullptr;
  } else {
    e["param"] = param;
  }
  if (code == nullptr) {
    e["code"] = nullptr;
  } else {
    e["code"] = code;
  }
  return json::serialize(json::object{{"error", std::move(e)}});
}

Result<std::vector<float>> ParseEmbedding(std::string_view output, int dimensions) {
  boost::system::error_code ec;
  json::value v = json::parse(output, ec);
  if (ec || !v.is_array() || v.as_array().empty()) {
    return Internal("the model's embedding is not an array of numbers");
  }
  const json::array& a = v.as_array();
  const size_t n = dimensions > 0 ? static_cast<size_t>(dimensions) : a.size();
  if (a.size() < n) {
    return Internal("the model's embedding has " + std::to_string(a.size()) + " numbers, not " +
                    std::to_string(n));
  }
  std::vector<float> out;
  out.reserve(n);
  double norm = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!a[i].is_number()) return Internal("the model's embedding is not an array of numbers");
    const double x = a[i].to_number<double>();
    norm += x * x;
    out.push_back(static_cast<float>(x));
  }
  if (dimensions > 0 && norm > 0) {
    const double scale = 1.0 / std::sqrt(norm);
    for (float& x : out) x = static_cast<float>(x * scale);
  }
  return out;
}

std::string EncodeEmbeddings(const EmbeddingsAnswer& answer) {
  // Written by hand: each number as the shortest text that reads back as
  // the same float32 (Boost.JSON would print it as a double, "1.25E-1").
  std::string out = R"({"object":"list","data":[)";
  std::string bytes;
  for (size_t i = 0; i < answer.vectors.size(); ++i) {
    const std::vector<float>& vec = answer.vectors[i];
    if (i > 0) out.push_back(',');
    fmt::format_to(std::back_inserter(out), R"({{"object":"embedding","index":{},"embedding":)", i);
    if (answer.base64) {
      // OpenAI's base64: the float32s in little-endian byte order.
      bytes.assign(vec.size() * 4, '\0');
      for (size_t k = 0; k < vec.size(); ++k) {
        uint32_t bits = 0;
        std::memcpy(&bits, &vec[k], 4);
        for (int b = 0; b < 4; ++b) bytes[k * 4 + b] = static_cast<char>(bits >> (8 * b));
      }
      out.push_back('"');
      out.append(Base64(bytes));
      out.push_back('"');
    } else {
      out.push_back('[');
      for (size_t k = 0; k < vec.size(); ++k) {
        if (k > 0) out.push_back(',');
        fmt::format_to(std::back_inserter(out), "{}", vec[k]);
      }
      out.push_back(']');
    }
    out.push_back('}');
  }
  fmt::format_to(
      std::back_inserter(out), R"(],"model":{},"usage":{{"prompt_tokens":{},"total_tokens":{}}}}})",
      json::serialize(json::string_view(answer.model)), answer.prompt_tokens, answer.prompt_tokens);
  return out;
}

std::string ApplyStop(std::string text, const std::vector<std::string>& stop, bool* stopped) {
  size_t cut = std::string::npos;
  for (const std::string& s : stop) cut = std::min(cut, text.find(s));
  *stopped = cut != std::string::npos;
  if (*stopped) text.resize(cut);
  return text;
}

std::string EncodeCompletion(const CompletionAnswer& answer) {
  json::array choices;
  for (size_t i = 0; i < answer.choices.size(); ++i) {
    const Choice& c = answer.choices[i];
    json::object choice{{"index", static_cast<int64_t>(i)}};
    if (answer.chat) {
      choice["message"] = json::object{{"role", "assistant"}, {"content", c.text}};
    } else {
      choice["text"] = c.text;
    }
    choice["logprobs"] = nullptr;
    choice["finish_reason"] = c.finish_reason;
    choices.push_back(std::move(choice));
  }
  return json::serialize(
      json::object{{"id", answer.id},
                   {"object", answer.chat ? "chat.completion" : "text_completion"},
                   {"created", answer.created},
                   {"model", answer.model},
                   {"choices", std::move(choices)},
                   {"usage", UsageObject(answer.usage)}});
}

namespace {
// One chunk object of a streamed answer with `choices`.
json::object Chunk(const CompletionAnswer& answer, json::array choices, bool include_usage) {
  json::object o{{"id", answer.id},
                 {"object", answer.chat ? "chat.completion.chunk" : "text_completion"},
                 {"created", answer.created},
                 {"model", answer.model},
                 {"choices", std::move(choices)}};
  if (include_usage) o["usage"] = nullptr;
  return o;
}

// One choice of a chunk: its piece of text (chat: a delta) and, in its last
// chunk, why it ended.
json::object ChunkChoice(const CompletionAnswer& answer, size_t index, json::object delta,
                         std::string_view text, const char* finish) {
  json::object c{{"index", static_cast<int64_t>(index)}};
  if (answer.chat) {
    c["delta"] = std::move(delta);
  } else {
    c["text"] = text;
  }
  c["logprobs"] = nullptr;
  if (finish == nullptr) {
    c["finish_reason"] = nullptr;
  } else {
    c["finish_reason"] = finish;
  }
  return c;
}

void AppendOpening(std::string& out, const CompletionAnswer& answer, size_t index,
                   bool include_usage) {
  if (!answer.chat) return;
  AppendEvent(
      out,
      Chunk(answer,
            {ChunkChoice(answer, index, {{"role", "assistant"}, {"content", ""}}, "", nullptr)},
            include_usage));
}

void AppendPiece(std::string& out, const CompletionAnswer& answer, size_t index,
                 std::string_view piece, bool include_usage) {
  AppendEvent(out, Chunk(answer, {ChunkChoice(answer, index, {{"content", piece}}, piece, nullptr)},
                         include_usage));
}

void AppendClosing(std::string& out, const CompletionAnswer& answer, const Usage& usage,
                   bool include_usage) {
  if (include_usage) {
    json::object o = Chunk(answer, {}, include_usage);
    o["usage"] = UsageObject(usage);
    AppendEvent(out, o);
  }
  out.append("data: [DONE]\n\n");
}
}  // namespace

std::string EncodeCompletionEvents(const CompletionAnswer& answer, bool include_usage) {
  std::string out;
  for (size_t i = 0; i < answer.choices.size(); ++i) {
    const Choice& c = answer.choices[i];
    AppendOpening(out, answer, i, include_usage);
    for (std::string_view piece : Pieces(c.text)) AppendPiece(out, answer, i, piece, include_usage);
    AppendEvent(out,
                Chunk(answer, {ChunkChoice(answer, i, {}, "", c.finish_reason)}, include_usage));
  }
  AppendClosing(out, answer, answer.usage, include_usage);
  return out;
}

std::string EncodeStreamOpening(const CompletionAnswer& answer, bool include_usage) {
  std::string out;
  AppendOpening(out, answer, 0, include_usage);
  return out;
}

std::string EncodeStreamPiece(const CompletionAnswer& answer, std::string_view piece,
                              bool include_usage) {
  std::string out;
  AppendPiece(out, answer, 0, piece, include_usage);
  return out;
}

std::string EncodeStreamClosing(const CompletionAnswer& answer, const char* finish_reason,
                                const Usage& usage, bool include_usage) {
  std::string out;
  AppendEvent(out, Chunk(answer, {ChunkChoice(answer, 0, {}, "", finish_reason)}, include_usage));
  AppendClosing(out, answer, usage, include_usage);
  return out;
}

std::string EncodeStreamError(int http_status, std::string_view message, const char* code) {
  std::string out = "data: ";
  out.append(EncodeOpenAiError(http_status, message, "", code));
  out.append("\n\n");
  return out;
}

std::string EncodeModelList(const std::vector<ModelEntry>& models) {
  json::array data;
  for (const ModelEntry& m : models) {
    data.push_back(json::object{
        {"id", m.id}, {"object", "model"}, {"created", m.created}, {"owned_by", "sluice"}});
  }
  return json::serialize(json::object{{"object", "list"}, {"data", std::move(data)}});
}

}  // namespace sluice::http
