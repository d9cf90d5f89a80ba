// `sluice plan`: the fewest devices on which one configured model meets a
// latency and success SLA at peak load, found by simulating the real
// scheduler (simulation/capacity_plan.h), printed beside the
// back-of-envelope arithmetic.
//
// Register() adds the `plan` subcommand and its flags to the CLI; keep the
// returned object alive until Run(). Run() loads the configuration (the only
// file this command reads), runs PlanCapacity() and prints the trials, the
// answer and the arithmetic on stdout.
//
// Exit codes: 0 a device count was found, 1 none up to --max-devices meets
// the SLA, 2 bad arguments or configuration. Not thread-safe; for main()
// only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace CLI {
class App;
}  // namespace CLI

namespace sluice {

class PlanCommand {
 public:
  static std::unique_ptr<PlanCommand> Register(CLI::App& app);

  // True when the command line chose `plan` (valid after parsing).
  bool selected() const;
  // Runs the search; returns the process exit code.
  int Run();

 private:
  PlanCommand() = default;

  CLI::App* command_ = nullptr;
  std::string config_path_ = "config/sluice.yaml";
  std::string model_;
  double rate_ = 0;
  std::string mix_ = "free=0.7,paid=0.25,enterprise=0.05";
  double p95_ms_ = 0;
  double peak_ = 3;
  double success_ = 0.999;
  std::string trial_duration_ = "60s";
  std::string warmup_ = "5s";
  uint64_t seed_ = 1;
  int max_devices_ = 4096;
};

}  // namespace sluice
