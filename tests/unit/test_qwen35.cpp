// Qwen3.5 hybrids (qwen35): metadata rules, which layers are linear attention, the recurrent state
// a path position keeps, and rewinding a sequence whose state cannot be cut back. The logits
// themselves are checked against llama.cpp in tests/model/test_golden.cpp (fixture qwen35-tiny,
// plain and repeat/skip paths).
#include <gtest/gtest.h>

#include <cmath>

#include "engine/session.h"
#include "format/gguf.h"
#include "format/gguf_writer.h"
#include "model/model.h"
#include "support/synth_dir_test.h"
#include "synth/synth.h"
#include "util/error.h"

namespace reprise {
namespace {

class Qwen35 : public test::SynthDirTest {
 protected:
  static synth::SynthShape tiny() { return *synth::find_shape("qwen35-tiny"); }
  // The tiny file with one metadata key set to `value`.
  std::filesystem::path with_key(const std::string& key, const GgufValue& value) {
    return SynthDirTest::with_key(tiny(), key, value);
  }
  static float max_diff(std::span<const float> a, std::span<const float> b) {
    EXPECT_EQ(a.size(), b.size());
    float m = 0;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
    return m;
  }
  static std::vector<float> copy(std::span<const float> s) { return {s.begin(), s.end()}; }
  const std::vector<int32_t> tokens_ = {633, 312, 220, 791, 633, 220, 64, 220, 83, 476};
};

TEST_F(Qwen35, Hyperparameters) {
  auto m = write_and_load(tiny());
  const HParams& hp = m->hparams();
  EXPECT_EQ(hp.arch, Arch::Qwen35);
  // full_attention_interval 3: layers 2 and 5 are full attention.
  EXPECT_EQ(hp.recurrent, (std::vector<bool>{true, true, false, true, true, false}));
  EXPECT_EQ(hp.delta.n_k_heads, 2);
  EXPECT_EQ(hp.delta.n_v_heads, 4);
  EXPECT_EQ(hp.delta.head_k_dim, 16);
  EXPECT_EQ(hp.delta.head_v_dim, 16);
  EXPECT_EQ(hp.delta.conv_kernel, 4);
  EXPECT_EQ(hp.delta.conv_dim(), 2 * 32 + 64);
  EXPECT_EQ(hp.rotary_dims(), 8);  // partial rotary: 8 of 16
  EXPECT_EQ(hp.rope_sections, (std::vector<int>{2, 1, 1, 0}));
  EXPECT_TRUE(hp.attn_out_gate);
  EXPECT_TRUE(hp.qk_norm);
  const BlockWeights& lin = m->weights().blocks[0];
  EXPECT_EQ(lin.delta.w_qkv.shape, (std::vector<int64_t>{128, 64}));
  EXPECT_EQ(lin.delta.conv.size(), 128u * 4);
  EXPECT_TRUE(lin.wq.data.empty());
  const BlockWeights& full = m->weights().blocks[2];
  EXPECT_EQ(full.wq.shape, (std::vector<int64_t>{2 * 64, 64}));  // query and gate rows
  EXPECT_TRUE(full.delta.w_qkv.data.empty());
}

// llama.cpp feeds text tokens position 0 in M-RoPE's fourth section (e); its interleaved layout
// gives a pair to e when the t/h/w sections are too short for it, and such a pair never turns.
TEST(Qwen35Rope, PairsOfSectionEDoNotTurn) {
  HParams hp;
  hp.rope_sections = {2, 2, 0, 0};  // pair 2 (sector 2 % 3 == 2, w has none) falls to e
  EXPECT_TRUE(hp.rope_pair_turns(0));
  EXPECT_TRUE(hp.rope_pair_turns(1));
  EXPECT_FALSE(hp.rope_pair_turns(2));
  EXPECT_TRUE(hp.rope_pair_turns(3));
  hp.rope_sections = {11, 11, 10, 0};  // Qwen3.5: all 32 pairs see the text position
  for (int i = 0; i < 32; ++i) EXPECT_TRUE(hp.rope_pair_turns(i)) << i;
}

TEST_F(Qwen35, RefusesInconsistentMetadata) {
  EXPECT_EQ(load_error(with_key("qwen35.ssm.inner_size", GgufValue::of_u32(60))),
            std::string(dir_ / "edited.gguf") +
                ": metadata qwen35.ssm.inner_size 60 is not time_step_rank 4 value heads of "
                "state_size 16");
  GgufValue flags;
  flags.type = GgufType::ARRAY;
  flags.elem = GgufType::BOOL;
  flags.ints = {1, 1, 0};
  EXPECT_NE(load_error(with_key("qwen35.attention.recurrent_layers", flags))
                .find("metadata qwen35.attention.recurrent_layers has 3 entries for 6 layers"),
            std::string::npos);
  EXPECT_NE(load_error(with_key("qwen35.rope.dimension_count", GgufValue::of_u32(18)))
                .find("rope.dimension_count 18 does not fit a head of 16"),
            std::string::npos);
}

// attention.recurrent_layers, when present, says which layers are linear attention (llama.cpp
// reads it before the interval); a layer flagged linear must then carry DeltaNet tensors.
TEST_F(Qwen35, RecurrentLayersKeyOverridesTheInterval) {
  GgufValue flags;
  flags.type = GgufType::ARRAY;
  flags.elem = GgufType::BOOL;
  flags.ints = {1, 1, 1, 1, 1, 0};
  EXPECT_NE(load_error(with_key("qwen35.attention.recurrent_layers", flags))
                .find("missing tensor blk.2.attn_qkv.weight"),
            std::string::npos);
}

// A path position owns its recurrent state: a repeated linear-attention layer gets one per visit,
// attention positions none.
TEST_F(Qwen35, RecurrentStatePerPathPosition) {
  auto m = write_and_load(tiny());
  const uint64_t per_state = (3 * 128 + 4 * 16 * 16) * sizeof(float);
  RecurrentState plain(m->hparams(), LayerPath::identity(6));
  EXPECT_EQ(plain.bytes(), 4 * per_state);
  RecurrentState repeat(m->hparams(), LayerPath{{0, 1, 2, 1, 2, 0}});
  EXPECT_EQ(repeat.bytes(), 4 * per_state);
  RecurrentState skip(m->hparams(), LayerPath{{2, 5}});
  EXPECT_TRUE(skip.empty());  // attention layers only: truncate() is the plain KV one

  // Running layer 0 twice in a row is not running it once with the state carried over: the
  // second visit starts from its own empty state, so the logits differ from a one-visit path.
  SessionOptions o;
  o.n_threads = 1;
  Session twice(*m, LayerPath{{0, 0, 1, 2, 3, 4, 5}}, o);
  Session once(*m, LayerPath::identity(6), o);
  const auto a = copy(twice.prefill(tokens_));
  const auto b = copy(once.prefill(tokens_));
  EXPECT_GT(max_diff(a, b), 1e-3f);
}

// Decoding one token at a time continues the recurrence exactly as a prefill of all the tokens.
TEST_F(Qwen35, DecodeContinuesThePrefill) {
  auto m = write_and_load(tiny());
  SessionOptions o;
  o.n_threads = 1;
  Session all(*m, LayerPath::identity(6), o);
  const auto want = copy(all.prefill(tokens_, /*all_logits=*/true));
  Session steps(*m, LayerPath::identity(6), o);
  const int64_t V = m->hparams().n_vocab;
  for (size_t t = 0; t < tokens_.size(); ++t) {
    const auto got = steps.decode(tokens_[t]);
    EXPECT_LT(max_diff(got, std::span<const float>(want).subspan(t * V, V)), 1e-4f) << t;
  }
}

// truncate() cannot cut a recurrent state back: it recomputes the kept prefix, then restores the
// snapshot it left when asked for the same prefix again. Either way the continuation's logits
// are those of a fresh run of the same tokens (the old KV-only truncate would have continued
// from the state after all ten tokens).
TEST_F(Qwen35, TruncateRewindsTheRecurrentState) {
  auto m = write_and_load(tiny());
  SessionOptions o;
  o.n_threads = 1;
  const std::vector<int32_t> prefix(tokens_.begin(), tokens_.begin() + 6);
  const std::vector<int32_t> cont = {64, 83, 476, 68};
  std::vector<int32_t> whole = prefix;
  whole.insert(whole.end(), cont.begin(), cont.end());
  Session fresh(*m, LayerPath::identity(6), o);
  fresh.prefill(prefix);
  const auto want = copy(fresh.prefill(cont));

  Session s(*m, LayerPath::identity(6), o);
  s.prefill(tokens_);
  s.truncate(6);  // recomputed
  EXPECT_EQ(s.n_past(), 6);
  const auto first = copy(s.prefill(cont));
  EXPECT_LT(max_diff(first, want), 1e-5f);
  const int64_t evals = s.layer_evals();
  s.truncate(6);  // from the snapshot: no layer runs
  EXPECT_EQ(s.layer_evals(), evals);
  const auto second = copy(s.prefill(cont));
  EXPECT_EQ(second, first);
  s.truncate(0);
  EXPECT_EQ(s.n_past(), 0);
  EXPECT_LT(max_diff(s.prefill(whole), copy(Session(*m, LayerPath::identity(6), o).prefill(whole))),
            1e-5f);
}

TEST_F(Qwen35, TruncateWithoutTheTokensIsRefused) {
  auto m = write_and_load(tiny());
  SessionOptions o;
  o.n_threads = 1;
  Session s(*m, LayerPath::identity(6), o);
  std::vector<float> x(4 * 64, 0.1f);
  s.prefill_from_residual(0, x);
  try {
    s.truncate(2);
    FAIL() << "truncate succeeded";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "cannot truncate a 4-token sequence to 2: a linear-attention layer's recurrent "
                 "state cannot be cut back, and this session no longer knows its tokens to "
                 "recompute it");
  }
}

}  // namespace
}  // namespace reprise
