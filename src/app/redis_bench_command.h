// `sluice bench-redis`: what one request costs Redis itself on the scale-out
// path, as a function of batch size, with the real scripts and nothing else
// on the server.
//
// Against a Redis server the operator started (loopback; `--port`), for each
// enqueue batch size in --batches: enqueue --requests requests for one
// model in script calls of that size (with a rate-limit check on one of
// --keys keys each, pipelined --in-flight calls deep), then claim them in
// batches of --claim-batch and complete each batch (results published to a
// channel nobody listens to). Redis's own CPU (INFO cpu: used_cpu_user +
// used_cpu_sys) is read around each phase; the report gives Redis CPU µs per
// request for enqueue, claim + complete and in total, and the implied
// requests per second of one Redis core (1e6 / total µs). With
// --queue-depth D > 0 the two interleave as under steady load: requests are
// enqueued while fewer than D wait, then claimed until at most D / 2 do, so
// the queue stays short (its structures small and in cache), and only the
// total is reported. The report also gives the deepest the queue was at a
// claim, as the claim script counted it. Keys live under a prefix of their
// own and are deleted afterwards, also after a failed run.
//
// Register() adds the subcommand; keep the returned object alive until
// Run(). Exit codes: 0 done, 1 Redis refused or failed, 2 bad arguments.
// Not thread-safe; for main() only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace CLI {
class App;
}  // namespace CLI

namespace sluice {

class RedisBenchCommand {
 public:
  static std::unique_ptr<RedisBenchCommand> Register(CLI::App& app);

  bool selected() const;
  int Run();

 private:
  RedisBenchCommand() = default;

  CLI::App* command_ = nullptr;
  std::string host_ = "127.0.0.1";
  int port_ = 6379;
  std::string batches_ = "1,4,16,64";
  int64_t requests_ = 50'000;
  int64_t claim_batch_ = 32;
  int64_t keys_ = 100;
  int64_t in_flight_ = 8;
  int64_t payload_bytes_ = 200;
  int64_t queue_depth_ = 0;
};

}  // namespace sluice
