// ChatTemplate: how a conversation becomes one prompt for a model that only
// completes text (every batch backend: the sim, the generic protocol, KServe,
// OpenAI /v1/completions).
//
// Each role has a format in which "{content}" stands for the message's text;
// the prompt is every message's format in order, then generation_prompt (the
// cue for the model to answer as the assistant). The defaults are a plain
// ChatML-like layout. Values; Render() is a pure function (thread-safe).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice {

struct ChatMessage {
  std::string role;  // "system", "developer", "user" or "assistant"
  std::string content;
};

struct ChatTemplate {
  static constexpr std::string_view kContent = "{content}";

  std::string system = "<|system|>\n{content}\n";  // also used for "developer"
  std::string user = "<|user|>\n{content}\n";
  std::string assistant = "<|assistant|>\n{content}\n";
  std::string generation_prompt = "<|assistant|>\n";

  // OK when every role format holds "{content}" exactly once; else the
  // error names the field ("user: must contain {content} exactly once").
  Status Validate() const;

  // The prompt for `messages`. Errors: kInvalidArgument naming the message
  // ("messages[2].role: ...") for a role this template has no format for.
  Result<std::string> Render(const std::vector<ChatMessage>& messages) const;
};

}  // namespace sluice
