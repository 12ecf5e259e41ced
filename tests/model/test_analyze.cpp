// reprise analyze on the bundled model: the logit lens agrees with the model's own output at the
// last layer, the statistics are in their ranges, and the CLI writes every report format and
// validates against a scan store.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "analyze/diagnostics.h"
#include "analyze/probe.h"
#include "model/model.h"
#include "support/test_support.h"

namespace reprise::analyze {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir() {
  auto p = test::scratch("analyze");
  fs::create_directories(p);
  return p;
}

TEST(AnalyzeModel, StatisticsOnStories260K) {
  auto m = Model::load(test::default_model());
  ProbeOptions po;
  po.tasks = "tinystories";
  po.limit = 3;
  po.max_tokens = 24;
  auto items = probe_items(*m, po);
  ASSERT_EQ(items.size(), 3u);
  for (const auto& it : items) EXPECT_EQ(it.tokens.size(), 24u);  // passages are longer
  EXPECT_EQ(items[0].tokens[0], 1);                               // BOS of the llama2.c vocabulary
  auto d = run_diagnostics(*m, items);
  ASSERT_EQ(d.n_layer, 5);
  EXPECT_EQ(d.n_tokens, 72);
  // The lens after the last layer is the model's own head on the same stream.
  EXPECT_LT(d.layers[4].lens_kl, 1e-5);
  EXPECT_EQ(d.layers[4].lens_top1, 1.0);
  for (const auto& l : d.layers) {
    EXPECT_GT(l.rel_update, 0) << l.layer;
    EXPECT_LE(l.cos_in_out, 1.0 + 1e-9) << l.layer;
    EXPECT_GE(l.lens_top1, 0.0);
    EXPECT_GE(l.skip_kl, 0.0);
  }
}

// Gemma 2 scales its embeddings by sqrt(n_embd) and soft-caps its logits: the lens must use the
// model's own output step (Session::logits_from_residual), or the last layer's lens differs from
// the model's output (it did, with the cap left out).
TEST(AnalyzeModel, LensAtTheLastLayerIsTheOutputOfAGemma2) {
  auto m = Model::load(test::source_dir() / "tests/data/fixtures/gemma2-tiny-f32.gguf");
  ASSERT_GT(m->hparams().final_softcap, 0.0f);
  std::vector<ProbeItem> items(2);
  items[0].tokens = {2, 5, 9, 14, 3, 7, 11, 6};
  items[1].tokens = {2, 8, 1, 12, 4};
  auto d = run_diagnostics(*m, items);
  const auto& last = d.layers[d.n_layer - 1];
  EXPECT_LT(last.lens_kl, 1e-9);
  EXPECT_EQ(last.lens_top1, 1.0);
}

TEST(AnalyzeModel, CliWritesReportsAndValidatesAgainstScan) {
  const auto dir = temp_dir();
  const auto db = dir / "scan.db";
  fs::remove(db);
  const std::string model = "'" + test::default_model().string() + "'";
  auto r = test::run_cli("scan -m " + model +
                         " --task tinystories --limit 4 --mode repeat -t 1 --quiet -o '" +
                         db.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto json = dir / "a.json", png = dir / "a.png", html = dir / "a.html";
  r = test::run_cli("analyze -m " + model + " --task tinystories --limit 4 --max-tokens 32 -t 1 " +
                    "--against '" + db.string() + "' -o '" + json.string() + "' -o '" +
                    png.string() + "' -o '" + html.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Spearman"), std::string::npos) << r.out;
  std::ifstream f(json);
  auto j = nlohmann::json::parse(f);
  EXPECT_EQ(j["layers"].size(), 5u);
  EXPECT_EQ(j["predictions"][0]["method"], "drift");
  EXPECT_EQ(j["predictions"][0]["ranked"].size(), 15u);
  EXPECT_EQ(j["validation"]["methods"][0]["n"], 15);
  EXPECT_TRUE(j["layers"][4]["series"].is_null());
  EXPECT_GT(fs::file_size(png), 1000u);
  std::ifstream h(html);
  std::string text((std::istreambuf_iterator<char>(h)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("<svg"), std::string::npos);

  r = test::run_cli("analyze -m " + model + " --task tinystories --limit 2 --against '" +
                    (dir / "missing.db").string() + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("missing.db"), std::string::npos) << r.err;
  // A scan of another model with the same layer count (the HF copy of stories260K: same
  // weights, other files) is refused by its checksum, not accepted for having 5 layers.
  const std::string other =
      "'" + (test::source_dir() / "tests/data/hf/stories260K-f32").string() + "'";
  r = test::run_cli("analyze -m " + other + " --task tinystories --limit 2 --against '" +
                    db.string() + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("a scan of another model"), std::string::npos) << r.err;
  r = test::run_cli("analyze -m " + model + " --task tinystories --limit 2 -o '" +
                    (dir / "a.txt").string() + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("a.txt"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace reprise::analyze
