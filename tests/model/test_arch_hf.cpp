// Hugging Face checkpoints of the newer architectures (Gemma 2/3, Qwen3-MoE, Mixtral, Phi-3, and
// Phi-4-mini's partial rotary and long-rope config: rope_scaling longrope with long_factor,
// short_factor, original_max_position_embeddings, partial_rotary_factor):
// tests/data/hf/ARCH-tiny-f32 holds the weights of tests/data/fixtures/ARCH-tiny-f32.gguf as
// transformers names and stores them (written by tests/data/hf/make_arch_hf.py with numpy:
// per-expert matrices, fused Phi-3 matrices, Gemma norms as w with (1 + w) applied at run time,
// Mixtral's Q/K rows in rotate-half order). Loaded, they must compute what the GGUF computes:
// bit for bit, except Mixtral, whose attention sums run over the head dimensions in another
// order (as for Llama between GGUF and HF), along the plain path and along repeat paths (where
// a Gemma layer's kind must follow it).
#include <gtest/gtest.h>

#include <cstring>

#include "export/export.h"
#include "support/logits.h"
#include "support/temp_dir_test.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise {
namespace {

class ArchHf : public test::TempDirTest, public ::testing::WithParamInterface<const char*> {
 protected:
  std::unique_ptr<Model> gguf() const {
    return Model::load(test::source_dir() / "tests/data/fixtures" /
                       (std::string(GetParam()) + "-tiny-f32.gguf"));
  }
  std::unique_ptr<Model> hf() const {
    return Model::load(test::source_dir() / "tests/data/hf" /
                       (std::string(GetParam()) + "-tiny-f32"));
  }
};

TEST_P(ArchHf, LogitsEqualTheGguf) {
  auto g = gguf();
  auto h = hf();
  const HParams &a = g->hparams(), &b = h->hparams();
  EXPECT_EQ(b.arch, a.arch);
  EXPECT_EQ(b.arch_name, a.arch_name);
  EXPECT_EQ(b.n_expert, a.n_expert);
  EXPECT_EQ(b.n_expert_used, a.n_expert_used);
  EXPECT_EQ(b.n_ff_exp, a.n_ff_exp);
  auto tied = [](const Model& m) {
    return m.weights().output.data.data() == m.weights().token_embd.data.data();
  };
  EXPECT_EQ(tied(*h), tied(*g));
  EXPECT_EQ(b.attn_softcap, a.attn_softcap);
  EXPECT_EQ(b.final_softcap, a.final_softcap);
  EXPECT_EQ(b.score_scale(), a.score_scale());
  EXPECT_EQ(b.rms_eps, a.rms_eps);
  EXPECT_EQ(b.rotary_dims(), a.rotary_dims());
  EXPECT_EQ(b.rope_long_factors, a.rope_long_factors);
  EXPECT_EQ(b.rope_short_factors, a.rope_short_factors);
  EXPECT_EQ(b.long_rope_orig_ctx(), a.long_rope_orig_ctx());
  EXPECT_EQ(b.rope_attn_factor, a.rope_attn_factor);
  for (int l = 0; l < a.n_layer; ++l) {
    EXPECT_EQ(b.layer_attn(l).window, a.layer_attn(l).window) << "layer " << l;
    EXPECT_EQ(b.layer_attn(l).rope_theta, a.layer_attn(l).rope_theta) << "layer " << l;
  }
  const bool exact = std::string(GetParam()) != "mixtral";
  const std::vector<int32_t> prompt = {300, 301, 220, 75, 483, 83, 546, 220, 420, 709, 220, 77};
  // phi4 (long rope, original context 256): context 64 runs the short factors, 512 the long.
  for (const auto& [path, n_ctx] :
       {std::pair{LayerPath::identity(a.n_layer), 64},
        std::pair{LayerPath::identity(a.n_layer), 512},
        std::pair{LayerPath{{0, 1, 2, 1, 2, 3}}, 64}, std::pair{LayerPath{{3, 2, 2, 0}}, 512}}) {
    SCOPED_TRACE(path.canonical() + " at context " + std::to_string(n_ctx));
    const auto x = test::prompt_logits(*g, path, prompt, n_ctx);
    const auto y = test::prompt_logits(*h, path, prompt, n_ctx);
    ASSERT_EQ(x.size(), y.size());
    if (exact)
      EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)), 0)
          << "max |d| " << test::max_abs_diff(x, y);
    else
      EXPECT_LE(test::max_abs_diff(x, y), 1e-4f);
  }
}

// The export plan knows the HF names of the dense llama family only: GGUF and HF exports of
// these checkpoints are refused (a recipe or layer map, which names layers only, is written
// unless the layers differ in kind).
TEST_P(ArchHf, ExportOfTheCheckpointIsRefusedOrNamesLayersOnly) {
  auto h = hf();
  const std::string arch = GetParam();
  const std::string label = arch == "mixtral" ? "llama mixture-of-experts (Mixtral-style)"
                            : arch == "phi4" ? "phi3"  // Phi-4-mini checkpoints are Phi3ForCausalLM
                                             : arch;
  const bool gemma = arch.starts_with("gemma");
  for (auto [format, name] :
       {std::pair{exporter::Format::Gguf, "gguf"}, std::pair{exporter::Format::Hf, "hf"},
        std::pair{exporter::Format::Mergekit, "mergekit"}}) {
    SCOPED_TRACE(name);
    exporter::ExportOptions o;
    o.format = format;
    std::string msg;
    try {
      exporter::export_model(*h, LayerPath{{0, 1, 1, 2, 3}}, dir_ / "out", o);
    } catch (const Error& e) {
      msg = e.what();
    }
    if (format == exporter::Format::Mergekit && !gemma) {
      EXPECT_EQ(msg, "");
      EXPECT_EQ(files(), std::vector<std::string>{"out"});
    } else {
      EXPECT_EQ(msg, "export: a Hugging Face " + label +
                         " checkpoint cannot be exported as --format " + name + " yet" +
                         (gemma ? "" : " (mergekit and exl3 can)") +
                         "; convert it to GGUF first (llama.cpp's convert_hf_to_gguf.py)");
      EXPECT_TRUE(files().empty());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ArchHf,
                         ::testing::Values("gemma3", "gemma2", "qwen3moe", "mixtral", "phi3",
                                           "phi4"));

}  // namespace
}  // namespace reprise
