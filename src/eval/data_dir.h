// Where the bundled datasets (the repository's data/ folder) are at run time.
#pragma once

#include <filesystem>
#include <string>

namespace reprise::eval {

// The first that exists of: `explicit_dir` (when given, it must exist), $REPRISE_DATA_DIR,
// <executable dir>/../data, <executable dir>/../share/reprise/data, and the data/ folder of the
// source tree this file was compiled from. Throws Error listing the places tried.
std::filesystem::path find_data_dir(const std::string& explicit_dir = "");

}  // namespace reprise::eval
