// ConfigReloader: re-reads the config file of a running process (SIGHUP,
// POST /internal/reload) and applies what can change without a restart:
//
//   keys (added, removed, their tiers and limit overrides), the tiers'
//   requests_per_minute and tokens_per_minute, server.service_token_sha256
//
// by building a new Authenticator and putting it in the slot the front door
// reads: requests in flight keep the principal they started with, and the
// rate-limit state of a key that remains carries on (it is kept by key id;
// the new limits apply to its next request). The new file is parsed and
// validated first: a file that does not load, does not validate, or renames,
// adds, removes or reorders tiers is refused with the field-named error, and
// the process keeps its config. Other differences from the file the process
// started with (models, backends, admission, server, ...) are reported as
// needing a restart, and not applied.
//
// Thread-safe: one reload at a time (a mutex); it blocks to read the file,
// so call it off the I/O threads.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "config/config.h"
#include "core/authenticator.h"

namespace sluice {

class ConfigReloader {
 public:
  struct Report {
    std::vector<std::string> applied;           // fields applied now
    std::vector<std::string> restart_required;  // fields that differ but need a restart
    std::string Json() const;                   // {"reloaded":true,"applied":[..],...}
  };

  // For a process that runs on `config` (read by LoadConfigFile: its
  // source_path and source_text, which later reloads compare with). `auth`
  // (not owned) gets the new keys. Errors: a config not read from a file.
  static Result<std::unique_ptr<ConfigReloader>> Create(const AppConfig& config,
                                                        AuthenticatorSlot* auth);

  // Errors: kInvalidArgument, "<path>: <field>: <what is wrong>".
  Result<Report> Reload();

 private:
  ConfigReloader(std::string path, std::string started_text, std::vector<std::string> started_tiers,
                 AuthenticatorSlot* auth)
      : path_(std::move(path)),
        started_text_(std::move(started_text)),
        started_tiers_(std::move(started_tiers)),
        auth_(auth) {}

  const std::string path_;
  const std::string started_text_;                // the file as the process started on it
  const std::vector<std::string> started_tiers_;  // its tier names, in order
  AuthenticatorSlot* const auth_;
  std::mutex mu_;  // one reload at a time
};

}  // namespace sluice
