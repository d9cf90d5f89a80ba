#include "config/config_diff.h"

#include <algorithm>
#include <set>

#include <yaml-cpp/yaml.h>

namespace sluice {
namespace {

std::string Canonical(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "~";
  YAML::Emitter e;
  e << node;
  return e.c_str();
}

std::set<std::string> KeysOf(const YAML::Node& a, const YAML::Node& b) {
  std::set<std::string> keys;
  for (const YAML::Node* n : {&a, &b}) {
    if (!n->IsMap()) continue;
    for (const auto& kv : *n) keys.insert(kv.first.as<std::string>());
  }
  return keys;
}

// Compares `a` and `b` at `path`, `depth` mappings deep at most (a list
// element counts as its list: models[0].backend.endpoints[1] is 3 deep).
void Diff(const YAML::Node& a, const YAML::Node& b, const std::string& path, int depth,
          std::vector<std::string>* out) {
  if (Canonical(a) == Canonical(b)) return;
  // Added or removed (a missing key's node answers nothing but IsDefined()).
  if (!a.IsDefined() || !b.IsDefined()) return out->push_back(path);
  if (depth > 0 && a.IsMap() && b.IsMap()) {
    for (const std::string& k : KeysOf(a, b)) Diff(a[k], b[k], path + "." + k, depth - 1, out);
    return;
  }
  if (depth > 0 && a.IsSequence() && b.IsSequence() && a.size() == b.size()) {
    for (size_t i = 0; i < a.size(); ++i) {
      Diff(a[i], b[i], path + "[" + std::to_string(i) + "]", depth, out);
    }
    return;
  }
  out->push_back(path);
}

}  // namespace

Result<std::vector<std::string>> ChangedConfigFields(const std::string& before,
                                                     const std::string& after) {
  YAML::Node a, b;
  try {
    a = YAML::Load(before);
    b = YAML::Load(after);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(std::string("not YAML: ") + e.what());
  }
  std::vector<std::string> out;
  try {
    for (const std::string& section : KeysOf(a, b)) Diff(a[section], b[section], section, 3, &out);
  } catch (const YAML::Exception& e) {  // not expected: the texts loaded
    return InvalidArgument(std::string("cannot compare: ") + e.what());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace sluice
