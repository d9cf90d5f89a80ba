#include "core/chat_template.h"

namespace sluice {

namespace {
size_t Occurrences(std::string_view text, std::string_view needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string_view::npos;
       at = text.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}
}  // namespace

Status ChatTemplate::Validate() const {
  const std::pair<const char*, const std::string*> formats[] = {
      {"system", &system}, {"user", &user}, {"assistant", &assistant}};
  for (const auto& [name, format] : formats) {
    if (Occurrences(*format, kContent) != 1) {
      return InvalidArgument(std::string(name) + ": must contain {content} exactly once");
    }
  }
  return Status::Ok();
}

Result<std::string> ChatTemplate::Render(const std::vector<ChatMessage>& messages) const {
  std::string prompt;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const std::string* format = nullptr;
    if (m.role == "system" || m.role == "developer") {
      format = &system;
    } else if (m.role == "user") {
      format = &user;
    } else if (m.role == "assistant") {
      format = &assistant;
    } else {
      return InvalidArgument("messages[" + std::to_string(i) +
                             "].role: must be system, developer, user or assistant");
    }
    const size_t at = format->find(kContent);
    prompt.append(*format, 0, at);
    prompt.append(m.content);
    prompt.append(*format, at + kContent.size());
  }
  prompt.append(generation_prompt);
  return prompt;
}

}  // namespace sluice
