// The dashboard page (src/http/dashboard.html), compiled in by CMake
// (dashboard_page.cc.in): served by GET /dashboard.
#pragma once

#include <string_view>

namespace sluice::http {

extern const std::string_view kDashboardPage;

}  // namespace sluice::http
