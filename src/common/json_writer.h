// JsonObjectWriter: appends one flat JSON object to a string, member by
// member, without building a tree (no allocation per member). For the
// encoders on the hot path (the queue entry, a worker's result;
// AppendJsonString also serves the HTTP response); readers use Boost.JSON.
//
// Names are written as given: they must be plain ASCII that needs no
// escaping (the encoders' own constants). String values are escaped per RFC
// 8259 (", \ and control characters; bytes >= 0x80 pass through, as
// Boost.JSON's serializer writes them) after invalid UTF-8 is repaired
// (SanitizeUtf8), so the output is always valid JSON. Numbers: integers
// exactly; doubles in their shortest round-trip form (non-finite ones, which
// JSON cannot hold, as null).
//
// Thread-safety: none (one writer per string). The object is closed by
// Close(); the string holds a partial object until then.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice {

// Appends `utf8` as a JSON string literal. REQUIRES: valid UTF-8 (see
// AppendJsonText for text that may not be).
void AppendJsonString(std::string& out, std::string_view utf8);
// AppendJsonString after repairing invalid UTF-8 (U+FFFD per bad sequence).
void AppendJsonText(std::string& out, std::string_view text);

class JsonObjectWriter {
 public:
  explicit JsonObjectWriter(std::string& out) : out_(out) { out_.push_back('{'); }

  JsonObjectWriter& String(std::string_view name, std::string_view text);
  JsonObjectWriter& Int(std::string_view name, int64_t value);
  JsonObjectWriter& Uint(std::string_view name, uint64_t value);
  JsonObjectWriter& Double(std::string_view name, double value);
  void Close() { out_.push_back('}'); }

 private:
  void Name(std::string_view name);

  std::string& out_;
  bool first_ = true;
};

}  // namespace sluice
