// Issue 24's scan features end to end on the default model: a damped config's stored scores equal
// `eval --path` of its path (prefix reuse honours the weights); a killed race resumes to the same
// store as one run, dropped configs stay out of the search phase (and so out of the Holm family),
// and the summary lists them with the n they were dropped at.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <map>
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

const std::string kRaceArgs =
    " --task tinystories --limit 48 --mode repeat,skip --strategy race --race-first 8 "
    "--race-keep 3 --controls 0 -t 1 --quiet";

std::string csv_of(const fs::path& db) {
  const fs::path csv = db.string() + ".csv";
  auto r = test::run_cli("report " + quoted(db) + " -o " + quoted(csv));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return test::slurp(csv);
}

TEST(DampedScan, ScoresEqualEvalOfTheDampedPath) {
  const std::string model = " -m " + quoted(test::default_model());
  const fs::path db = test::scratch("damped.db"), samples = test::scratch("damped.jsonl");
  auto r = test::run_cli("scan" + model +
                         " --task tinystories --limit 5 --mode repeat --i-range 1:2 --j-range 3:4 "
                         "--alphas 0.5,1 --controls 0 -t 1 --quiet -o " +
                         quoted(db));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("repeat:1:3@0.5  0..2,1..2@0.5,3..4"), std::string::npos) << r.out;
  auto e = test::run_cli("eval" + model + " --task tinystories --limit 5 --path repeat:1:3@0.5 " +
                         "-t 1 --log-samples " + quoted(samples) + " -o " +
                         quoted(test::scratch("damped.json")));
  ASSERT_EQ(e.exit_code, 0) << e.err;
  std::map<std::string, double> from_eval;
  std::istringstream lines(test::slurp(samples));
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) {
      auto j = nlohmann::json::parse(line);
      from_eval[j.at("id").get<std::string>()] =
          j.at("loglik_per_token").get<double>();  // lm-eval's samples: metric values at the top
    }
  ASSERT_EQ(from_eval.size(), 5u);
  // CSV rows: phase,config,path,task,item,metric,value; the damped config's, to the last bit.
  std::istringstream csv(csv_of(db));
  int matched = 0;
  for (std::string line; std::getline(csv, line);) {
    if (line.rfind("search,repeat:1:3@0.5,", 0) != 0 ||
        line.find(",loglik_per_token,") == line.npos)
      continue;
    const size_t last = line.rfind(','), metric = line.rfind(',', last - 1),
                 item = line.rfind(',', metric - 1);
    const std::string id = line.substr(item + 1, metric - item - 1);
    ASSERT_TRUE(from_eval.count(id)) << line;
    EXPECT_EQ(std::stod(line.substr(last + 1)), from_eval[id]) << line;
    ++matched;
  }
  EXPECT_EQ(matched, 5);
}

TEST(RaceScan, KilledAndResumedEqualsOneGoAndDropsStayOutOfTheSearch) {
  const std::string model = " -m " + quoted(test::default_model());
  const fs::path one = test::scratch("race-one.db"), killed = test::scratch("race-killed.db");
  auto r = test::run_cli("scan" + model + kRaceArgs + " -o " + quoted(one));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // "...; D configs dropped, which take no part in the Holm family above"
  const size_t at = r.out.find(" configs dropped, which take no part in the Holm family above");
  ASSERT_NE(at, std::string::npos) << r.out;
  const int dropped = std::stoi(r.out.substr(r.out.rfind(' ', at - 1) + 1));
  // Most of the 14 skips fall far below the baseline by n = 32 (under --race-clip auto each of
  // the two sequences runs at half the delta, which at 48 items keeps a few of them one look
  // longer than a fixed clip alone would).
  EXPECT_GE(dropped, 10) << r.out;
  const int kept = 29 - dropped;  // 15 repeats + 14 skips of 5 layers raced
  EXPECT_NE(r.out.find(fmt::format("Holm across all {} configs", kept)), std::string::npos);
  EXPECT_NE(r.out.find("skip:0:1             dropped at n = "), std::string::npos) << r.out;

  std::mt19937 rng(3);
  for (int k = 0; k < 4; ++k) {
    const int ms = 100 + static_cast<int>(rng() % 500);
    const std::string cmd = std::string("'") + REPRISE_BINARY + "' scan" + model + kRaceArgs +
                            " -o " + quoted(killed) + " >/dev/null 2>&1 & pid=$!; sleep " +
                            std::to_string(ms / 1000.0) + "; kill -9 $pid 2>/dev/null; wait $pid";
    test::run_shell(cmd);
  }
  auto resumed = test::run_cli("scan" + model + kRaceArgs + " -o " + quoted(killed));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const std::string a = csv_of(one), b = csv_of(killed);
  EXPECT_EQ(a, b);
  // The search phase holds the baseline and the configs not dropped only; the dropped ones' partial
  // scores stay in their race phases.
  std::istringstream lines(a);
  std::set<std::string> search;
  bool dropped_partial = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("search,", 0) == 0) search.insert(line.substr(7, line.find(',', 7) - 7));
    if (line.rfind("race:1,skip:0:1,", 0) == 0) dropped_partial = true;
  }
  EXPECT_EQ(search.size(), static_cast<size_t>(kept + 1));
  EXPECT_TRUE(search.count("baseline"));
  EXPECT_FALSE(search.count("skip:0:1"));
  EXPECT_TRUE(dropped_partial);
}

TEST(RaceScan, BadRaceOptionsAreOneLineErrors) {
  const std::string model = " -m " + quoted(test::default_model());
  for (const auto& [arg, fragment] : std::vector<std::pair<std::string, std::string>>{
           {"--strategy race --race-alpha 1.5", "--race-alpha must be in (0, 1)"},
           {"--strategy race --race-first 1", "--race-first must be >= 2"},
           {"--strategy race --race-clip 0", "--race-clip must be > 0"},
           {"--strategy race --race-clip fast",
            "--race-clip: expected 'auto' or a number, got 'fast'"},
           {"--strategy racing", "known: dense, coarse-to-fine, race"}}) {
    auto r = test::run_cli("scan" + model + " --task tinystories --limit 3 " + arg + " -o " +
                           quoted(test::scratch("race-bad.db")));
    EXPECT_EQ(r.exit_code, 2) << arg;
    EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(test::scratch("race-bad.db"))) << arg;
  }
}

}  // namespace
}  // namespace reprise
