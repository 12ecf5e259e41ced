#include "util/version.h"

namespace reprise {

// REPRISE_VERSION is set for this file only, by CMakeLists.txt from project(VERSION), so a new
// version recompiles one file.
std::string_view version() {
  return REPRISE_VERSION;
}

}  // namespace reprise
