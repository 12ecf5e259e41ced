// scan --strategy beam end to end on the default model: its rounds land in the store as phases
// beam:d and in the search phase that `report` reads (multi-block keys and paths), the summary
// prints each round's held-out rho, a killed beam resumes to the same store as one run, and bad
// beam options are one-line errors that leave no store behind.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <random>
#include <set>
#include <sstream>

#include "support/test_support.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

std::string quoted(const fs::path& p) {
  return fmt::format("'{}'", p.string());
}

const std::string kBeamArgs =
    " --task tinystories --limit 12 --mode repeat,skip --strategy beam --beam 2 --depth 2 "
    "--beam-score 3 --controls 1 -t 1 --quiet";

std::string csv_of(const fs::path& db) {
  const fs::path csv = db.string() + ".csv";
  auto r = test::run_cli("report " + quoted(db) + " -o " + quoted(csv));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return test::slurp(csv);
}

TEST(BeamScan, RoundsReachTheReportAndAKilledBeamResumesToTheSameStore) {
  const std::string model = " -m " + quoted(test::default_model());
  const fs::path one = test::scratch("beam-one.db"), killed = test::scratch("beam-killed.db");
  auto r = test::run_cli("scan" + model + kBeamArgs + " -o " + quoted(one));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("beam round 1: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("beam round 2: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("held-out rho (5-fold, 30 scored configs): ridge "), std::string::npos)
      << r.err;  // the baseline and the 29 single blocks of 5 layers
  EXPECT_NE(r.out.find("  round 2: "), std::string::npos) << r.out;
  // 29 grid configs, 3 + 3 beam configs, plus the skip control of the best repeat if new.
  EXPECT_NE(
      r.out.find(
          "the 6 beam configs are in the search phase beside the 29 single-block seed configs"),
      std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("Holm across all 35 configs"), std::string::npos) << r.out;

  const std::string a = csv_of(one);
  std::set<std::string> search, beam1, beam2;
  std::istringstream lines(a);
  for (std::string line; std::getline(lines, line);) {
    const size_t c1 = line.find(','), c2 = line.find(',', c1 + 1);
    const std::string phase = line.substr(0, c1), key = line.substr(c1 + 1, c2 - c1 - 1);
    if (phase == "search") search.insert(key);
    if (phase == "beam:1") beam1.insert(key);
    if (phase == "beam:2") beam2.insert(key);
  }
  EXPECT_EQ(beam1.size(), 3u);
  EXPECT_EQ(beam2.size(), 3u);
  for (const auto* round : {&beam1, &beam2})
    for (const auto& k : *round) {
      EXPECT_NE(k.find('+'), std::string::npos) << k;  // every beam config has several blocks
      EXPECT_TRUE(search.count(k)) << k << " is not in the search phase";
    }
  EXPECT_EQ(search.size(), 36u);  // baseline + 35

  std::mt19937 rng(5);
  for (int k = 0; k < 4; ++k) {
    const int ms = 150 + static_cast<int>(rng() % 600);
    const std::string cmd = std::string("'") + REPRISE_BINARY + "' scan" + model + kBeamArgs +
                            " -o " + quoted(killed) + " >/dev/null 2>&1 & pid=$!; sleep " +
                            std::to_string(ms / 1000.0) + "; kill -9 $pid 2>/dev/null; wait $pid";
    test::run_shell(cmd);
  }
  auto resumed = test::run_cli("scan" + model + kBeamArgs + " -o " + quoted(killed));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(csv_of(killed), a);
}

// Each (arguments, message fragment) makes a scan of the default model fail with exit code 2 and
// a one-line error containing the fragment, before any store is made.
void expect_scan_errors(const std::vector<std::pair<std::string, std::string>>& cases) {
  const std::string model = " -m " + quoted(test::default_model());
  const fs::path db = test::scratch("scan-bad.db");
  for (const auto& [arg, fragment] : cases) {
    auto r = test::run_cli("scan" + model + " --task tinystories --limit 3 " + arg + " -o " +
                           quoted(db));
    EXPECT_EQ(r.exit_code, 2) << arg;
    EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(db)) << arg;
  }
}

TEST(BeamScan, BadBeamOptionsAreOneLineErrors) {
  expect_scan_errors({
      {"--strategy beam --beam 0", "--beam must be >= 1, got 0"},
      {"--strategy beam --depth 0", "--depth must be >= 1, got 0"},
      {"--strategy beam --beam-score -2", "--beam-score must be >= 1, got -2"},
      {"--strategy beam --surrogate-min-rho 2", "--surrogate-min-rho must be in [-1, 1]"},
      {"--strategy beam --surrogate trees", "--surrogate: unknown 'trees'"},
      {"--strategy beams", "known: dense, coarse-to-fine, race, beam"},
  });
}

TEST(BeamScan, BeamAndRaceOptionsWithoutTheirStrategyAreOneLineErrors) {
  // CLI11 accepts every option of the subcommand; without this check they were silently unused.
  expect_scan_errors({
      {"--beam 4", "--beam applies only to --strategy beam (this scan's strategy is dense)"},
      {"--depth 2", "--depth applies only to --strategy beam"},
      {"--strategy race --beam-score 3",
       "--beam-score applies only to --strategy beam (this scan's strategy is race)"},
      {"--surrogate knn", "--surrogate applies only to --strategy beam"},
      {"--strategy coarse-to-fine --surrogate-min-rho 0.5",
       "--surrogate-min-rho applies only to --strategy beam"},
      {"--race-margin 0.1", "--race-margin applies only to --strategy race"},
      {"--strategy beam --race-keep 3",
       "--race-keep applies only to --strategy race (this scan's strategy is beam)"},
  });
}

}  // namespace
}  // namespace reprise
