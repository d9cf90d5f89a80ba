#include "app/model_server_command.h"

#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "common/thread_name.h"

namespace sluice {

namespace {

constexpr const char* kFooter = R"(
Endpoints: POST /v1/batch (generic batch protocol), POST /v1/completions and
POST /v1/embeddings (OpenAI-compatible, array prompt/input), POST
/v2/models/{model}/infer (KServe v2, BYTES tensor "text_input" [n,1]),
GET /health, GET|POST /admin/faults.

Fault injection at run time:
  curl -X POST http://127.0.0.1:PORT/admin/faults \
    -d '{"error_rate":0.1,"item_error_rate":0,"added_latency_ms":0,"hang":false,"close_connection":false}'
Fields left out keep their value; GET /admin/faults shows the current set.)";

}  // namespace

std::unique_ptr<ModelServerCommand> ModelServerCommand::Register(CLI::App& app) {
  std::unique_ptr<ModelServerCommand> m(new ModelServerCommand());
  modelserver::ModelServer::Options& o = m->options_;
  CLI::App* c = app.add_subcommand(
      "model-server",
      "Run a stand-in fixed inference API (generic batch, OpenAI-compatible, KServe v2) on "
      "the simulated accelerator, with fault injection.");
  m->command_ = c;
  c->footer(kFooter);
  c->add_option("--listen-address", o.listen_address, "Address to listen on")
      ->capture_default_str();
  c->add_option("-p,--port", o.port, "Listen port (0 = any free port)")->capture_default_str();
  c->add_option("--io-threads", m->io_threads_, "I/O threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  c->add_option("--model", o.model, "The model name served")->capture_default_str();
  c->add_option("--model-version", o.model_version, "Reported version (default MODEL-sim)");
  c->add_option("--devices", o.devices, "Simulated accelerators = concurrent batches")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  c->add_option("--fixed-latency-us", o.fixed_latency_us, "Per-batch latency")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  c->add_option("--per-item-latency-us", o.per_item_latency_us, "Per-item latency")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  c->add_option("--jitter", o.jitter, "+/- fraction of the latency, uniform")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  c->add_option("--embedding-dims", o.embedding_dims, "Length of embedding vectors")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  c->add_option("--stream-tokens-per-second", o.stream_tokens_per_second,
                "Chat streams: words sent per second")
      ->capture_default_str();
  c->add_option("--seed", o.seed, "Seed of fault draws and jitter")->capture_default_str();
  c->add_option("--added-latency-ms", o.faults.added_latency_ms, "Fault: added batch latency")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  c->add_option("--error-rate", o.faults.error_rate, "Fault: fraction of batches answered 500")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  c->add_option("--item-error-rate", o.faults.item_error_rate, "Fault: fraction of items failed")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  c->add_option("--error-message", o.faults.error_message,
                "Fault: the text of injected failures (default: injected batch/item failure)");
  c->add_flag("--hang", o.faults.hang, "Fault: never answer inference requests");
  c->add_flag("--close-connection", o.faults.close_connection,
              "Fault: close the connection instead of answering");
  return m;
}

bool ModelServerCommand::selected() const { return command_ != nullptr && command_->parsed(); }

int ModelServerCommand::Run() {
  boost::asio::io_context ioc(io_threads_);
  auto server = modelserver::ModelServer::Create(ioc, options_);
  if (!server.ok()) {
    std::fprintf(stderr, "sluice-model-server: %s\n", server.status().message().c_str());
    return server.status().code() == ErrorCode::kInvalidArgument ? 2 : 1;
  }
  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    server.value()->Stop();
    ioc.stop();
  });
  std::printf("sluice-model-server: listening on http://%s:%u\n", options_.listen_address.c_str(),
              static_cast<unsigned>(server.value()->port()));
  std::fflush(stdout);
  std::vector<std::thread> threads;
  for (int i = 1; i < io_threads_; ++i) {
    threads.emplace_back([&ioc, i] {
      SetCurrentThreadName("ms-io-" + std::to_string(i));
      ioc.run();
    });
  }
  ioc.run();
  for (std::thread& t : threads) t.join();
  return 0;
}

}  // namespace sluice
