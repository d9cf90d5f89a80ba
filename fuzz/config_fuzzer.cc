// Fuzzes the config loader: arbitrary text through ParseConfig() (YAML
// parsing, field reading and validation), and through ChangedConfigFields()
// against the bundled config (what a reload compares). Any input must give
// a config or an error, and a list of fields or an error; a YAML exception
// escaping, a crash or a hang is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.h"
#include "config/config_diff.h"

namespace {

// A config that nests as deep as the diff looks (models[0].backend.endpoints[0]).
constexpr const char* kBefore = R"(
server: {port: 8080, admin: {port: 9090}}
tiers:
  - {name: paid, requests_per_minute: 60, max_queue_depth: 500}
keys:
  - {id: a, tier: paid, sha256: x}
models:
  - name: m
    backend: {kind: http, endpoints: [http://a, http://b], connections_per_endpoint: 2}
    retry: {max_retries: 2}
)";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  sluice::Result<sluice::AppConfig> config = sluice::ParseConfig(text, "fuzz.yaml");
  (void)config;
  (void)sluice::ChangedConfigFields(kBefore, text);
  (void)sluice::ChangedConfigFields(text, kBefore);
  return 0;
}
