// SmolLM3 (`smollm3`): Llama blocks, every fourth one without rope, a flag that belongs to the
// physical layer. Logits against llama.cpp: tests/model/test_golden.cpp (fixture smollm3-tiny).
#include <gtest/gtest.h>

#include <cmath>

#include "engine/session.h"
#include "export/export.h"
#include "kernels/ops.h"
#include "model/model.h"
#include "support/logits.h"
#include "support/synth_dir_test.h"
#include "support/test_support.h"
#include "synth/synth.h"
#include "util/error.h"

namespace reprise {
namespace {

class SmolLM3 : public test::SynthDirTest {
 protected:
  static synth::SynthShape tiny() { return *synth::find_shape("smollm3-tiny"); }

  // Max |difference| of the last position's logits between two prompts along `path`.
  static float last_diff(const Model& m, const LayerPath& path, const std::vector<int32_t>& a,
                         const std::vector<int32_t>& b) {
    auto run = [&](const std::vector<int32_t>& t) {
      Session s(m, path, SessionOptions{.n_ctx = 32});
      auto l = s.prefill(t);
      return std::vector<float>(l.begin(), l.end());
    };
    return test::max_abs_diff(run(a), run(b));
  }
};

// llama.cpp 0c1e570 (src/models/smollm3.cpp): no rope on block il where (il + 1) % 4 == 0.
TEST_F(SmolLM3, EveryFourthLayerHasNoRope) {
  auto s = tiny();
  s.n_layer = 8;
  auto m = write_and_load(s);
  const HParams& hp = m->hparams();
  EXPECT_EQ(hp.arch, Arch::SmolLM3);
  EXPECT_EQ(hp.rope_style, RopeStyle::Interleaved);  // the converter permutes Q/K as for llama
  std::vector<bool> rope;
  for (int l = 0; l < hp.n_layer; ++l) {
    rope.push_back(hp.layer_attn(l).rope);
    EXPECT_EQ(hp.layer_attn(l).window, 0);
  }
  EXPECT_EQ(rope, (std::vector<bool>{true, true, true, false, true, true, true, false}));
}

// Without rope, one attention layer cannot tell where the earlier tokens were: swapping two of
// them leaves the last position's output unchanged (up to summation order). Layer 3 run alone
// sits at path position 0, which a rule taken from the path position would rotate. (Repeated
// visits are checked by the smollm3-tiny path goldens.)
TEST_F(SmolLM3, TheNoRopeLayerKeepsItsKindAtAnyPathPosition) {
  auto m = write_and_load(tiny());
  const std::vector<int32_t> a = {5, 6, 7, 8, 9, 10}, b = {7, 6, 5, 8, 9, 10};
  EXPECT_LT(last_diff(*m, LayerPath{{3}}, a, b), 1e-5f);
  EXPECT_GT(last_diff(*m, LayerPath{{0}}, a, b), 1e-3f);
  EXPECT_GT(last_diff(*m, LayerPath{{2}}, a, b), 1e-3f);
}

// A smollm3 file fixes the no-rope blocks by index, so an export may only put each layer on a
// block of its kind: repeating all four layers is fine, skipping layer 2 is not.
TEST_F(SmolLM3, ExportKeepsOnlyPathsWhoseBlocksKeepTheirKind) {
  auto m = write_and_load(tiny());
  exporter::ExportOptions o;
  o.force = true;
  const LayerPath ok{{0, 1, 2, 3, 0, 1, 2, 3}};
  exporter::export_model(*m, ok, dir_ / "ok.gguf", o);
  auto e = Model::load(dir_ / "ok.gguf");
  const std::vector<int32_t> prompt = {300, 301, 220, 75, 483, 83, 546};
  EXPECT_EQ(test::max_abs_diff(test::prompt_logits(*m, ok, prompt),
                               test::prompt_logits(*e, LayerPath::identity(8), prompt)),
            0.0f);
  try {
    exporter::export_model(*m, LayerPath{{0, 1, 3}}, dir_ / "bad.gguf", o);
    FAIL() << "exported";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what())
                  .find("puts smollm3 layer 3 (without rope) at block 2, which "
                        "a smollm3 file runs with rope"),
              std::string::npos)
        << err.what();
  }
}

TEST_F(SmolLM3, InfoListsTheLayersWithoutRope) {
  const auto path = write(tiny());
  auto r = test::run_cli("info -m '" + path.string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("  0..2         global, rope base 10000\n  3            global, no rope\n"),
            std::string::npos)
      << r.out;
}

// HuggingFaceTB/SmolLM3-3B's config.json.
TEST(SmolLM3Shapes, KnowsSmolLM3_3b) {
  auto s = synth::find_shape("smollm3-3b");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->arch, "smollm3");
  EXPECT_EQ(s->n_embd, 2048);
  EXPECT_EQ(s->n_layer, 36);
  EXPECT_EQ(s->n_head, 16);
  EXPECT_EQ(s->n_head_kv, 4);
  EXPECT_EQ(s->n_ff, 11008);
  EXPECT_EQ(s->n_vocab, 128256);
  EXPECT_EQ(s->rope_theta, 5e6f);
  EXPECT_TRUE(s->tied);
}

}  // namespace
}  // namespace reprise
