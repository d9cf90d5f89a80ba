// `sluice model-server`: runs modelserver::ModelServer, a stand-in fixed
// inference API on the simulated accelerator, until SIGINT or SIGTERM.
//
// Register() adds the subcommand and its flags; keep the returned object alive
// until Run(). Run() prints `sluice-model-server: listening on
// http://ADDR:PORT` on stdout once it accepts connections (logs go to
// stderr) and returns the exit code: 0 after a signal, 1 when it cannot
// listen, 2 for bad flags. Not thread-safe; for main() only.
#pragma once

#include <memory>

#include "modelserver/model_server.h"

namespace CLI {
class App;
}  // namespace CLI

namespace sluice {

class ModelServerCommand {
 public:
  static std::unique_ptr<ModelServerCommand> Register(CLI::App& app);

  // True when the command line chose `model-server` (valid after parsing).
  bool selected() const;
  int Run();

 private:
  ModelServerCommand() = default;

  CLI::App* command_ = nullptr;
  modelserver::ModelServer::Options options_;
  int io_threads_ = 1;
};

}  // namespace sluice
