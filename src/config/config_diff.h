// What differs between two config files: the fields a reload would change
// (app/config_reloader.h decides which of them it can apply).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace sluice {

// The paths of the fields that differ between the YAML texts `before` and
// `after`, sorted: "server.port", "tiers[1].requests_per_minute",
// "models[0].backend.endpoints[1]", "keys[2].sha256" (three mappings deep
// at most, below the section); a whole section, mapping or list when it was
// added, removed, or its list changed length ("redis", "tiers",
// "models[0].backend.endpoints").
// Values are compared as YAML (formatting and comments do not count).
// Errors: kInvalidArgument when either text is not YAML.
Result<std::vector<std::string>> ChangedConfigFields(const std::string& before,
                                                     const std::string& after);

}  // namespace sluice
