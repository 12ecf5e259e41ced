// scan --refine-top: how many of the best coarse configs per mode the fine stage refines around.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "support/test_support.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

// Distinct configs in the scan's CSV report (one row per config and item; the config is the
// second column).
long scanned_configs(const std::string& refine_args, const std::string& name) {
  const fs::path db = test::scratch(name + ".db"), csv = test::scratch(name + ".csv");
  fs::remove(db);
  auto r = test::run_cli("scan -m '" + test::default_model().string() +
                         "' --task tinystories --limit 3 --mode repeat --strategy coarse-to-fine "
                         "--stride 2 --controls 0 -t 1 --quiet " +
                         refine_args + " -o '" + db.string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = test::run_cli("report '" + db.string() + "' -o '" + csv.string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(test::slurp(csv));
  std::set<std::string> configs;
  std::string line;
  std::getline(lines, line);  // header
  while (std::getline(lines, line)) {
    const size_t a = line.find(','), b = line.find(',', a + 1);
    configs.insert(line.substr(a + 1, b - a - 1));
  }
  return static_cast<long>(configs.size());
}

TEST(ScanRefine, FewerSeedsScoreFewerConfigs) {
  // 5 layers, stride 2: the coarse grid is (0,2) (0,4) (0,5) (2,4) (2,5) (4,5); the fine stage
  // scores the unscored blocks within one layer of each seed, at most 8 per seed.
  const long one = scanned_configs("--refine-top 1", "refine1");
  const long three = scanned_configs("", "refine3");
  EXPECT_GE(one, 1 + 6 + 1);
  EXPECT_LE(one, 1 + 6 + 8);
  EXPECT_GT(three, one);
}

TEST(ScanRefine, ZeroIsRefused) {
  const auto r = test::run_cli("scan -m '" + test::default_model().string() +
                               "' --task tinystories --limit 3 --refine-top 0 -o '" +
                               test::scratch("zero.db").string() + "'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "--refine-top");
}

}  // namespace
}  // namespace reprise
