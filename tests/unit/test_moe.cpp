// Mixture-of-experts files (qwen3moe, Mixtral-style llama): metadata rules, refusals, what a
// token reads, and that experts belong to their physical layer. The logits themselves are
// checked against llama.cpp in tests/model/test_golden.cpp (fixtures qwen3moe-tiny,
// mixtral-tiny).
#include <gtest/gtest.h>

#include <cmath>

#include "engine/session.h"
#include "eval/bench.h"
#include "format/gguf.h"
#include "format/gguf_writer.h"
#include "model/model.h"
#include "support/synth_dir_test.h"
#include "synth/synth.h"
#include "util/error.h"

namespace reprise {
namespace {

class Moe : public test::SynthDirTest {
 protected:
  static synth::SynthShape tiny(const std::string& name) { return *synth::find_shape(name); }
};

TEST_F(Moe, Qwen3MoeHyperparameters) {
  auto m = write_and_load(tiny("qwen3moe-tiny"));
  const HParams& hp = m->hparams();
  EXPECT_EQ(hp.arch, Arch::Qwen3Moe);
  EXPECT_TRUE(hp.moe());
  EXPECT_EQ(hp.n_expert, 4);
  EXPECT_EQ(hp.n_expert_used, 2);
  EXPECT_EQ(hp.n_ff_exp, 32);  // expert_feed_forward_length, not feed_forward_length (96)
  EXPECT_TRUE(hp.qk_norm);
  EXPECT_EQ(hp.rope_style, RopeStyle::Neox);
  const BlockWeights& b = m->weights().blocks[1];
  ASSERT_TRUE(b.moe());
  EXPECT_EQ(b.experts.size(), 4u);
  EXPECT_EQ(b.router.shape, (std::vector<int64_t>{4, 64}));
  EXPECT_EQ(b.experts[3].w_down.shape, (std::vector<int64_t>{64, 32}));
}

// Mixtral's experts are feed_forward_length wide; llama.cpp has no expert width key for llama.
TEST_F(Moe, MixtralExpertsAreFeedForwardLengthWide) {
  auto s = tiny("mixtral-tiny");
  s.n_ff = s.n_ff_exp = 48;
  auto m = write_and_load(s);
  EXPECT_EQ(m->hparams().arch, Arch::Llama);
  EXPECT_EQ(m->hparams().n_ff_exp, 48);
  EXPECT_EQ(m->hparams().rope_style, RopeStyle::Interleaved);
}

// Expert e of a layer is a view of the e-th slice of the file's 3-D tensor: a path that repeats
// the layer runs the same bytes (nothing is copied).
TEST_F(Moe, ExpertsAreViewsIntoTheFile) {
  auto m = write_and_load(tiny("qwen3moe-tiny"));
  const TensorView* t = m->gguf()->tensor("blk.2.ffn_up_exps.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{4, 32, 64}));
  const ExpertWeights& e = m->weights().blocks[2].experts[3];
  EXPECT_EQ(e.w_up.data.data(), t->data.data() + 3 * 32 * 64 * sizeof(float));
  EXPECT_EQ(e.w_up.data.size(), 32u * 64 * sizeof(float));
}

// Bytes per token, worked out by hand for qwen3moe-tiny (F32, d 64, 4 heads x 16, 2 KV heads,
// 4 experts of width 32, 2 per token): attention 64x64 + 2 x 32x64 + 64x64 floats = 49152 B,
// router 4x64 = 1024 B, one expert 3 x 32x64 = 24576 B.
TEST_F(Moe, ATokenReadsTheRouterAndItsExpertsOnly) {
  auto m = write_and_load(tiny("qwen3moe-tiny"));
  const BlockWeights& b = m->weights().blocks[0];
  EXPECT_EQ(b.token_matrix_bytes(2), 49152u + 1024u + 2u * 24576u);
  EXPECT_EQ(b.matrix_bytes(), 49152u + 1024u + 4u * 24576u);
  EXPECT_DOUBLE_EQ(b.token_matmul_flops(2), 2.0 * (49152 + 1024 + 2 * 24576) / 4);
  const eval::TokenCost c = eval::token_cost(*m, LayerPath{{0, 1, 1}});
  const double head = 1024 * 64 * 4 + 64 * 4 + 64 * 4;  // tied output, one embedding row, norm
  EXPECT_DOUBLE_EQ(c.weight_bytes, head + 3 * (49152 + 1024 + 2 * 24576));
}

// Prefill groups the tokens by expert; decode runs one token's experts. Both give the same
// logits (F32 weights: the GEMM and matrix-vector kernels agree to rounding).
TEST_F(Moe, PrefillEqualsTokenByTokenDecode) {
  auto m = write_and_load(tiny("qwen3moe-tiny"));
  const std::vector<int32_t> toks = {5, 300, 17, 900, 44, 45, 46, 600, 7, 8, 9, 10};
  SessionOptions so;
  so.n_ctx = 32;
  Session a(*m, LayerPath{{0, 1, 2, 2, 3}}, so), b(*m, LayerPath{{0, 1, 2, 2, 3}}, so);
  auto all = a.prefill(toks, /*all_logits=*/true);
  const size_t V = m->hparams().n_vocab;
  for (size_t t = 0; t < toks.size(); ++t) {
    auto l = b.decode(toks[t]);
    float d = 0;
    for (size_t i = 0; i < V; ++i) d = std::max(d, std::fabs(l[i] - all[t * V + i]));
    EXPECT_LT(d, 1e-4f) << "position " << t;
  }
}

TEST_F(Moe, Qwen3MoeWithoutExpertsIsRefusedNamingTheKey) {
  const std::string e =
      load_error(with_key(tiny("qwen3moe-tiny"), "qwen3moe.expert_count", GgufValue::of_u32(0)));
  EXPECT_NE(e.find("metadata qwen3moe.expert_count is 0, expected a positive size"),
            std::string::npos)
      << e;
}

TEST_F(Moe, MoreExpertsUsedThanExistIsRefused) {
  const std::string e = load_error(
      with_key(tiny("qwen3moe-tiny"), "qwen3moe.expert_used_count", GgufValue::of_u32(5)));
  EXPECT_NE(e.find("qwen3moe.expert_used_count 5 exceeds expert_count 4"), std::string::npos) << e;
}

TEST_F(Moe, SharedExpertsAreRefusedNamingTheKey) {
  const std::string e =
      load_error(with_key(tiny("mixtral-tiny"), "llama.expert_shared_count", GgufValue::of_u32(1)));
  EXPECT_NE(e.find("llama.expert_shared_count is 1: shared experts are unsupported"),
            std::string::npos)
      << e;
}

TEST_F(Moe, MissingExpertTensorIsNamed) {
  auto s = tiny("mixtral-tiny");
  auto src = GgufFile::open(write(s));
  GgufWriter w;
  w.copy_metadata(*src);
  for (const TensorView& t : src->tensors())
    if (t.name != "blk.1.ffn_down_exps.weight") w.add_tensor(t.name, t.type, t.shape, t.data);
  w.write(dir_ / "cut.gguf", true);
  EXPECT_NE(load_error(dir_ / "cut.gguf").find("missing tensor blk.1.ffn_down_exps.weight"),
            std::string::npos);
}

}  // namespace
}  // namespace reprise
