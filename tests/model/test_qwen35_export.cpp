// GGUF export of a Qwen3.5 hybrid along a layer path: every copied block keeps its source layer's
// kind (Gated DeltaNet or full attention, written as per-block attention.recurrent_layers), so the
// export run plainly equals the source run along the path bit for bit. (llama.cpp 0c1e570 on the
// repeat export gives exactly the logits of tests/data/golden/qwen35-tiny-f32-path-repeat.json.)
// Other formats are refused.
#include <gtest/gtest.h>

#include <cstring>

#include "export/export.h"
#include "support/export_check.h"
#include "support/logits.h"
#include "support/temp_dir_test.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise::exporter {
namespace {

class Qwen35Export : public test::TempDirTest {
 protected:
  std::unique_ptr<Model> load() {
    return Model::load(test::source_dir() / "tests/data/fixtures/qwen35-tiny-f32.gguf");
  }
};

TEST_F(Qwen35Export, PathCopiesKeepTheirLayerKinds) {
  auto m = load();
  const std::vector<int32_t> prompt = {300, 301, 220, 75, 483, 83, 546, 220, 420, 709, 220, 77};
  for (const LayerPath& path :
       {LayerPath{{0, 1, 2, 1, 2, 3, 4, 5}}, LayerPath{{0, 1, 3, 5}}, LayerPath{{5, 4, 4, 0}}}) {
    SCOPED_TRACE(path.canonical());
    auto e = test::expect_export_runs_path(*m, path, dir_ / "export.gguf", prompt);
    ASSERT_EQ(e->hparams().n_layer, path.size());
    for (int p = 0; p < path.size(); ++p)
      EXPECT_EQ(e->hparams().is_recurrent(p), m->hparams().is_recurrent(path.layers[p]))
          << "block " << p;
  }
}

TEST_F(Qwen35Export, OtherFormatsAreRefused) {
  auto m = load();
  ExportOptions o;
  o.format = Format::Hf;
  try {
    export_model(*m, LayerPath{{0, 1, 1, 2}}, dir_ / "hf", o);
    FAIL() << "exported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("only --format gguf can export a qwen35 model"),
              std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(files().empty());
}

}  // namespace
}  // namespace reprise::exporter
