// GET /dashboard and GET /dashboard/snapshot (see front_door.h): the page
// compiled into the binary and the figures it polls.
#include <chrono>

#include "http/dashboard_page.h"
#include "http/dashboard_snapshot.h"
#include "http/front_door.h"

namespace sluice::http {

void FrontDoor::HandleDashboard(const HttpRequest& request, Reply& reply) {
  HttpResponse res =
      MakeResponse(request, 200, std::string(kDashboardPage), "text/html; charset=utf-8");
  // The page loads nothing but its own snapshots.
  res.set("Content-Security-Policy",
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
          "connect-src 'self'; img-src data:; frame-ancestors 'none'");
  res.set(bhttp::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  reply(std::move(res));
}

void FrontDoor::HandleDashboardSnapshot(const HttpRequest& request, Reply& reply) {
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  HttpResponse res = MakeResponse(
      request, 200, DashboardSnapshotJson(options_.health(), *options_.registry, now_ms));
  res.set(bhttp::field::cache_control, "no-store");
  reply(std::move(res));
}

}  // namespace sluice::http
