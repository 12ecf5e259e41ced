#include "eval/data_dir.h"

#include <fmt/format.h>

#include <cstdlib>
#include <vector>

#include "util/error.h"

namespace reprise::eval {
namespace fs = std::filesystem;

fs::path find_data_dir(const std::string& explicit_dir) {
  if (!explicit_dir.empty()) {
    if (!fs::is_directory(explicit_dir))
      throw Error(fmt::format("--data-dir {}: not a directory", explicit_dir));
    return explicit_dir;
  }
  std::vector<fs::path> tried;
  if (const char* env = std::getenv("REPRISE_DATA_DIR"); env && *env) tried.emplace_back(env);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    tried.push_back(exe.parent_path().parent_path() / "data");
    tried.push_back(exe.parent_path().parent_path() / "share" / "reprise" / "data");
  }
#ifdef REPRISE_SOURCE_DATA_DIR
  // A build tree finds the sources' data/ through the path CMake compiled in.
  tried.emplace_back(REPRISE_SOURCE_DATA_DIR);
#endif
  std::string list;
  for (const auto& p : tried) {
    if (fs::is_regular_file(p / "README.md", ec)) return p;
    list += (list.empty() ? "" : ", ") + p.string();
  }
  throw Error(
      fmt::format("cannot find the data directory (tried {}); pass --data-dir or set "
                  "REPRISE_DATA_DIR",
                  list));
}

}  // namespace reprise::eval
