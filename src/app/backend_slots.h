// Backend slots: the accelerator slots of one model, for `sluice serve`
// (app/model_runtime.cc) and for a worker — one
// SimBackend per simulated device, or one HttpBackend per connection to an
// http/openai/kserve endpoint — optionally for ONE endpoint only.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/io_context_pool.h"
#include "config/config.h"
#include "core/backend.h"

namespace sluice {

struct BackendSlots {
  std::vector<std::unique_ptr<Backend>> slots;
  std::vector<size_t> slot_endpoints;       // endpoint index of each slot (http kinds)
  std::vector<std::string> endpoint_names;  // http kinds: the URLs; sim: empty
  std::string endpoint;                     // for the registry: URL, or "sim"
};

// `endpoint_index`: http kinds only — serve backend.http.endpoints[index]
// alone; nullopt = every endpoint. `executor` runs sim completions; each
// HTTP connection runs on a context of `pool` (round robin, as client
// connections do), so backend I/O is spread over the event loops.
// Errors: kInvalidArgument (index out of range, bad TLS files, ...).
Result<BackendSlots> MakeBackendSlots(IoContextPool& pool, const ModelConfig& model,
                                      Executor* executor, std::optional<size_t> endpoint_index);

}  // namespace sluice
