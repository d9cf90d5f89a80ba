// FieldReader: typed reads from one YAML mapping, with the field's YAML path
// in every error. Internal to src/config (the loader's only view of yaml-cpp).
//
// Each Read*() leaves its output untouched when the key is absent, so struct
// defaults stand. A present value of the wrong type is an error that names the
// field and quotes what was found (a null scalar is wrong for every type):
//   server.port: expected an integer between 0 and 65535, got "abc"
// The reader remembers which keys it was asked about; Finish() then names any
// other key (a typo) or any key given twice, and only then a missing required
// field, so a misspelt required field reads as the typo it is.
//
// Errors go to a Status sink shared by all readers of one parse: the first
// error wins and later reads become no-ops, so the loader reads everything and
// checks the sink once. Never throws. Not thread-safe; lives for one parse.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/status.h"

namespace sluice::config_internal {

enum class Presence { kOptional, kRequired };

class FieldReader {
 public:
  // `node` is the value found at `path` ("" for the document root). An absent
  // or null node reads as an empty mapping; any other non-mapping is an error.
  // REQUIRES: `error` is non-null and outlives the reader.
  FieldReader(const YAML::Node& node, std::string path, Status* error);

  // True while no error has been recorded (by this or any sharing reader).
  bool ok() const { return error_->ok(); }
  // The full YAML path of `key` in this mapping, e.g. "models[0].name"; an
  // empty key names the mapping itself.
  std::string PathOf(std::string_view key) const;
  // Whether `key` is present (even with a null value). Marks it as known.
  bool Has(const char* key);
  // Records "<path of key>: <message>" unless an error is already recorded.
  void Error(std::string_view key, const std::string& message);

  // Any scalar, taken as text. A missing required field is reported by
  // Finish().
  void ReadString(const char* key, std::string* out, Presence presence = Presence::kOptional);
  // A decimal integer that fits in T (any integral type but bool).
  template <typename T>
  void ReadInteger(const char* key, T* out);
  // A finite decimal number.
  void ReadDouble(const char* key, double* out);
  // true or false.
  void ReadBool(const char* key, bool* out);
  // An integer count of milliseconds, stored as microseconds.
  void ReadMillisAsMicros(const char* key, int64_t* out_us);
  // The raw value of `key` (undefined when absent), for a nested mapping.
  YAML::Node ReadNode(const char* key);
  // The elements of a list; a null value ("keys:" and nothing under it) is an
  // empty list. nullopt when the key is absent or on error.
  std::optional<std::vector<YAML::Node>> ReadList(const char* key);

  // Call after all reads: reports the first key not read (with a suggestion
  // when it is close to a known one) or repeated, else the first required
  // field that was missing.
  void Finish();

 private:
  // The present, non-null value of `key`, or nullopt.
  std::optional<YAML::Node> Value(const char* key);
  bool ReadSigned(const char* key, int64_t min, int64_t max, int64_t* out);
  bool ReadUnsigned(const char* key, uint64_t max, uint64_t* out);

  YAML::Node node_;
  std::string path_;
  Status* error_;
  std::vector<std::string> known_;
  std::vector<std::string> missing_;  // required fields not found
};

// "tiers" and 2 -> "tiers[2]".
std::string ElementPath(std::string_view list_path, size_t index);

template <typename T>
void FieldReader::ReadInteger(const char* key, T* out) {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>);
  if constexpr (std::is_signed_v<T>) {
    int64_t v = 0;
    if (ReadSigned(key, std::numeric_limits<T>::min(), std::numeric_limits<T>::max(), &v)) {
      *out = static_cast<T>(v);
    }
  } else {
    uint64_t v = 0;
    if (ReadUnsigned(key, std::numeric_limits<T>::max(), &v)) *out = static_cast<T>(v);
  }
}

}  // namespace sluice::config_internal
