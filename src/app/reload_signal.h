// ReloadSignal: every SIGHUP the process receives while this object lives
// re-reads the config file (ConfigReloader) on a thread of its own, named
// "config-reload", and logs what was applied or why the file was refused.
// Build it before the run loop starts; destroy it after the loop stopped
// (the destructor waits for a reload in progress).
#pragma once

#include <functional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>

#include "app/config_reloader.h"

namespace sluice {

class ReloadSignal {
 public:
  ReloadSignal(boost::asio::io_context& ioc, ConfigReloader* reloader);
  ~ReloadSignal();
  ReloadSignal(const ReloadSignal&) = delete;
  ReloadSignal& operator=(const ReloadSignal&) = delete;

 private:
  void Wait();

  boost::asio::signal_set signals_;
  ConfigReloader* reloader_;
  boost::asio::thread_pool thread_{1};
};

// POST /internal/reload for FrontDoor::Options::reload: ReloadAndLog() and
// its report as JSON; empty (the route answers 404) without a reloader.
std::function<Result<std::string>()> ReloadEndpoint(ConfigReloader* reloader);

// Runs one reload and logs its outcome ("config reloaded: ..." or "config
// reload refused: ..."); returns it.
Result<ConfigReloader::Report> ReloadAndLog(ConfigReloader& reloader);

}  // namespace sluice
