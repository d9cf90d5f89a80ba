#include "config/yaml_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <utility>

namespace sluice::config_internal {
namespace {

// What a value is, for "got ..." in messages. Long scalars are cut so a
// pasted blob cannot flood the log.
std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar: {
      constexpr size_t kMaxShown = 40;
      const std::string& s = node.Scalar();
      return '"' + (s.size() <= kMaxShown ? s : s.substr(0, kMaxShown) + "...") + '"';
    }
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

template <typename T>
bool ParseWhole(const std::string& text, T* out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return ec == std::errc() && ptr == end;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

FieldReader::FieldReader(const YAML::Node& node, std::string path, Status* error)
    : path_(std::move(path)), error_(error) {
  if (node.IsMap()) {
    node_ = node;
    return;
  }
  node_ = YAML::Node(YAML::NodeType::Map);
  if (node.IsDefined() && !node.IsNull() && error_->ok()) {
    *error_ = InvalidArgument((path_.empty() ? "document" : path_) + ": expected a mapping, got " +
                              Describe(node));
  }
}

std::string FieldReader::PathOf(std::string_view key) const {
  if (key.empty()) return path_.empty() ? "document" : path_;
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

bool FieldReader::Has(const char* key) {
  known_.emplace_back(key);
  const YAML::Node& map = node_;
  return map[key].IsDefined();
}

void FieldReader::Error(std::string_view key, const std::string& message) {
  if (error_->ok()) *error_ = InvalidArgument(PathOf(key) + ": " + message);
}

std::optional<YAML::Node> FieldReader::Value(const char* key) {
  if (!Has(key) || !ok()) return std::nullopt;
  const YAML::Node& map = node_;
  return map[key];
}

void FieldReader::ReadString(const char* key, std::string* out, Presence presence) {
  std::optional<YAML::Node> value = Value(key);
  if (!value) {
    if (presence == Presence::kRequired) missing_.emplace_back(key);
    return;
  }
  if (!value->IsScalar()) return Error(key, "expected a string, got " + Describe(*value));
  *out = value->Scalar();
}

bool FieldReader::ReadSigned(const char* key, int64_t min, int64_t max, int64_t* out) {
  std::optional<YAML::Node> value = Value(key);
  if (!value) return false;
  int64_t v = 0;
  if (value->IsScalar() && ParseWhole(value->Scalar(), &v) && v >= min && v <= max) {
    *out = v;
    return true;
  }
  const bool full_range =
      min == std::numeric_limits<int64_t>::min() && max == std::numeric_limits<int64_t>::max();
  std::string expected =
      full_range ? "an integer"
                 : "an integer between " + std::to_string(min) + " and " + std::to_string(max);
  Error(key, "expected " + expected + ", got " + Describe(*value));
  return false;
}

bool FieldReader::ReadUnsigned(const char* key, uint64_t max, uint64_t* out) {
  std::optional<YAML::Node> value = Value(key);
  if (!value) return false;
  uint64_t v = 0;
  if (value->IsScalar() && ParseWhole(value->Scalar(), &v) && v <= max) {
    *out = v;
    return true;
  }
  std::string expected = max == std::numeric_limits<uint64_t>::max()
                             ? "a non-negative integer"
                             : "an integer between 0 and " + std::to_string(max);
  Error(key, "expected " + expected + ", got " + Describe(*value));
  return false;
}

void FieldReader::ReadBool(const char* key, bool* out) {
  if (!Has(key)) return;
  std::string text;
  ReadString(key, &text);
  if (text == "true") {
    *out = true;
  } else if (text == "false") {
    *out = false;
  } else if (ok()) {
    Error(key, "expected true or false, got \"" + text + "\"");
  }
}

void FieldReader::ReadDouble(const char* key, double* out) {
  std::optional<YAML::Node> value = Value(key);
  if (!value) return;
  double v = 0;
  if (value->IsScalar() && ParseWhole(value->Scalar(), &v) && std::isfinite(v)) {
    *out = v;
    return;
  }
  Error(key, "expected a number, got " + Describe(*value));
}

void FieldReader::ReadMillisAsMicros(const char* key, int64_t* out_us) {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min() / 1000;
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max() / 1000;
  int64_t ms = 0;
  if (ReadSigned(key, kMin, kMax, &ms)) *out_us = ms * 1000;
}

YAML::Node FieldReader::ReadNode(const char* key) {
  std::optional<YAML::Node> value = Value(key);
  return value ? *value : YAML::Node();
}

std::optional<std::vector<YAML::Node>> FieldReader::ReadList(const char* key) {
  std::optional<YAML::Node> value = Value(key);
  if (!value) return std::nullopt;
  std::vector<YAML::Node> elements;
  if (value->IsNull()) return elements;  // "keys:" with nothing under it
  if (!value->IsSequence()) {
    Error(key, "expected a list, got " + Describe(*value));
    return std::nullopt;
  }
  for (const YAML::Node& element : *value) elements.push_back(element);
  return elements;
}

void FieldReader::Finish() {
  std::set<std::string> seen;
  for (const auto& entry : node_) {
    if (!ok()) return;
    if (!entry.first.IsScalar()) {
      return Error("", "field names must be plain strings, got " + Describe(entry.first));
    }
    const std::string& key = entry.first.Scalar();
    if (!seen.insert(key).second) return Error(key, "field given twice");
    if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
    std::string message = "unknown field";
    for (const std::string& candidate : known_) {
      if (EditDistance(key, candidate) <= 2) {
        message += " (did you mean " + candidate + "?)";
        break;
      }
    }
    return Error(key, message);
  }
  if (!missing_.empty()) Error(missing_.front(), "required field is missing");
}

std::string ElementPath(std::string_view list_path, size_t index) {
  return std::string(list_path) + "[" + std::to_string(index) + "]";
}

}  // namespace sluice::config_internal
