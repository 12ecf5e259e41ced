// Phi-3 files: the fused attn_qkv and gate-up ffn_up split into row views, the window llama.cpp
// ignores, partial rotary and long-rope scaling (Phi-4-mini, Phi-3-128k), and what is refused.
// Logits against llama.cpp: tests/model/test_golden.cpp (phi3-tiny, phi4-tiny).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "engine/prefix_cache.h"
#include "engine/session.h"
#include "format/gguf.h"
#include "format/gguf_writer.h"
#include "model/model.h"
#include "support/synth_dir_test.h"
#include "synth/synth.h"
#include "util/error.h"

namespace reprise {
namespace {

class Phi3 : public test::SynthDirTest {
 protected:
  static synth::SynthShape tiny() { return *synth::find_shape("phi3-tiny"); }
};

// phi3-tiny: d 64, 4 query heads and 2 KV heads of 16, FFN 128, F32.
TEST_F(Phi3, FusedMatricesAreSplitIntoRowViews) {
  auto m = Model::load(write(tiny()));
  const HParams& hp = m->hparams();
  EXPECT_EQ(hp.arch, Arch::Phi3);
  EXPECT_EQ(hp.rope_style, RopeStyle::Neox);
  const TensorView* qkv = m->gguf()->tensor("blk.1.attn_qkv.weight");
  const TensorView* up = m->gguf()->tensor("blk.1.ffn_up.weight");
  ASSERT_TRUE(qkv && up);
  EXPECT_EQ(qkv->shape, (std::vector<int64_t>{64 + 2 * 32, 64}));
  EXPECT_EQ(up->shape, (std::vector<int64_t>{2 * 128, 64}));
  const BlockWeights& b = m->weights().blocks[1];
  const size_t row = 64 * sizeof(float);
  EXPECT_EQ(b.wq.data.data(), qkv->data.data());
  EXPECT_EQ(b.wk.data.data(), qkv->data.data() + 64 * row);
  EXPECT_EQ(b.wv.data.data(), qkv->data.data() + 96 * row);
  EXPECT_EQ(b.wv.shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(b.w_gate.data.data(), up->data.data());  // the gate rows come first
  EXPECT_EQ(b.w_up.data.data(), up->data.data() + 128 * row);
  EXPECT_EQ(b.w_up.data.size(), 128 * row);
}

// llama.cpp 0c1e570 disables Phi-3's sliding window ("Phi SWA is currently disabled").
TEST_F(Phi3, TheFilesWindowIsIgnoredAsLlamaCppDoes) {
  auto m = Model::load(write(tiny()));  // attention.sliding_window = 4
  EXPECT_TRUE(m->hparams().layers.empty());
  EXPECT_EQ(m->hparams().layer_attn(3).window, 0);
}

// phi4-tiny (Phi-4-mini's layout at fixture size): rope on 12 of 16 head dimensions, long-rope
// factors for contexts beyond 256, extended to 8192 positions. Logits against llama.cpp at both
// contexts: tests/model/test_golden.cpp (phi4-tiny, phi4-tiny-*-short).
TEST_F(Phi3, LongRopeFilesLoadWithBothFactorSetsAndTheirKeys) {
  auto m = Model::load(write(*synth::find_shape("phi4-tiny")));
  const HParams& hp = m->hparams();
  EXPECT_EQ(hp.arch, Arch::Phi3);
  EXPECT_EQ(hp.rotary_dims(), 12);
  EXPECT_EQ(hp.rope_long_factors.size(), 6u);
  EXPECT_EQ(hp.rope_short_factors.size(), 6u);
  EXPECT_NE(hp.rope_long_factors, hp.rope_short_factors);
  EXPECT_EQ(hp.long_rope_orig_ctx(), 256);
  EXPECT_EQ(hp.n_ctx_train, 8192);
  // The converter's sqrt(1 + ln(8192 / 256) / ln(256)), stored as F32.
  EXPECT_FLOAT_EQ(hp.rope_attn_factor, 1.2747549f);
  EXPECT_TRUE(hp.rope_freq_factors.empty());
}

// llama.cpp 0c1e570 (llama_model::get_rope_factors): rope_freqs when the file has it, else the
// long factors for a context beyond the original one, else the short ones; the attention factor
// applies either way.
TEST_F(Phi3, TheContextChoosesLongOrShortFactors) {
  auto m = Model::load(write(*synth::find_shape("phi4-tiny")));
  const HParams& hp = m->hparams();
  for (int n_ctx : {1, 64, 256}) {
    const RopeScaling r = hp.rope_scaling(n_ctx);
    EXPECT_EQ(r.kind, RopeScaling::Kind::LongRopeShort) << n_ctx;
    EXPECT_EQ(r.factors.data(), hp.rope_short_factors.data()) << n_ctx;
    EXPECT_EQ(r.attn_factor, hp.rope_attn_factor);
  }
  for (int n_ctx : {257, 512, 131072}) {
    const RopeScaling r = hp.rope_scaling(n_ctx);
    EXPECT_EQ(r.kind, RopeScaling::Kind::LongRopeLong) << n_ctx;
    EXPECT_EQ(r.factors.data(), hp.rope_long_factors.data()) << n_ctx;
    EXPECT_EQ(r.attn_factor, hp.rope_attn_factor);
  }
  HParams l3 = hp;
  l3.rope_freq_factors.assign(6, 2.0f);
  EXPECT_EQ(l3.rope_scaling(512).kind, RopeScaling::Kind::Llama3);
  EXPECT_EQ(l3.rope_scaling(512).factors.data(), l3.rope_freq_factors.data());
  // Without the original-context key, the training context is the original one.
  HParams no_key = hp;
  no_key.rope_orig_ctx = 0;
  EXPECT_EQ(no_key.rope_scaling(8192).kind, RopeScaling::Kind::LongRopeShort);
  EXPECT_EQ(no_key.rope_scaling(8193).kind, RopeScaling::Kind::LongRopeLong);
}

// A session chooses once, by its context: every context up to the original computes the same
// logits (the short factors), and one beyond it other ones.
TEST_F(Phi3, ASessionRunsTheFactorsOfItsContext) {
  auto m = Model::load(write(*synth::find_shape("phi4-tiny")));
  const std::vector<int32_t> prompt = {300, 301, 220, 75, 483, 83, 546, 220, 420, 709, 220, 77};
  auto logits = [&](int n_ctx) {
    SessionOptions so;
    so.n_threads = 2;
    so.n_ctx = n_ctx;
    Session s(*m, LayerPath::identity(4), so);
    EXPECT_EQ(s.rope_scaling().kind,
              n_ctx > 256 ? RopeScaling::Kind::LongRopeLong : RopeScaling::Kind::LongRopeShort);
    auto l = s.prefill(prompt, /*all_logits=*/true);
    return std::vector<float>(l.begin(), l.end());
  };
  const auto short64 = logits(64), short256 = logits(256), long257 = logits(257);
  EXPECT_EQ(short64, short256);
  float diff = 0;
  for (size_t i = 0; i < short256.size(); ++i)
    diff = std::max(diff, std::fabs(short256[i] - long257[i]));
  EXPECT_GT(diff, 0.05f);
}

// A prefix cache whose baseline ran at another context rotated with the other factors: a session
// does not take its residuals (and computes what it computes without the cache).
TEST_F(Phi3, APrefixCacheOfAnotherContextIsNotUsed) {
  auto m = Model::load(write(*synth::find_shape("phi4-tiny")));
  const std::vector<int32_t> prompt = {300, 301, 220, 75, 483, 83, 546, 220};
  const LayerPath path{{0, 1, 2, 1, 2, 3}};
  SessionOptions so;
  so.n_threads = 2;
  so.n_ctx = 512;
  Session plain(*m, path, so);
  const auto want = plain.prefill(prompt, /*all_logits=*/true);
  const std::vector<float> expected(want.begin(), want.end());
  for (int cache_ctx : {64, 512}) {
    SessionOptions co = so;
    co.n_ctx = cache_ctx;
    PrefixCache cache(*m, LayerPath::identity(4), co);
    Session s(*m, path, so);
    s.set_prefix_cache(&cache);
    const auto got = s.prefill(prompt, /*all_logits=*/true);
    EXPECT_EQ(std::vector<float>(got.begin(), got.end()), expected) << cache_ctx;
    // The cache at the session's own context serves it; the other one is left alone.
    EXPECT_EQ(cache.baseline_evals() > 0, cache_ctx == 512) << cache_ctx;
  }
}

// A factor tensor of the wrong length, or a factor that is not a positive number, is named.
TEST_F(Phi3, BadLongRopeFactorsAreRefusedNamingTheTensor) {
  auto src = GgufFile::open(write(*synth::find_shape("phi4-tiny")));
  auto rewrite = [&](int n, float value) {
    GgufWriter w;
    w.copy_metadata(*src);
    for (const TensorView& t : src->tensors())
      if (t.name != "rope_factors_long.weight") w.add_tensor(t.name, t.type, t.shape, t.data);
    std::vector<float> f(static_cast<size_t>(n), 1.0f);
    f.back() = value;
    std::vector<std::byte> bytes(f.size() * sizeof(float));
    std::memcpy(bytes.data(), f.data(), bytes.size());
    w.add_tensor("rope_factors_long.weight", TensorType::F32, {n}, std::move(bytes));
    w.write(dir_ / "bad.gguf", true);
    return load_error(dir_ / "bad.gguf");
  };
  const std::string file = (dir_ / "bad.gguf").string();
  EXPECT_EQ(rewrite(8, 1.0f),
            file + ": tensor rope_factors_long.weight has shape [8], expected [6]");
  EXPECT_EQ(rewrite(6, -1.0f), file +
                                   ": tensor rope_factors_long.weight[5] is -1, expected a "
                                   "positive factor");
  EXPECT_EQ(load_error(with_key(*synth::find_shape("phi4-tiny"), "phi3.rope.scaling.attn_factor",
                                GgufValue::of_f32(0.0f))),
            (dir_ / "edited.gguf").string() +
                ": metadata phi3.rope.scaling.attn_factor is 0, expected a positive number");
}

// Phi-4-mini rotates 96 of 128 head dimensions; a count that is odd or larger than the head is
// refused naming the key.
TEST_F(Phi3, PartialRotaryIsReadAndBadCountsAreRefused) {
  auto m = Model::load(with_key(tiny(), "phi3.rope.dimension_count", GgufValue::of_u32(12)));
  EXPECT_EQ(m->hparams().rotary_dims(), 12);
  for (uint32_t bad : {11u, 18u})
    EXPECT_NE(load_error(with_key(tiny(), "phi3.rope.dimension_count", GgufValue::of_u32(bad)))
                  .find(fmt::format("metadata phi3.rope.dimension_count {} does not fit a head of "
                                    "16 in pairs",
                                    bad)),
              std::string::npos)
        << bad;
}

}  // namespace
}  // namespace reprise
