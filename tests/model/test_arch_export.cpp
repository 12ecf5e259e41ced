// GGUF export along a layer path of the newer architectures (Gemma 2/3, Qwen3-MoE, Mixtral-style
// MoE, Phi-3), on the synth fixtures of tests/data/fixtures:
//  - every copied block keeps what belongs to its physical layer (Gemma's sliding window and rope
//    base, a MoE block's router and experts, Phi-3's fused QKV and gate-up matrices), so the
//    export run plainly equals the source run along the path bit for bit;
//  - the export's plain logits equal llama.cpp's logits of the same export, the path goldens
//    tests/data/golden/ARCH-tiny-f32-path-{repeat,skip}.json. Those were made by
//    make_synth_goldens.py, which checks that llama.cpp 0c1e570 gives identical logits on
//    `reprise export`'s file and on its own physical copy, so a broken export fails here
//    without llama.cpp;
//  - Hugging Face and mergekit exports that cannot be right are refused with one line.
#include <gtest/gtest.h>

#include <cstring>

#include "export/export.h"
#include "format/gguf.h"
#include "model/golden.h"
#include "support/export_check.h"
#include "support/logits.h"
#include "support/temp_dir_test.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise::exporter {
namespace {

class ArchExport : public test::TempDirTest, public ::testing::WithParamInterface<const char*> {
 protected:
  std::unique_ptr<Model> fixture() const {
    return Model::load(test::source_dir() / "tests/data/fixtures" /
                       (std::string(GetParam()) + "-tiny-f32.gguf"));
  }
  // The message export_model throws for `o`, or "" when it succeeds.
  std::string refusal(const ExportOptions& o, const std::string& out) {
    auto m = fixture();
    try {
      export_model(*m, LayerPath{{0, 1, 1, 2, 3}}, dir_ / out, o);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
};

// Files whose layers carry a kind (a window, a rope base) that only a GGUF export keeps.
bool has_layer_kinds(const std::string& arch) {
  return arch.starts_with("gemma") || arch == "mistral";
}

TEST_P(ArchExport, PathCopiesKeepTheirLayers) {
  auto m = fixture();
  const std::vector<int32_t> prompt = {300, 301, 220, 75, 483, 83, 546, 220, 420, 709, 220, 77};
  for (const LayerPath& path :
       {LayerPath{{0, 1, 2, 1, 2, 3}}, LayerPath{{0, 1, 3}}, LayerPath{{3, 2, 2, 0}}}) {
    SCOPED_TRACE(path.canonical());
    auto e = test::expect_export_runs_path(*m, path, dir_ / "export.gguf", prompt);
    ASSERT_EQ(e->hparams().n_layer, path.size());
    EXPECT_EQ(e->hparams().n_expert, m->hparams().n_expert);
    for (int p = 0; p < path.size(); ++p) {
      const LayerAttn want = m->hparams().layer_attn(path.layers[p]);
      const LayerAttn got = e->hparams().layer_attn(p);
      EXPECT_EQ(got.window, want.window) << "block " << p;
      EXPECT_EQ(got.rope_theta, want.rope_theta) << "block " << p;
      EXPECT_EQ(e->weights().blocks[p].experts.size(),
                m->weights().blocks[path.layers[p]].experts.size());
    }
  }
}

TEST_P(ArchExport, ExportMatchesLlamaCppOnTheExport) {
  auto m = fixture();
  // F32 compute against llama.cpp's F32 run; Gemma's GeGLU differs by up to 2.2e-3 (llama.cpp
  // looks GELU up in an F16 table, see test_golden.cpp).
  const float tol = std::string(GetParam()).starts_with("gemma") ? 4e-3f : 1e-3f;
  for (const char* kind : {"repeat", "skip"}) {
    const std::string name = std::string(GetParam()) + "-tiny-f32-path-" + kind;
    SCOPED_TRACE(name);
    auto g = test::load_golden(name);
    ASSERT_TRUE(g && g->layer_path) << "golden " << name << " missing";
    const LayerPath path{*g->layer_path};
    const auto out = dir_ / (name + ".gguf");
    export_model(*m, path, out, ExportOptions{});
    auto e = Model::load(out);
    ASSERT_EQ(e->hparams().n_layer, path.size());
    // At the golden's context: phi4's long-rope factors are chosen by it.
    const auto got =
        test::prompt_logits(*e, LayerPath::identity(path.size()), g->prompt_tokens, g->n_ctx);
    const size_t V = static_cast<size_t>(e->hparams().n_vocab);
    ASSERT_EQ(got.size(), g->main.logits_all.size() * V);
    for (size_t r = 0; r < g->main.logits_all.size(); ++r) {
      const std::vector<float> row(got.begin() + static_cast<ptrdiff_t>(r * V),
                                   got.begin() + static_cast<ptrdiff_t>((r + 1) * V));
      EXPECT_LE(test::max_abs_diff(row, g->main.logits_all[r]), tol) << "position " << r;
    }
  }
}

// A damped MoE position scales every expert's down projection: the plain export computes the
// damped path up to one float rounding of each scaled weight.
TEST_P(ArchExport, DampedPathScalesTheResidualProjections) {
  auto m = fixture();
  LayerPath path = LayerPath::repeat(m->hparams().n_layer, 1, 3, 2, 0.5f);
  const std::vector<int32_t> prompt = {300, 301, 220, 75, 483, 83, 546, 220};
  export_model(*m, path, dir_ / "damped.gguf", ExportOptions{});
  auto e = Model::load(dir_ / "damped.gguf");
  const auto a = test::prompt_logits(*m, path, prompt);
  const auto b = test::prompt_logits(*e, LayerPath::identity(path.size()), prompt);
  EXPECT_LE(test::max_abs_diff(a, b), 1e-4f);
  // Undamped, the same export differs clearly: the scaling is what makes them equal.
  const auto plain = test::prompt_logits(*m, LayerPath{path.layers}, prompt);
  EXPECT_GT(test::max_abs_diff(plain, b), 1e-2f);
}

TEST_P(ArchExport, HfIsRefusedInOneLine) {
  ExportOptions o;
  o.format = Format::Hf;
  const std::string msg = refusal(o, "hf");
  const std::string arch = GetParam();
  if (has_layer_kinds(arch)) {
    // Refused before the format is looked at: the layer kinds must follow the path.
    const std::string file_arch = arch == "mistral" ? "llama" : arch;  // Mistral files are llama
    EXPECT_NE(msg.find("only --format gguf can export a " + file_arch + " model"),
              std::string::npos)
        << msg;
  } else {
    const std::string label = arch == "mixtral" ? "llama mixture-of-experts (Mixtral-style)"
                              : arch == "phi4"  ? "phi3"  // Phi-4-mini files are phi3
                                                : arch;
    EXPECT_EQ(msg, "export: --format hf cannot write a " + label +
                       " model yet (reprise writes Hugging Face checkpoints of dense llama, qwen2 "
                       "and qwen3 models); use --format gguf");
  }
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  EXPECT_TRUE(files().empty());
}

TEST_P(ArchExport, MergekitNeedsTheHfCheckpointNamed) {
  const std::string arch = GetParam();
  ExportOptions o;
  o.format = Format::Mergekit;
  const std::string msg = refusal(o, "r.yaml");
  if (has_layer_kinds(arch)) {
    EXPECT_NE(msg.find("only --format gguf"), std::string::npos) << msg;
    return;
  }
  EXPECT_NE(msg.find("export: --format mergekit of a GGUF "), std::string::npos) << msg;
  EXPECT_NE(msg.find("needs --mergekit-model"), std::string::npos) << msg;
  EXPECT_TRUE(files().empty());
  // Naming the checkpoint gives the recipe: a passthrough of layer ranges knows no architecture.
  o.model_ref = "org/" + arch + "-hf";
  EXPECT_EQ(refusal(o, "r.yaml"), "");
  EXPECT_EQ(files(), std::vector<std::string>{"r.yaml"});
}

// Phi-4-mini-like files: the rope factors and their keys belong to the model, not to a layer, so
// an export of any path carries them as the source has them, and runs the path at a context of
// either kind (the short factors at 64, the long ones at 512).
class ArchExportLongRope : public test::TempDirTest {};

TEST_F(ArchExportLongRope, TheExportCarriesTheFactorsAndTheirKeys) {
  auto m = Model::load(test::source_dir() / "tests/data/fixtures/phi4-tiny-f32.gguf");
  const LayerPath path{{0, 1, 2, 1, 2, 3}};
  export_model(*m, path, dir_ / "e.gguf", ExportOptions{});
  auto e = Model::load(dir_ / "e.gguf");
  const HParams &a = m->hparams(), &b = e->hparams();
  EXPECT_EQ(b.rotary_dims(), a.rotary_dims());
  EXPECT_EQ(b.rope_long_factors, a.rope_long_factors);
  EXPECT_EQ(b.rope_short_factors, a.rope_short_factors);
  EXPECT_EQ(b.long_rope_orig_ctx(), a.long_rope_orig_ctx());
  EXPECT_EQ(b.rope_attn_factor, a.rope_attn_factor);
  EXPECT_EQ(e->gguf()->get_int("phi3.rope.scaling.original_context_length").value_or(-1), 256);
  const std::vector<int32_t> prompt = {300, 301, 220, 75, 483, 83, 546, 220};
  for (int n_ctx : {64, 512}) {
    const auto x = test::prompt_logits(*m, path, prompt, n_ctx);
    const auto y = test::prompt_logits(*e, LayerPath::identity(path.size()), prompt, n_ctx);
    ASSERT_EQ(x.size(), y.size());
    EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)), 0) << n_ctx;
  }
}

// Mistral: every block slides, and the export, a llama file with the source's window, too.
// phi4: a phi3 file with partial rotary and long-rope factors, which the export must carry.
INSTANTIATE_TEST_SUITE_P(Fixtures, ArchExport,
                         ::testing::Values("gemma3", "gemma2", "qwen3moe", "mixtral", "phi3",
                                           "phi4", "mistral"));

}  // namespace
}  // namespace reprise::exporter
