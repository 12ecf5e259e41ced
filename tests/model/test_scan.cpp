// The scan end to end on the default model: prefix reuse is exact, kills lose nothing, bad
// input is refused without harming the store.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "support/test_support.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir() {
  static fs::path d = [] {
    auto p = test::scratch("scan");
    fs::create_directories(p);
    return p;
  }();
  return d;
}

// Built by appending: GCC 12 warns falsely (-Wrestrict) about "'" + std::string here.
std::string quoted(const std::string& s) {
  std::string q = "'";
  q += s;
  q += '\'';
  return q;
}

std::string model() {
  return quoted(test::default_model().string());
}

const std::string kScanArgs = " --task tinystories --limit 6 --mode repeat,skip -t 1 --quiet";

std::string read(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string scan_csv(const fs::path& db, const std::string& name) {
  auto csv = temp_dir() / name;
  auto r = test::run_cli("report '" + db.string() + "' -o '" + csv.string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return read(csv);
}

TEST(Scan, ScoresEqualEvalOfTheSamePath) {
  auto db = temp_dir() / "eq.db";
  fs::remove(db);
  auto r = test::run_cli("scan -m " + model() +
                         " --task tinystories --limit 5 --mode repeat --i-range 1:2 --j-range 3:4 "
                         "--controls 0 -t 1 --quiet -o '" +
                         db.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("repeat:1:3"), std::string::npos) << r.out;
  auto samples = temp_dir() / "eq.jsonl";
  auto e = test::run_cli("eval -m " + model() +
                         " --task tinystories --limit 5 --path repeat:1:3 -t 1 "
                         "--log-samples '" +
                         samples.string() + "' -o '" + (temp_dir() / "eq.json").string() + "'");
  ASSERT_EQ(e.exit_code, 0) << e.err;
  // Every per-item score the scan stored for repeat:1:3 equals eval's, to the last bit.
  std::map<std::string, double> from_eval;
  std::istringstream lines(read(samples));
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    from_eval[j.at("id").get<std::string>()] = j.at("loglik_per_token").get<double>();
  }
  ASSERT_EQ(from_eval.size(), 5u);
  std::istringstream csv(scan_csv(db, "eq.csv"));
  int matched = 0;
  for (std::string line; std::getline(csv, line);) {
    if (line.rfind("search,repeat:1:3,", 0) != 0) continue;
    auto last = line.rfind(',');
    auto item_end = line.rfind(',', last - 1);
    auto item_start = line.rfind(',', item_end - 1) + 1;
    std::string item = line.substr(item_start, item_end - item_start);
    ASSERT_TRUE(from_eval.count(item)) << line;
    EXPECT_EQ(std::stod(line.substr(last + 1)), from_eval[item]) << line;
    ++matched;
  }
  EXPECT_EQ(matched, 5);
}

// Prefix reuse on a multiple-choice task: the full repeat grid costs at least 1.8x fewer layer
// evaluations than running each config whole (every context and choice starts from the
// baseline's cached stream), and every stored score equals `eval --path` of the same config.
TEST(Scan, MultipleChoiceReuseSavesAndMatchesEval) {
  auto db = temp_dir() / "mc.db";
  fs::remove(db);
  auto r =
      test::run_cli("scan -m " + model() +
                    " --task arc_easy --limit 12 --mode repeat --controls 0 -t 1 --quiet -o '" +
                    db.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string tag = "prefix reuse, multiple_choice: ";
  const size_t at = r.out.find(tag);
  ASSERT_NE(at, std::string::npos) << r.out;
  long long done = 0, full = 0;
  ASSERT_EQ(std::sscanf(r.out.c_str() + at + tag.size(), "%lld layer evaluations instead of %lld",
                        &done, &full),
            2)
      << r.out;
  EXPECT_GE(static_cast<double>(full) / static_cast<double>(done), 1.8) << r.out;

  std::istringstream csv(scan_csv(db, "mc.csv"));
  std::map<std::string, double> stored;  // "config,item,metric" -> value
  for (std::string line; std::getline(csv, line);) {
    std::vector<std::string> f;
    std::stringstream ls(line);
    for (std::string x; std::getline(ls, x, ',');) f.push_back(x);
    // phase, config, path (which has commas of its own), task, item, metric, value
    const size_t n = f.size();
    if (n >= 7 && f[0] == "search")
      stored[f[1] + "," + f[n - 3] + "," + f[n - 2]] = std::stod(f[n - 1]);
  }
  for (const char* config : {"repeat:0:5", "repeat:1:3", "repeat:3:4"}) {
    auto samples = temp_dir() / (std::string("mc-") + config + ".jsonl");
    auto e = test::run_cli("eval -m " + model() + " --task arc_easy --limit 12 --path " + config +
                           " -t 1 --log-samples '" + samples.string() + "'");
    ASSERT_EQ(e.exit_code, 0) << e.err;
    std::istringstream lines(read(samples));
    int matched = 0;
    for (std::string line; std::getline(lines, line);) {
      auto j = nlohmann::json::parse(line);
      for (const char* m : {"acc", "acc_norm"}) {
        const std::string key = std::string(config) + "," + j.at("id").get<std::string>() + "," + m;
        ASSERT_TRUE(stored.count(key)) << key;
        EXPECT_EQ(stored[key], j.at(m).get<double>()) << key;
        ++matched;
      }
    }
    EXPECT_EQ(matched, 24) << config;
  }
}

TEST(Scan, KilledAndResumedEqualsOneGo) {
  auto one = temp_dir() / "one.db", killed = temp_dir() / "killed.db";
  fs::remove(one), fs::remove(killed);
  auto r = test::run_cli("scan -m " + model() + kScanArgs + " -o '" + one.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::mt19937 rng(7);
  for (int k = 0; k < 4; ++k) {
    const int ms = 100 + static_cast<int>(rng() % 600);
    std::string cmd = quoted(REPRISE_BINARY) + " scan -m " + model() + kScanArgs + " -o '" +
                      killed.string() + "' >/dev/null 2>&1 & pid=$!; sleep " +
                      std::to_string(ms / 1000.0) + "; kill -9 $pid 2>/dev/null; wait $pid";
    std::system(("bash -c \"" + cmd + "\"").c_str());
  }
  r = test::run_cli("scan -m " + model() + kScanArgs + " -o '" + killed.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(scan_csv(one, "one.csv"), scan_csv(killed, "killed.csv"));
}

void expect_scan_error(const std::string& args, const std::string& fragment) {
  auto r = test::run_cli("scan -m " + model() + " --task tinystories --limit 3 --quiet " + args);
  EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.out;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// mpirun as the tests run it: root is allowed (CI containers), more ranks than cores are fine,
// and shared-memory transfers avoid the cross-process copy containers often forbid.
std::string mpirun(int ranks) {
  return "mpirun --allow-run-as-root --oversubscribe --mca btl_vader_single_copy_mechanism none "
         "-np " +
         std::to_string(ranks) + " ";
}

bool have_mpirun() {
  return test::run_shell("command -v mpirun").exit_code == 0;
}

TEST(Scan, TwoMpiRanksGiveTheSameStoreAsOneProcess) {
  if (!have_mpirun())
    GTEST_SKIP() << "mpirun not installed (scripts/setup.sh installs openmpi-bin)";
  auto one = temp_dir() / "mpi-one.db", two = temp_dir() / "mpi-two.db";
  fs::remove(one), fs::remove(two);
  auto r1 = test::run_cli("scan -m " + model() + kScanArgs + " -o '" + one.string() + "'");
  ASSERT_EQ(r1.exit_code, 0) << r1.err;
  auto r2 = test::run_shell(mpirun(2) + quoted(test::binary()) + " scan -m " + model() + kScanArgs +
                            " -o '" + two.string() + "'");
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_EQ(scan_csv(one, "mpi-one.csv"), scan_csv(two, "mpi-two.csv"));
  // Each rank built its own baseline cache, so the two-rank job ran more layers than one
  // process did: evidence that rank 1 really scored configs.
  auto evals = [](const std::string& out) {
    const auto at = out.find("layer evaluations (positions x tokens): ");
    return at == std::string::npos ? -1 : std::stoll(out.substr(at + 40));
  };
  EXPECT_GT(evals(r2.out), evals(r1.out)) << r1.out << "\n" << r2.out;
  // Only rank 0 reports.
  EXPECT_EQ(r2.out.find("this run:"), r2.out.rfind("this run:")) << r2.out;
}

TEST(Scan, MpiRankWithAnotherModelStopsTheJob) {
  if (!have_mpirun())
    GTEST_SKIP() << "mpirun not installed (scripts/setup.sh installs openmpi-bin)";
  auto db = temp_dir() / "mpi-mixed.db";
  fs::remove(db);
  const std::string other = quoted((test::source_dir() / "tests/data/hf/stories260K-f32").string());
  const std::string tail = kScanArgs + " -o '" + db.string() + "'";
  auto r = test::run_shell(
      "timeout 120 mpirun --allow-run-as-root --oversubscribe --mca "
      "btl_vader_single_copy_mechanism none -np 1 " +
      quoted(test::binary()) + " scan -m " + model() + tail + " : -np 1 " + quoted(test::binary()) +
      " scan -m " + other + tail);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, 124) << "the job hung instead of stopping";
  EXPECT_NE(r.err.find("rank 1: model_sha256 differs from rank 0's"), std::string::npos) << r.err;
}

TEST(Scan, BadInput) {
  auto db = (temp_dir() / "bad.db").string();
  fs::remove(db);
  expect_scan_error("--i-range 3:2 -o '" + db + "'", "--i-range 3:2 is outside the model");
  expect_scan_error("--j-range 0:99 -o '" + db + "'", "--j-range 0:99 is outside the model");
  expect_scan_error("--mode warp -o '" + db + "'", "unknown mode 'warp'");
  expect_scan_error("--strategy fast -o '" + db + "'", "--strategy: unknown 'fast'");
  expect_scan_error("--mode loop --loops 1 -o '" + db + "'", "--loops: run count 1 must be 2..64");
  expect_scan_error("--controls -2 -o '" + db + "'", "--controls must be >= 0, got -2");
  expect_scan_error("--validate -1 -o '" + db + "'", "--validate must be >= 0, got -1");
  // Every one of them was refused before the store was created.
  EXPECT_FALSE(fs::exists(db));
  auto zero =
      test::run_cli("scan -m " + model() + " --task tinystories --limit 0 --quiet -o '" + db + "'");
  EXPECT_EQ(zero.exit_code, 2);
  EXPECT_NE(zero.err.find("--limit must be >= 1 (leave it out for every item), got 0"),
            std::string::npos)
      << zero.err;
  EXPECT_LT(zero.err.size(), 120u) << zero.err;
  EXPECT_FALSE(fs::exists(db));
  expect_scan_error("-o /nonexistent-dir/x/scan.db", "cannot open the scan store");
  // A store made with another model is refused.
  auto r = test::run_cli("scan -m " + model() +
                         " --task tinystories --limit 3 --quiet "
                         "--i-range 0:1 -o '" +
                         db + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto other = (test::source_dir() / "tests/data/hf/stories260K-f32").string();
  auto o =
      test::run_cli("scan -m '" + other + "' --task tinystories --limit 3 --quiet -o '" + db + "'");
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("this store holds a scan of another model"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("to start afresh, remove " + db + " or pass another -o file"),
            std::string::npos)
      << o.err;
  // And one made for other items (another --limit) too, naming the option.
  auto l =
      test::run_cli("scan -m " + model() + " --task tinystories --limit 4 --quiet -o '" + db + "'");
  EXPECT_EQ(l.exit_code, 2);
  EXPECT_NE(l.err.find("--limit (items searched per task) is 3 in the store, 4 now"),
            std::string::npos)
      << l.err;
  auto s = test::run_cli("scan -m " + model() +
                         " --task tinystories --limit 3 --seed 5 --quiet -o '" + db + "'");
  EXPECT_EQ(s.exit_code, 2);
  EXPECT_NE(s.err.find("--seed is 1234 in the store, 5 now"), std::string::npos) << s.err;
}

TEST(Scan, MultiTaskReportIsPerTask) {
  auto db = temp_dir() / "multi.db";
  fs::remove(db);
  auto r = test::run_cli("scan -m " + model() +
                         " --task arc_easy,tinystories --limit 4 --mode "
                         "repeat,skip -t 1 --quiet -o '" +
                         db.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // One section per task in its own metric, a unit-free combined ranking, no pooled baseline.
  EXPECT_NE(r.out.find("arc_easy: baseline acc = "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tinystories: baseline loglik_per_token = "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("combined ranking across tasks (unit-free)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("on 8 items"), std::string::npos) << r.out;
  auto html = temp_dir() / "multi.html", png = temp_dir() / "multi.png";
  auto rep = test::run_cli("report '" + db.string() + "' -o '" + html.string() + "' -o '" +
                           png.string() + "'");
  ASSERT_EQ(rep.exit_code, 0) << rep.err;
  const std::string h = read(html);
  size_t svgs = 0;
  for (size_t at = 0; (at = h.find("<svg", at)) != std::string::npos; ++at) ++svgs;
  EXPECT_EQ(svgs, 2u);  // one heatmap per task
  EXPECT_NE(h.find("<h2>arc_easy: baseline acc"), std::string::npos);
  EXPECT_NE(h.find("<h2>tinystories: baseline loglik_per_token"), std::string::npos);
  EXPECT_NE(h.find("Combined ranking across tasks"), std::string::npos);
  EXPECT_NE(h.find("Pareto"), std::string::npos);
}

TEST(Scan, CoarseToFineCorrectsForEveryConfigOfBothStages) {
  auto db = temp_dir() / "c2f.db";
  fs::remove(db);
  auto r = test::run_cli("scan -m " + model() +
                         " --task tinystories --limit 4 --mode repeat "
                         "--strategy coarse-to-fine --stride 2 --controls 0 -t 1 --quiet -o '" +
                         db.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> configs;
  std::istringstream csv(scan_csv(db, "c2f.csv"));
  for (std::string line; std::getline(csv, line);)
    if (line.rfind("search,", 0) == 0 && line.rfind("search,baseline,", 0) != 0)
      configs.insert(line.substr(7, line.find(',', 7) - 7));
  // Coarse grid on stride 2 of 5 layers: i in {0, 2, 4}, j in {2, 4, 5}: 6 blocks. The fine
  // stage adds neighbours; Holm counts them all.
  EXPECT_GT(configs.size(), 6u);
  EXPECT_NE(r.out.find("Holm across all " + std::to_string(configs.size()) + " configs"),
            std::string::npos)
      << r.out;
}

TEST(Scan, ValidationStatesItsRuleAndRefusesTooSmallHeldOutSets) {
  auto db = temp_dir() / "val.db";
  fs::remove(db);
  auto r = test::run_cli("scan -m " + model() +
                         " --task tinystories --limit 5 --mode repeat "
                         "--validate 2 --controls 0 -t 1 --quiet -o '" +
                         db.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("held-out validation:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("too few items"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(" survives"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("held-out n = 5 is below the minimum of 30 items"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("held-out set: 5 items, none repeating a searched item's text"),
            std::string::npos)
      << r.out;
}

TEST(Scan, FullDiskIsAnErrorAndTheStoreSurvives) {
  auto db = temp_dir() / "full.db", ref = temp_dir() / "full-ref.db";
  fs::remove(db), fs::remove(ref);
  // A file-size limit stands in for a full disk: writes past it fail with EFBIG.
  std::string cmd = "bash -c \"ulimit -f 48; '" + std::string(REPRISE_BINARY) + "' scan -m " +
                    model() + kScanArgs + " -o '" + db.string() + "' > /dev/null 2> '" +
                    (temp_dir() / "full.err").string() + "'\"";
  int status = std::system(cmd.c_str());
  EXPECT_NE(status, 0);
  std::string err = read(temp_dir() / "full.err");
  EXPECT_NE(err.find("reprise: error: "), std::string::npos) << err;
  EXPECT_NE(err.find(db.string()), std::string::npos) << err;
  // Without the limit the same command resumes and ends with the complete, uncorrupted store.
  auto r = test::run_cli("scan -m " + model() + kScanArgs + " -o '" + db.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto g = test::run_cli("scan -m " + model() + kScanArgs + " -o '" + ref.string() + "'");
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_EQ(scan_csv(db, "full.csv"), scan_csv(ref, "full-ref.csv"));
}

TEST(Scan, ReportWritesHeatmapAndHtml) {
  auto db = temp_dir() / "rep.db";
  fs::remove(db);
  auto r = test::run_cli("scan -m " + model() +
                         " --task tinystories --limit 3 --quiet --mode "
                         "repeat,skip,loop --loops 3 -o '" +
                         db.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto png = temp_dir() / "rep.png", svg = temp_dir() / "rep.svg", html = temp_dir() / "rep.html";
  auto rep = test::run_cli("report '" + db.string() + "' -o '" + png.string() + "' -o '" +
                           svg.string() + "' -o '" + html.string() + "'");
  ASSERT_EQ(rep.exit_code, 0) << rep.err;
  std::string p = read(png);
  ASSERT_GT(p.size(), 8u);
  EXPECT_EQ(p.substr(1, 3), "PNG");
  std::string s = read(svg), h = read(html);
  EXPECT_NE(s.find("<svg"), std::string::npos);
  EXPECT_NE(h.find("Skip controls"), std::string::npos);
  EXPECT_NE(h.find("repeat:"), std::string::npos);
  auto bad =
      test::run_cli("report '" + db.string() + "' -o '" + (temp_dir() / "x.pdf").string() + "'");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("reports are .png, .svg, .html or .csv"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace reprise
