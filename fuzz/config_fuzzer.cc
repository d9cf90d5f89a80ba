// Fuzzes the config loader: arbitrary text through ParseConfig() (YAML
// parsing, field reading and validation). Any input must give a config or
// an error; a YAML exception escaping, a crash or a hang is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  sluice::Result<sluice::AppConfig> config = sluice::ParseConfig(text, "fuzz.yaml");
  (void)config;
  return 0;
}
