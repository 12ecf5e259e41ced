// The scan end to end on the synth fixtures of the newer architectures (a Qwen3-MoE model, whose
// repeated layers run their own router and experts again, and Gemma 3, whose repeated layers keep
// their sliding window and rope base): repeat and skip grids run, every (i, j) block is stored,
// and every stored score equals `reprise eval` of the same path, item by item, to the last bit.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <map>
#include <set>
#include <sstream>

#include "support/test_support.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

constexpr int kItems = 4;
constexpr int kLayers = 4;  // every fixture of tests/data/fixtures/*-tiny-f32.gguf

class ScanArch : public ::testing::TestWithParam<const char*> {
 protected:
  // Quoted for the shell; built by appending (GCC 12 warns falsely, -Wrestrict, about
  // "'" + std::string).
  std::string model() const {
    std::string q = "'";
    q += (test::source_dir() / "tests/data/fixtures" / (std::string(GetParam()) + "-tiny-f32.gguf"))
             .string();
    q += '\'';
    return q;
  }
  fs::path file(const std::string& name) const {
    return test::scratch(std::string("scan-arch-") + GetParam() + "-" + name);
  }
};

// config -> item -> stored loglik_per_token, from `reprise report`'s CSV.
using Scores = std::map<std::string, std::map<std::string, double>>;

Scores stored_scores(const fs::path& db, const fs::path& csv) {
  auto r = test::run_cli("report '" + db.string() + "' -o '" + csv.string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  Scores out;
  std::istringstream lines(test::slurp(csv));
  for (std::string line; std::getline(lines, line);) {
    // phase,config,path,task,item,metric,value (the path has commas of its own)
    std::vector<std::string> f;
    std::stringstream ls(line);
    for (std::string x; std::getline(ls, x, ',');) f.push_back(x);
    const size_t n = f.size();
    if (n >= 7 && f[0] == "search" && f[n - 2] == "loglik_per_token")
      out[f[1]][f[n - 3]] = std::stod(f[n - 1]);
  }
  return out;
}

TEST_P(ScanArch, RepeatAndSkipGridsEqualEval) {
  const fs::path db = file("scan.db");
  fs::remove(db);
  auto r =
      test::run_cli("scan -m " + model() + " --task tinystories --limit " + std::to_string(kItems) +
                    " --mode repeat,skip -t 1 --quiet -o '" + db.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Scores stored = stored_scores(db, file("scan.csv"));

  // Every block 0 <= i < j <= 4 repeated, every block but the whole model skipped.
  std::set<std::string> want = {"baseline"};
  for (int i = 0; i < kLayers; ++i)
    for (int j = i + 1; j <= kLayers; ++j) {
      want.insert("repeat:" + std::to_string(i) + ":" + std::to_string(j));
      if (j - i < kLayers) want.insert("skip:" + std::to_string(i) + ":" + std::to_string(j));
    }
  std::set<std::string> got;
  for (const auto& [config, items] : stored) {
    got.insert(config);
    EXPECT_EQ(items.size(), static_cast<size_t>(kItems)) << config;
  }
  EXPECT_EQ(got, want);

  // The baseline, a repeat and a skip, as `reprise eval` scores them on their own.
  for (const std::string config : {"baseline", "repeat:1:3", "skip:1:3"}) {
    SCOPED_TRACE(config);
    const fs::path samples = file(config + ".jsonl");
    const std::string path = config == "baseline" ? "" : " --path " + config;
    auto e = test::run_cli("eval -m " + model() + " --task tinystories --limit " +
                           std::to_string(kItems) + path + " -t 1 --log-samples '" +
                           samples.string() + "' -o '" + file(config + ".json").string() + "'");
    ASSERT_EQ(e.exit_code, 0) << e.err;
    std::istringstream lines(test::slurp(samples));
    int matched = 0;
    for (std::string line; std::getline(lines, line);) {
      if (line.empty()) continue;
      const auto j = nlohmann::json::parse(line);
      const std::string item = j.at("id").get<std::string>();
      ASSERT_TRUE(stored.count(config) && stored.at(config).count(item)) << item;
      EXPECT_EQ(stored.at(config).at(item), j.at("loglik_per_token").get<double>()) << item;
      ++matched;
    }
    EXPECT_EQ(matched, kItems);
  }
  // The grid is not degenerate: repeating or skipping layers changes the model's scores.
  EXPECT_NE(stored.at("repeat:1:3"), stored.at("baseline"));
  EXPECT_NE(stored.at("skip:1:3"), stored.at("baseline"));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ScanArch, ::testing::Values("qwen3moe", "gemma3", "mixtral"));

}  // namespace
}  // namespace reprise
