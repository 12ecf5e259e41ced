// `reprise route train` and `--path auto:router.json` end to end on the bundled model: a tiny
// scan, a router trained on it, routed run and eval, and the start-up errors for bad routers.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/route_fixture.h"
#include "support/test_support.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

void expect_one_line_error(const test::CommandResult& r, const std::string& needle) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_CONTAINS(r.err, needle);
}

using test::route_scan_store;
using test::trained_router;

nlohmann::json read_json(const fs::path& p) {
  return nlohmann::json::parse(test::slurp(p));
}

TEST(RouteCli, TrainWritesARouterForTheScan) {
  const auto j = read_json(trained_router());
  EXPECT_EQ(j.at("format"), "reprise-router");
  ASSERT_GE(j.at("candidates").size(), 2u);
  EXPECT_EQ(j.at("candidates")[0].at("key"), "baseline");
  // stories260K has 5 layers; every candidate keeps the plain path through the feature layer.
  const int L = j.at("feature_layer");
  EXPECT_GE(L, 1);
  EXPECT_LE(L, 5);
  EXPECT_EQ(j.at("classifier").at("mean").size(), 64u);  // the model's n_embd
}

// A routed run must produce exactly what a run along the chosen path produces: the prefix run
// for the features is reused, not approximated.
TEST(RouteCli, RoutedRunEqualsARunAlongTheChosenPath) {
  const std::string m = test::default_model_arg();
  const std::string args = " -p 'Once upon a time' -n 12 --temp 0 -s 1";
  auto routed =
      test::run_cli("run " + m + " --path 'auto:" + trained_router().string() + "'" + args);
  ASSERT_EQ(routed.exit_code, 0) << routed.err;
  EXPECT_CONTAINS(routed.err, "route: ");
  const auto j = read_json(trained_router());
  std::string chosen_path;
  for (const auto& c : j.at("candidates"))
    if (routed.err.find("route: " + c.at("key").get<std::string>() + " ") != std::string::npos)
      chosen_path = c.at("path");
  ASSERT_FALSE(chosen_path.empty()) << routed.err;
  auto direct = test::run_cli("run " + m + " --path '" + chosen_path + "'" + args);
  ASSERT_EQ(direct.exit_code, 0) << direct.err;
  EXPECT_EQ(routed.out, direct.out);
}

TEST(RouteCli, RoutedEvalLogsThePathOfEveryItem) {
  const fs::path samples = test::scratch("route-samples.jsonl");
  auto r = test::run_cli("eval " + test::default_model_arg() +
                         " --path 'auto:" + trained_router().string() +
                         "' --task tinystories --limit 4 --log-samples '" + samples.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.err, "route: ");
  std::istringstream in(test::slurp(samples));
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    const auto j = nlohmann::json::parse(line);
    const std::string path = j.at("path");
    EXPECT_EQ(path.rfind("auto:", 0), 0u) << path;
    EXPECT_GT(path.size(), 5u) << "no chosen path logged: " << line.substr(0, 200);
  }
  EXPECT_EQ(lines, 4);
}

// --validate-on held-out: the router fitted on the search items is judged on the scan's validate
// items, beside the out-of-fold table, with candidates from the configs that phase scored.
TEST(RouteCli, HeldOutTableComesFromTheValidatePhase) {
  const fs::path out = test::scratch("router-held-out.json");
  auto r = test::run_cli("route train '" + route_scan_store().string() + "' " +
                         test::default_model_arg() + " -o '" + out.string() +
                         "' --overwrite --paths 3 --folds 3 --validate-on held-out");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "(held-out items: the router fitted on every search item");
  EXPECT_CONTAINS(r.out, "on held-out items it ");
  const auto j = read_json(out);
  bool found = false;
  for (const auto& row : j.at("report").at("rows"))
    if (row.at("items") == "held-out") {
      found = true;
      EXPECT_EQ(row.at("n"), 12);  // the scan's 12 held-out BoolQ items
      EXPECT_GE(row.at("oracle").get<double>(), row.at("plain").get<double>());
    }
  EXPECT_TRUE(found) << j.dump();
  // Every candidate was validated: baseline + the top 3 of the search.
  EXPECT_LE(j.at("candidates").size(), 4u);

  const fs::path store = test::scratch("route-no-validate.db");
  fs::remove(store);
  auto s = test::run_cli("scan " + test::default_model_arg() +
                         " --task tinystories --limit 2 -o '" + store.string() + "'");
  ASSERT_EQ(s.exit_code, 0) << s.err;
  expect_one_line_error(
      test::run_cli("route train '" + store.string() + "' " + test::default_model_arg() + " -o '" +
                    test::scratch("unused.json").string() + "' --validate-on held-out"),
      "the validate phase has no baseline scores (run the scan with --validate N)");
  // Without a config that beats the plain path anywhere there is nothing to route.
  expect_one_line_error(
      test::run_cli("route train '" + store.string() + "' " + test::default_model_arg() + " -o '" +
                    test::scratch("unused.json").string() + "' --folds 2"),
      "there is nothing to route");
}

TEST(RouteCli, BadRouterFilesFailAtStartUp) {
  const std::string m = test::default_model_arg();
  const fs::path corrupt = test::scratch("corrupt-router-cli.json");
  std::ofstream(corrupt) << "{\"format\": ";
  expect_one_line_error(test::run_cli("run " + m + " -p hi --path 'auto:" + corrupt.string() + "'"),
                        corrupt.string() + ": not valid JSON");
  auto j = read_json(trained_router());
  j["model_sha256"] = std::string(64, '0');
  const fs::path other = test::scratch("other-model-router.json");
  std::ofstream(other) << j.dump();
  expect_one_line_error(test::run_cli("eval " + m + " --task tinystories --limit 1 --path 'auto:" +
                                      other.string() + "'"),
                        "trained for another model");
  expect_one_line_error(test::run_cli("route train /nonexistent/scan.db " + m + " -o x.json"),
                        "/nonexistent/scan.db: no such scan store");
}

}  // namespace
}  // namespace reprise
