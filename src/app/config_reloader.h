// ConfigReloader: re-reads the config file of a running process (SIGHUP,
// POST /internal/reload) and applies what can change without a restart.
//
// Every process: keys (added, removed, their tiers and limit overrides), the
// tiers' requests_per_minute and tokens_per_minute, and
// server.service_token_sha256 — by a new Authenticator in the slot the
// front door reads: requests in flight keep the principal they started
// with, and the rate-limit state of a key that remains carries on (it is
// kept by key id; the new limits apply to its next request).
//
// With the models attached (`sluice serve`), and while the file lists the
// same models in the same order: each model's backend and batching fields
// and admission's tier queue-depth bounds and target_utilization
// (ModelRuntime's "Reload": a changed backend or batching gets a new
// dispatch group, while the batches in flight finish on the old one).
//
// The new file is parsed and validated, and every model's change prepared,
// before anything is applied: a file that does not load, does not validate,
// renames, adds, removes or reorders tiers, or names a backend that cannot
// be built, is refused with the field-named error, and the process keeps its
// config. Other differences from the file the process started with
// (max_batch_size, a backend's kind, models added or removed, server, redis,
// ...) are reported as needing a restart, and not applied.
//
// Thread-safe: one reload at a time (a mutex); it blocks to read the file,
// so call it off the I/O threads.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "app/model_runtime.h"
#include "common/status.h"
#include "config/config.h"
#include "core/authenticator.h"

namespace sluice {

class ConfigReloader {
 public:
  struct Report {
    // The fields that differ from the file the process started with, and
    // run as the file says now (a reload applies every change it can, so
    // reloading the same file again gives the same report)...
    std::vector<std::string> applied;
    // ...and those that keep their started value until a restart.
    std::vector<std::string> restart_required;
    std::string Json() const;  // {"reloaded":true,"applied":[..],...}
  };

  // For a process that runs on `config` (read by LoadConfigFile: its
  // source_path and source_text, which later reloads compare with). `auth`
  // (not owned) gets the new keys. Errors: a config not read from a file.
  static Result<std::unique_ptr<ConfigReloader>> Create(const AppConfig& config,
                                                        AuthenticatorSlot* auth);

  // The models whose changes later reloads apply, in the config's order.
  // REQUIRES: before the first Reload().
  void AttachModels(std::vector<ModelRuntime*> models);

  // Errors: kInvalidArgument, "<path>: <field>: <what is wrong>".
  Result<Report> Reload();

 private:
  ConfigReloader(const AppConfig& config, std::vector<std::string> started_tiers,
                 AuthenticatorSlot* auth)
      : path_(config.source_path),
        started_text_(config.source_text),
        started_tiers_(std::move(started_tiers)),
        started_admission_(config.admission.enabled),
        auth_(auth) {}
  // Whether a reload to `next` applies a change of `field`; `models`: the
  // models' changes are applied (models_ and next.models match).
  bool Applies(const std::string& field, bool models, const AppConfig& next) const;

  const std::string path_;
  const std::string started_text_;                // the file as the process started on it
  const std::vector<std::string> started_tiers_;  // its tier names, in order
  const bool started_admission_;                  // admission.enabled as started
  AuthenticatorSlot* const auth_;
  std::mutex mu_;                      // one reload at a time
  std::vector<ModelRuntime*> models_;  // GUARDED_BY(mu_); not owned
};

}  // namespace sluice
