// `sluice bench`: the open-loop load generator's command line.
//
// Register() adds the `bench` subcommand and all its flags to the CLI; the
// returned object holds the flag values, so keep it alive until Run(). Run()
// turns the flags into loadgen::BenchOptions (reading the --keys file; the
// only file this command reads), runs the load (loadgen::RunBench), shows
// live progress on stderr when it is a terminal, and prints the report (a
// table, or JSON with --json) on stdout.
//
// Exit codes: 0 the run completed (whatever the server answered), 1 the run
// could not happen (unreachable target, rejected key, unknown model), 2 bad
// arguments. Not thread-safe; for main() only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace sluice {

class BenchCommand {
 public:
  static std::unique_ptr<BenchCommand> Register(CLI::App& app);

  // True when the command line chose `bench` (valid after parsing).
  bool selected() const;
  // Runs the benchmark; returns the process exit code.
  int Run();

 private:
  BenchCommand() = default;

  CLI::App* command_ = nullptr;
  std::string url_ = "http://127.0.0.1:8080";
  double rate_ = 1000;
  std::string ramp_;
  std::string duration_ = "10s";
  std::string warmup_ = "2s";
  std::string drain_timeout_ = "5s";
  std::string connect_timeout_ = "3s";
  std::string late_threshold_ = "1ms";
  size_t connections_ = 256;
  int threads_ = 1;
  bool poisson_ = false;
  std::string keys_path_;
  std::string mix_ = "free=70,paid=25,enterprise=5";
  std::vector<std::string> models_{"sluice-sim-small"};
  std::string input_bytes_ = "64";
  std::string input_dist_ = "unique";
  uint32_t input_pool_ = 10'000;
  int max_tokens_ = 16;
  bool async_ = false;
  std::string api_ = "inference";
  std::string service_token_ = "svc-demo-token";
  uint64_t seed_ = 1;
  bool json_ = false;
};

}  // namespace sluice
