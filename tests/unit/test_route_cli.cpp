// `reprise route train` and `--path auto:router.json` end to end on the bundled model: a tiny
// scan, a router trained on it, routed run and eval, and the start-up errors for bad routers.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "model/chat_template.h"
#include "scan/runner.h"
#include "scan/store.h"
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

// Hand-made routers over the plain path and repeat:1:4 (read after layer 3), for the commands
// whose routed output must equal the output along the path the router picks.
const std::vector<std::string> kKeys = {"baseline", "repeat:1:4"};
const std::vector<std::string> kPaths = {"0..4", "0..3,1..4"};
constexpr int kLayer = 3;

const Model& bundled() {
  static const std::unique_ptr<Model> m = Model::load(test::default_model());
  return *m;
}

fs::path always_deep_router() {
  return test::write_router(test::constant_router(bundled(), kLayer, kKeys, kPaths, {-3, 3}),
                            "always-deep-router.json");
}

std::vector<nlohmann::json> jsonl(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST(RouteCli, RoutedChatEqualsChatAlongTheChosenPath) {
  const std::string m = test::default_model_arg() + " --temp 0 -n 10 --jsonl";
  const std::string script = "Hi\nTell me a story\n";
  auto routed =
      test::run_cli("chat " + m + " --path 'auto:" + always_deep_router().string() + "'", script);
  ASSERT_EQ(routed.exit_code, 0) << routed.err;
  auto direct = test::run_cli("chat " + m + " --path repeat:1:4", script);
  ASSERT_EQ(direct.exit_code, 0) << direct.err;
  const auto r = jsonl(routed.out), d = jsonl(direct.out);
  ASSERT_EQ(r.size(), 2u) << routed.out;
  ASSERT_EQ(d.size(), 2u) << direct.out;
  for (size_t t = 0; t < 2; ++t) {
    EXPECT_EQ(r[t].at("reply"), d[t].at("reply")) << t;
    EXPECT_EQ(r[t].at("path"), "0..3,1..4");
    EXPECT_EQ(r[t].at("route"), "repeat:1:4");
  }
  EXPECT_CONTAINS(routed.err, "route: repeat:1:4 (p = 0.998) after layer 3");
}

// Each turn is routed on the whole conversation: a router that sends the first turn along the
// plain path and the second along repeat:1:4 gives what a chat switched by `/path` between the
// turns gives.
TEST(RouteCli, ChatRoutesEveryTurn) {
  const std::string m = test::default_model_arg() + " --temp 0 -n 10 --jsonl";
  auto manual = test::run_cli("chat " + m, "Hi\n/path repeat:1:4\nTell me a story\n");
  ASSERT_EQ(manual.exit_code, 0) << manual.err;
  const auto want = jsonl(manual.out);
  ASSERT_EQ(want.size(), 3u) << manual.out;  // reply, /path's info, reply
  // The prompts chat builds (chatml: the bundled model has no template of its own).
  std::vector<ChatMessage> msgs = {{"user", "Hi"}};
  EncodeOptions eo;
  eo.parse_special = true;
  const Tokenizer& tok = *bundled().tokenizer();
  const auto first = tok.encode(format_chat("chatml", msgs, true), eo);
  msgs.push_back({"assistant", want[0].at("reply")});
  msgs.push_back({"user", "Tell me a story"});
  const auto second = tok.encode(format_chat("chatml", msgs, true), eo);
  const fs::path router =
      test::write_router(test::two_prompt_router(bundled(), kLayer, kKeys, kPaths, second, first),
                         "chat-turn-router.json");
  auto routed = test::run_cli("chat " + m + " --path 'auto:" + router.string() + "'",
                              "Hi\nTell me a story\n");
  ASSERT_EQ(routed.exit_code, 0) << routed.err;
  const auto got = jsonl(routed.out);
  ASSERT_EQ(got.size(), 2u) << routed.out;
  EXPECT_EQ(got[0].at("route"), "baseline");
  EXPECT_EQ(got[0].at("reply"), want[0].at("reply"));
  EXPECT_EQ(got[1].at("route"), "repeat:1:4");
  EXPECT_EQ(got[1].at("reply"), want[2].at("reply"));
}

// `compare` on a routed eval: a router that always picks repeat:1:4 scores every item exactly as
// `eval --path repeat:1:4` does (tinystories' log-likelihoods tell the two paths apart), so the
// comparisons against the plain run are the same table.
TEST(RouteCli, CompareReadsRoutedRuns) {
  const std::string m = test::default_model_arg() + " --task tinystories --limit 4";
  auto eval_to = [&](const std::string& path, const std::string& name) {
    const fs::path samples = test::scratch(name);
    auto r = test::run_cli("eval " + m + " --path '" + path + "' --log-samples '" +
                           samples.string() + "'");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return samples;
  };
  const fs::path plain = eval_to("0..4", "cmp-plain.jsonl");
  const fs::path deep = eval_to("repeat:1:4", "cmp-deep.jsonl");
  const fs::path routed = eval_to("auto:" + always_deep_router().string(), "cmp-routed.jsonl");
  const auto d = jsonl(test::slurp(deep)), r = jsonl(test::slurp(routed));
  ASSERT_EQ(d.size(), r.size());
  for (size_t k = 0; k < d.size(); ++k) {
    EXPECT_EQ(r[k].at("id"), d[k].at("id"));
    EXPECT_EQ(r[k].at("loglik_per_token"), d[k].at("loglik_per_token")) << k;
    EXPECT_EQ(r[k].at("path"), "auto:repeat:1:4");
  }
  auto table = [](const fs::path& a, const fs::path& b) {
    auto c = test::run_cli("compare '" + a.string() + "' '" + b.string() + "'");
    EXPECT_EQ(c.exit_code, 0) << c.err;
    EXPECT_CONTAINS(c.out, "differences are");
    return c;
  };
  const auto vs_routed = table(plain, routed), vs_deep = table(plain, deep);
  EXPECT_CONTAINS(vs_routed.out, "B: " + routed.string() + " (path auto:repeat:1:4)");
  EXPECT_CONTAINS(vs_deep.out, "A is better than B on loglik_per_token");
  EXPECT_EQ(vs_routed.out.substr(vs_routed.out.find("differences are")),
            vs_deep.out.substr(vs_deep.out.find("differences are")));
  // Items routed along different paths: the label counts them.
  const fs::path mixed = test::scratch("cmp-mixed.jsonl");
  {
    std::ofstream f(mixed);
    for (size_t k = 0; k < r.size(); ++k) {
      auto line = r[k];
      if (k == 0) line["path"] = "auto:baseline";
      f << line.dump() << "\n";
    }
  }
  EXPECT_CONTAINS(table(plain, mixed).out, "(path auto:baseline x1, auto:repeat:1:4 x3)");
}

// scan --validate N --path auto:FILE: the router scored on the held-out items beside the top
// configs. A router that always picks repeat:1:4 must score each held-out item exactly as the
// validate phase scored repeat:1:4, and `route eval` prints the table the scan printed.
TEST(RouteCli, ScanValidatesTheRouterOnHeldOutItems) {
  const fs::path store = test::scratch("route-scan-routed.db");
  for (const std::string ext : {"", "-wal", "-shm"}) {
    fs::remove(store.string() + ext);
    if (fs::exists(route_scan_store().string() + ext))
      fs::copy_file(route_scan_store().string() + ext, store.string() + ext);
  }
  const std::string router = always_deep_router().string();
  const std::string scan = "scan " + test::default_model_arg() +
                           " --task boolq --limit 12 --validate 3 --quiet -o '" + store.string() +
                           "'";
  auto r = test::run_cli(scan + " --path 'auto:" + router + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(
      r.out, "router auto:" + router + " on 12 held-out items; chosen: baseline 0 repeat:1:4 12");
  EXPECT_CONTAINS(r.out, "equal the validated score of the chosen candidate on 12/12 items");
  EXPECT_CONTAINS(r.out, "time per request (24 requests)");  // BoolQ: two choices per item

  {
    const scan::Store st(store);
    const auto deep = st.scores("repeat:1:4", "validate");
    const auto routed = st.scores("auto:" + router, scan::kRoutedPhase);
    ASSERT_EQ(routed.size(), deep.size());
    ASSERT_FALSE(deep.empty());
    for (size_t k = 0; k < deep.size(); ++k) {
      EXPECT_EQ(routed[k].item, deep[k].item);
      EXPECT_EQ(routed[k].value, deep[k].value) << routed[k].item << " " << routed[k].metric;
    }
    const auto meta = nlohmann::json::parse(st.meta("routed").value_or("{}"));
    ASSERT_EQ(meta.at("choices").size(), 12u);
    for (const auto& c : meta.at("choices")) EXPECT_EQ(c.at("candidate"), "repeat:1:4");
  }
  auto ev = test::run_cli("route eval '" + store.string() + "'");
  ASSERT_EQ(ev.exit_code, 0) << ev.err;
  EXPECT_CONTAINS(r.out, ev.out);
  EXPECT_EQ(ev.out.rfind("router auto:", 0), 0u) << ev.out;

  expect_one_line_error(test::run_cli("route eval '" + route_scan_store().string() + "'"),
                        "no routed entry (run the scan with --validate N --path auto:");
  expect_one_line_error(test::run_cli(scan + " --path 0..3"), "--path takes only auto:");
  expect_one_line_error(
      test::run_cli("scan " + test::default_model_arg() + " --task boolq --limit 2 -o '" +
                    test::scratch("never.db").string() + "' --path 'auto:" + router + "'"),
      "it needs --validate N");
  EXPECT_FALSE(fs::exists(test::scratch("never.db")));
}

}  // namespace
}  // namespace reprise
