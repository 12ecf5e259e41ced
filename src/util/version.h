// reprise's version: the one home of the number, which comes from CMake's project(VERSION).
#pragma once

#include <string_view>

namespace reprise {

// "0.1.0": what `reprise --version` prints and what result files record.
std::string_view version();

}  // namespace reprise
