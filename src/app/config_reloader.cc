#include "app/config_reloader.h"

#include <algorithm>
#include <regex>

#include <boost/json.hpp>

#include "app/front_door_setup.h"
#include "config/config_diff.h"

namespace sluice {
namespace {

// The fields every reload applies.
const std::regex kAlwaysApplied(
    R"(keys(\[\d+\](\.\w+)?)?|tiers\[\d+\]\.(requests_per_minute|tokens_per_minute)|)"
    R"(server\.service_token_sha256)");
// With the models attached (ModelRuntime's "Reload"); [1] is the index.
const std::regex kModelApplied(
    R"(models\[(\d+)\]\.(max_batch_delay_us|batching|accelerator_timeout_ms|)"
    R"(retry(\.\w+)?|circuit_breaker(\.\w+)?))");
const std::regex kAsyncFill(R"(models\[(\d+)\]\.async_fill_max_batch_size)");
const std::regex kBackendApplied(
    R"(models\[(\d+)\]\.backend(\.(kind|endpoints(\[\d+\])?|connections_per_endpoint|)"
    R"(connect_timeout_ms|request_timeout_ms|remote_model|tls_ca_file|tls_cert_file|)"
    R"(tls_key_file|devices|fixed_latency_us|per_item_latency_us|jitter|seed))?)");
const std::regex kAdmissionApplied(R"(tiers\[\d+\]\.(max_queue_depth|max_queue_depth_per_device))");

}  // namespace

bool ConfigReloader::Applies(const std::string& field, bool models, const AppConfig& next) const {
  if (std::regex_match(field, kAlwaysApplied)) return true;
  if (!models) return false;
  if (field == "admission.target_utilization") return true;
  if (std::regex_match(field, kAdmissionApplied)) return started_admission_;
  std::smatch m;
  if (std::regex_match(field, m, kModelApplied)) return true;
  auto index = [&m] { return static_cast<size_t>(std::stoul(m[1].str())); };
  // Within the running max_batch_size only (PrepareReload keeps it).
  if (std::regex_match(field, m, kAsyncFill)) {
    return next.models[index()].max_batch_size == models_[index()]->config().max_batch_size;
  }
  // Within the running kind only: another kind needs a restart.
  if (std::regex_match(field, m, kBackendApplied)) {
    return next.models[index()].backend.kind == models_[index()]->config().backend.kind;
  }
  return false;
}

void ConfigReloader::AttachModels(std::vector<ModelRuntime*> models) {
  std::lock_guard<std::mutex> lock(mu_);
  models_ = std::move(models);
}

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
  return std::unique_ptr<ConfigReloader>(new ConfigReloader(config, std::move(tiers), auth));
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
  // The models' changes apply while the file lists the same models.
  bool models = !models_.empty() && models_.size() == config->models.size();
  for (size_t i = 0; models && i < models_.size(); ++i) {
    models = models_[i]->config().name == config->models[i].name;
  }
  std::vector<std::unique_ptr<ModelRuntime::Reload>> plans;
  for (size_t i = 0; models && i < models_.size(); ++i) {
    auto plan = models_[i]->PrepareReload(*config, config->models[i]);
    if (!plan.ok()) {
      return InvalidArgument(path_ + ": models[" + std::to_string(i) +
                             "]: " + plan.status().message());
    }
    plans.push_back(std::move(plan).value());
  }

  // Each reload brings everything a reload can change to the file's value:
  // a field that differs from the started file is in force, or waits for
  // a restart.
  Report report;
  for (const std::string& field : *changed) {
    (Applies(field, models, *config) ? report.applied : report.restart_required).push_back(field);
  }
  auth_->Set(std::shared_ptr<const Authenticator>(std::move(auth).value()));
  for (size_t i = 0; i < plans.size(); ++i) models_[i]->ApplyReload(std::move(plans[i]));
  return report;
}

}  // namespace sluice
