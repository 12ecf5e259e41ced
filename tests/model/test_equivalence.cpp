// The same weights loaded from GGUF and from a Hugging Face directory give the same logits.
#include <gtest/gtest.h>

#include "engine/session.h"
#include "model/golden.h"
#include "support/test_support.h"

namespace reprise {
namespace {

std::vector<float> all_logits(const std::filesystem::path& model, const std::vector<int32_t>& ids,
                              const std::string& path_spec = "") {
  auto m = Model::load(model);
  SessionOptions so;
  so.n_threads = 2;
  so.n_ctx = 64;
  Session s(*m, parse_layer_path(path_spec, m->hparams().n_layer), so);
  auto l = s.prefill(ids, true);
  return {l.begin(), l.end()};
}

const std::vector<int32_t> kPrompt = {1, 403, 407, 261, 378, 270, 293, 263, 414, 259, 264, 280};

TEST(Equivalence, Stories260KFromSafetensorsEqualsGguf) {
  auto gguf = all_logits(test::default_model(), kPrompt, "repeat:1:3");
  auto hf = all_logits(test::source_dir() / "tests/data/hf/stories260K-f32", kPrompt, "repeat:1:3");
  EXPECT_LE(test::max_abs_diff(gguf, hf), 1e-4f);
}

TEST(Equivalence, LlamaTinyFromSafetensorsEqualsGguf) {
  if (!test::have_shared()) GTEST_SKIP() << "shared fixtures not available";
  auto dir = test::shared_dir() / "fixtures";
  auto gguf = all_logits(dir / "llama-tiny-f32.gguf", kPrompt);
  auto hf = all_logits(dir / "hf/llama-tiny-f32", kPrompt);
  EXPECT_LE(test::max_abs_diff(gguf, hf), 1e-4f);
}

TEST(Equivalence, Bf16SafetensorsMatchesBf16Golden) {
  auto g = test::load_golden("llama-tiny-bf16");
  if (!g || !test::have_shared()) GTEST_SKIP() << "shared fixtures not available";
  auto hf = all_logits(test::shared_dir() / "fixtures/hf/llama-tiny-bf16", g->prompt_tokens);
  const size_t V = g->main.logits_all[0].size();
  for (size_t r = 0; r < g->prompt_tokens.size(); ++r) {
    std::vector<float> row(hf.begin() + r * V, hf.begin() + (r + 1) * V);
    // HF BF16 rounds the norm gains too (the GGUF keeps them F32): BF16 tolerance.
    EXPECT_LE(test::max_abs_diff(row, g->main.logits_all[r]), 0.1f) << "position " << r;
  }
}

}  // namespace
}  // namespace reprise
