// The wire format of Sluice's OpenAI-compatible routes (POST /v1/embeddings,
// /v1/completions, /v1/chat/completions, GET /v1/models): request bodies
// parsed into calls, answers and errors written in OpenAI's shapes, and the
// server-sent events of a streamed answer.
//
// Parse errors are kInvalidArgument with a message that starts with the
// parameter's name ("max_tokens: must be ..."); ErrorParam() reads it back
// for the error body's "param". Fields OpenAI defines that change nothing
// here (user, seed, penalties, logit_bias...) are accepted and ignored;
// those Sluice cannot honour (n > 1, logprobs, tools) are refused by name.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "core/chat_template.h"

namespace sluice::http {

// The most texts one embeddings or completions call may carry (OpenAI's
// limit for an embeddings array); each becomes its own queue entry.
inline constexpr size_t kMaxOpenAiInputs = 2048;

// Sampling fields of completions and chat.
struct OpenAiSampling {
  int max_tokens = 0;                 // 0: the model's default
  std::optional<double> temperature;  // 0..2
  std::optional<double> top_p;        // 0..1
  std::vector<std::string> stop;      // at most 4, none empty
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  // Forwarded to HTTP backends (InferenceParams::json): the fields above
  // that /v1/inference has no typed place for, as one JSON object; empty
  // when there are none.
  std::string params_json;
};

struct EmbeddingsCall {
  std::string model;
  std::vector<std::string> inputs;  // 1..kMaxOpenAiInputs
  bool base64 = false;              // encoding_format "base64" (else "float")
  int dimensions = 0;               // 0: the model's own length
};

struct CompletionsCall {
  std::string model;
  std::vector<std::string> prompts;  // 1..kMaxOpenAiInputs
  OpenAiSampling sampling;
};

struct ChatCall {
  std::string model;
  std::vector<ChatMessage> messages;  // at least one; roles checked
  OpenAiSampling sampling;
};

Result<EmbeddingsCall> ParseEmbeddingsCall(std::string_view body);
Result<CompletionsCall> ParseCompletionsCall(std::string_view body);
Result<ChatCall> ParseChatCall(std::string_view body);

// The parameter an error message names ("max_tokens" of "max_tokens: must
// be..."; "messages[1].role"), or "" when it names none.
std::string ErrorParam(std::string_view message);

// {"error": {"message", "type", "param", "code"}}: `type` from the HTTP
// status (invalid_request_error, authentication_error, permission_error,
// rate_limit_error, server_error...), `code` when non-null (else null),
// `param` when non-empty (else null).
std::string EncodeOpenAiError(int http_status, std::string_view message, std::string_view param,
                              const char* code);

// An embedding model's output (a JSON array of numbers) as float32s, cut to
// its first `dimensions` numbers and rescaled to unit length when
// dimensions > 0. Errors: kInternal when the output is not such an array,
// or is shorter than `dimensions`.
Result<std::vector<float>> ParseEmbedding(std::string_view output, int dimensions);

struct EmbeddingsAnswer {
  std::string model;
  std::vector<std::vector<float>> vectors;  // in input order
  bool base64 = false;
  int64_t prompt_tokens = 0;
};
std::string EncodeEmbeddings(const EmbeddingsAnswer& answer);

// One generated text of a completions or chat answer.
struct Choice {
  std::string text;
  const char* finish_reason = "stop";  // "stop" or "length"
};
struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

// `text` cut before the first of `stop` it holds; *stopped says whether it
// was cut.
std::string ApplyStop(std::string text, const std::vector<std::string>& stop, bool* stopped);

struct CompletionAnswer {
  bool chat = false;    // chat.completion(.chunk), else text_completion
  std::string id;       // "cmpl-..." or "chatcmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
  std::vector<Choice> choices;
  Usage usage;
};
// The whole answer as one JSON object.
std::string EncodeCompletion(const CompletionAnswer& answer);
// The answer as server-sent events: each choice's text in pieces (a word
// and the space before it), then its finish_reason, then the usage when
// `include_usage`, then "data: [DONE]".
std::string EncodeCompletionEvents(const CompletionAnswer& answer, bool include_usage);

// The same events one at a time, for an answer relayed as a streaming
// backend produces it (`answer.choices` unused): the opening event (chat:
// the assistant role; completions: none), one per piece of text, and the
// closing ones (finish_reason, the usage when `include_usage`, [DONE]).
std::string EncodeStreamOpening(const CompletionAnswer& answer, bool include_usage);
std::string EncodeStreamPiece(const CompletionAnswer& answer, std::string_view piece,
                              bool include_usage);
std::string EncodeStreamClosing(const CompletionAnswer& answer, const char* finish_reason,
                                const Usage& usage, bool include_usage);
// An error after the stream began: {"error": {...}} as one event.
std::string EncodeStreamError(int http_status, std::string_view message, const char* code);

struct ModelEntry {
  std::string id;
  int64_t created = 0;  // Unix seconds
};
// GET /v1/models: {"object": "list", "data": [{"id", "object": "model",
// "created", "owned_by": "sluice"}]}.
std::string EncodeModelList(const std::vector<ModelEntry>& models);

}  // namespace sluice::http
