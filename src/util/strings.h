// Small string helpers shared by every layer (parsers of paths, tasks, templates and metrics).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace reprise {

// `s` without leading and trailing ASCII white space (" \t\n\v\f\r"). A view into `s`.
std::string_view trim(std::string_view s);

// `s` with ASCII letters lower-cased; other bytes (UTF-8 included) unchanged.
std::string to_lower(std::string_view s);

// A whole decimal int (surrounding ASCII white space allowed) into `out`; false for anything
// else (empty, trailing characters, out of range), `out` then unspecified.
bool parse_int(std::string_view s, int& out);

// The same for a whole decimal or scientific double ("0.5", "1e-3"; not "nan" or "inf").
bool parse_double(std::string_view s, double& out);

// The pieces of `s` between each `sep`, empty ones kept: "a,,b" -> {"a", "", "b"}; "" -> {""}.
// Views into `s`.
std::vector<std::string_view> split(std::string_view s, char sep);

}  // namespace reprise
