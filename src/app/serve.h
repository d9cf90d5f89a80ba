// `sluice serve`: the whole data path in one process — front door, memory
// queues, dispatchers on the embedded simulated accelerator.
//
// RunServe() blocks until SIGTERM/SIGINT and a graceful drain: stop
// accepting, let queued and in-flight requests finish for up to
// server.drain_timeout_ms, answer whatever is left 503, then exit. A second
// signal skips the rest of the drain. Prints "sluice: listening on
// http://ADDR:PORT" on stdout once ready. Returns the process exit code.
#pragma once

#include "config/config.h"

namespace sluice {

int RunServe(const AppConfig& config);

}  // namespace sluice
