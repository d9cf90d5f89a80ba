// Building blocks of the Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/), used by
// Registry::RenderPrometheus(). Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace sluice::metrics {

// Formats a sample value or an `le` bound the way Prometheus parses it:
// "+Inf", "-Inf", "NaN"; integral values in plain digits without exponent or
// decimal point ("1000000", "0"); anything else as the shortest string that
// round-trips ("0.25", "1e-05").
std::string FormatNumber(double v);

// Appends `value` escaped for use inside a double-quoted label value:
// backslash -> \\, double quote -> \", line feed -> \n.
void AppendEscapedLabelValue(std::string* out, std::string_view value);

// Appends `help` escaped for a # HELP line: backslash -> \\, line feed -> \n.
void AppendEscapedHelp(std::string* out, std::string_view help);

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsValidMetricName(std::string_view name);

// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved by Prometheus).
bool IsValidLabelName(std::string_view name);

}  // namespace sluice::metrics
