// `sluice simulate`: run the real scheduler of one configured model through
// a Scenario in virtual time (src/simulation) and print what happened.
//
// Register() adds the `simulate` subcommand and its flags to the CLI; the
// returned object holds the flag values, so keep it alive until Run().
// Run() loads the configuration (the only file this command reads), builds
// the Scenario from the flags, runs the Simulation and prints its report
// on stdout: a table, or JSON with --json (schema sluice-simulate/1;
// --series adds the per-second series).
//
// Exit codes: 0 the run completed, 1 the run found requests answered twice
// or never (a scheduler bug), 2 bad arguments or configuration. Not
// thread-safe; for main() only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace sluice {

class SimulateCommand {
 public:
  static std::unique_ptr<SimulateCommand> Register(CLI::App& app);

  // True when the command line chose `simulate` (valid after parsing).
  bool selected() const;
  // Runs the simulation; returns the process exit code.
  int Run();

 private:
  SimulateCommand() = default;

  CLI::App* command_ = nullptr;
  std::string config_path_ = "config/sluice.yaml";
  std::string model_;
  int devices_ = 0;
  double rate_ = 1000;
  std::string duration_ = "60s";
  std::string warmup_ = "0s";
  std::string mix_ = "free=0.7,paid=0.25,enterprise=0.05";
  std::string arrivals_ = "poisson";
  double burst_factor_ = 3;
  double burst_on_fraction_ = 0.2;
  std::string burst_period_ = "10s";
  uint64_t seed_ = 1;
  std::vector<std::string> events_;
  std::vector<std::string> hostile_;
  uint32_t input_bytes_ = 64;
  int max_tokens_ = 16;
  bool json_ = false;
  bool series_ = false;
};

}  // namespace sluice
