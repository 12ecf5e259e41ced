// GGUF export of a Gemma model along a layer path: every copied block keeps its source layer's
// kind (sliding window or global, and with it the rope base), so the export run plainly equals the
// source run along the path bit for bit. (llama.cpp 0c1e570 on these exports gives exactly the
// logits of the path goldens in tests/data/golden, which ran copies made by
// tests/data/golden/make_synth_goldens.py.) Other formats are refused.
#include <gtest/gtest.h>

#include <cstring>

#include "export/export.h"
#include "support/logits.h"
#include "support/temp_dir_test.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise::exporter {
namespace {

class GemmaExport : public test::TempDirTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(GemmaExport, PathCopiesKeepTheirLayerKinds) {
  auto m = Model::load(test::source_dir() / "tests/data/fixtures" /
                       (std::string(GetParam()) + "-tiny-f32.gguf"));
  const std::vector<int32_t> prompt = {300, 301, 220, 75, 483, 83, 546, 220, 420, 709, 220, 77};
  for (const LayerPath& path :
       {LayerPath{{0, 1, 2, 1, 2, 3}}, LayerPath{{0, 1, 3}}, LayerPath{{3, 2, 2, 0}}}) {
    SCOPED_TRACE(path.canonical());
    const auto out = dir_ / "export.gguf";
    ExportOptions o;
    o.force = true;
    export_model(*m, path, out, o);
    auto e = Model::load(out);
    ASSERT_EQ(e->hparams().n_layer, path.size());
    for (int p = 0; p < path.size(); ++p) {
      const LayerAttn want = m->hparams().layer_attn(path.layers[p]);
      const LayerAttn got = e->hparams().layer_attn(p);
      EXPECT_EQ(got.window, want.window) << "block " << p;
      EXPECT_EQ(got.rope_theta, want.rope_theta) << "block " << p;
    }
    const auto a = test::prompt_logits(*m, path, prompt);
    const auto b = test::prompt_logits(*e, LayerPath::identity(path.size()), prompt);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
  }
}

TEST_P(GemmaExport, OtherFormatsAreRefused) {
  auto m = Model::load(test::source_dir() / "tests/data/fixtures" /
                       (std::string(GetParam()) + "-tiny-f32.gguf"));
  ExportOptions o;
  o.format = Format::Hf;
  try {
    export_model(*m, LayerPath{{0, 1, 1, 2, 3}}, dir_ / "hf", o);
    FAIL() << "exported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("only --format gguf"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(files().empty());
}

// Mistral: every block slides, and the export, a llama file with the source's window, too.
INSTANTIATE_TEST_SUITE_P(Fixtures, GemmaExport, ::testing::Values("gemma3", "gemma2", "mistral"));

}  // namespace
}  // namespace reprise::exporter
