// Names for Sluice's threads, as `top -H`, `ps -L`, perf and
// /proc/PID/task/TID/comm show them (bench/cluster.sh reports CPU per thread
// name). Linux keeps at most 15 bytes of a name.
//
// The process's main thread is never renamed: its name is the process's
// (`pgrep sluice`, /proc/PID/comm).
#pragma once

#include <string>
#include <string_view>

namespace sluice {

// Names the calling thread `name`, cut to its first 15 bytes. Best effort:
// a failure changes nothing else. Thread-safe.
void SetCurrentThreadName(std::string_view name);

// The calling thread's name ("" if it cannot be read).
std::string CurrentThreadName();

}  // namespace sluice
