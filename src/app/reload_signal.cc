#include "app/reload_signal.h"

#include <csignal>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "common/thread_name.h"

namespace sluice {

Result<ConfigReloader::Report> ReloadAndLog(ConfigReloader& reloader) {
  Result<ConfigReloader::Report> report = reloader.Reload();
  if (!report.ok()) {
    spdlog::error("config reload refused (the running config stays): {}",
                  report.status().message());
  } else {
    spdlog::info("config reloaded: {}", report->Json());
  }
  return report;
}

std::function<Result<std::string>()> ReloadEndpoint(ConfigReloader* reloader) {
  if (reloader == nullptr) return nullptr;
  return [reloader]() -> Result<std::string> {
    Result<ConfigReloader::Report> report = ReloadAndLog(*reloader);
    if (!report.ok()) return report.status();
    return report->Json();
  };
}

ReloadSignal::ReloadSignal(boost::asio::io_context& ioc, ConfigReloader* reloader)
    : signals_(ioc, SIGHUP), reloader_(reloader) {
  boost::asio::post(thread_, [] { SetCurrentThreadName("config-reload"); });
  Wait();
}

ReloadSignal::~ReloadSignal() {
  boost::system::error_code ec;
  signals_.cancel(ec);
  thread_.join();
}

void ReloadSignal::Wait() {
  signals_.async_wait([this](boost::system::error_code ec, int) {
    if (ec) return;
    boost::asio::post(thread_, [this] { ReloadAndLog(*reloader_); });
    Wait();
  });
}

}  // namespace sluice
