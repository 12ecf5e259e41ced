// Short descriptions of untrusted input for one-line error messages.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <string_view>

namespace reprise {

// `s` with control bytes written as \xNN, so a name read from a file keeps the message on one
// line whatever bytes it holds.
std::string printable(std::string_view s);

// What a JSON value is, with its article: "an integer", "a string", "null", ...
// For messages such as "config.json: hidden_size is a string, expected an integer".
std::string_view json_kind(const nlohmann::json& j);

}  // namespace reprise
