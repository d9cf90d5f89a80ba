#include "app/config_reloader.h"

#include <regex>

#include <boost/json.hpp>

#include "app/front_door_setup.h"
#include "config/config_diff.h"

namespace sluice {
namespace {

// The fields a reload applies (the others need a restart).
bool Reloadable(const std::string& field) {
  static const std::regex kApplied(
      R"(keys(\[\d+\](\.\w+)?)?|tiers\[\d+\]\.(requests_per_minute|tokens_per_minute)|)"
      R"(server\.service_token_sha256)");
  return std::regex_match(field, kApplied);
}

}  // namespace

std::string ConfigReloader::Report::Json() const {
  boost::json::object o;
  o["reloaded"] = true;
  o["applied"] = boost::json::value_from(applied);
  o["restart_required"] = boost::json::value_from(restart_required);
  return boost::json::serialize(o);
}

Result<std::unique_ptr<ConfigReloader>> ConfigReloader::Create(const AppConfig& config,
                                                               AuthenticatorSlot* auth) {
  if (config.source_path.empty()) return InvalidArgument("the config was not read from a file");
  std::vector<std::string> tiers;
  for (const TierPolicy& t : config.tiers) tiers.push_back(t.name);
  return std::unique_ptr<ConfigReloader>(
      new ConfigReloader(config.source_path, config.source_text, std::move(tiers), auth));
}

Result<ConfigReloader::Report> ConfigReloader::Reload() {
  std::lock_guard<std::mutex> lock(mu_);
  Result<AppConfig> config = LoadConfigFile(path_);  // read and validated
  if (!config.ok()) return config.status();
  // Requests carry their tier's index: the tier table keeps its shape.
  if (config->tiers.size() != started_tiers_.size()) {
    return InvalidArgument(path_ + ": tiers: adding or removing a tier needs a restart");
  }
  for (size_t i = 0; i < config->tiers.size(); ++i) {
    if (config->tiers[i].name != started_tiers_[i]) {
      return InvalidArgument(path_ + ": tiers[" + std::to_string(i) +
                             "].name: renaming or reordering tiers needs a restart");
    }
  }
  Result<std::vector<std::string>> changed =
      ChangedConfigFields(started_text_, config->source_text);
  if (!changed.ok()) return InvalidArgument(path_ + ": " + changed.status().message());
  auto auth = MakeAuthenticator(*config);
  if (!auth.ok()) return InvalidArgument(path_ + ": " + auth.status().message());

  Report report;
  for (const std::string& field : *changed) {
    (Reloadable(field) ? report.applied : report.restart_required).push_back(field);
  }
  auth_->Set(std::shared_ptr<const Authenticator>(std::move(auth).value()));
  return report;
}

}  // namespace sluice
