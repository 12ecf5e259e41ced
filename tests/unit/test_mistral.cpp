// Mistral-style `llama` files: `attention.sliding_window` makes every layer slide (as Hugging
// Face's Mistral does; llama.cpp 0c1e570 ignores the key for llama). The logits are checked
// against a NumPy reference in tests/model/test_golden.cpp (fixture mistral-tiny) and
// tests/model/test_mistral.cpp.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/session.h"
#include "format/gguf.h"
#include "format/gguf_writer.h"
#include "model/model.h"
#include "support/logits.h"
#include "support/synth_dir_test.h"
#include "synth/synth.h"
#include "util/error.h"

namespace reprise {
namespace {

class Mistral : public test::SynthDirTest {
 protected:
  static synth::SynthShape tiny() { return *synth::find_shape("mistral-tiny"); }

  // mistral-tiny's file with one metadata key replaced.
  std::filesystem::path with_key(const std::string& key, GgufValue v) {
    auto src = GgufFile::open(write(tiny()));
    GgufWriter w;
    w.copy_metadata(*src);
    w.set(key, std::move(v));
    for (const TensorView& t : src->tensors()) w.add_tensor(t.name, t.type, t.shape, t.data);
    w.write(dir_ / "edited.gguf", true);
    return dir_ / "edited.gguf";
  }

  static void expect_refused(const std::filesystem::path& p, const std::string& message) {
    try {
      Model::load(p);
      FAIL() << "loaded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
};

TEST_F(Mistral, EveryLayerSlides) {
  auto m = write_and_load(tiny());  // window 5
  const HParams& hp = m->hparams();
  EXPECT_EQ(hp.arch, Arch::Llama);
  EXPECT_EQ(hp.rope_style, RopeStyle::Interleaved);
  for (int l = 0; l < hp.n_layer; ++l) {
    EXPECT_EQ(hp.layer_attn(l).window, 5) << "layer " << l;
    EXPECT_EQ(hp.layer_attn(l).rope_theta, 1e4f) << "layer " << l;
  }
}

// Converters write 0 for Mistral checkpoints without a window: every layer is global.
TEST_F(Mistral, WindowZeroIsGlobal) {
  auto m = Model::load(with_key("llama.attention.sliding_window", GgufValue::of_u32(0)));
  EXPECT_TRUE(m->hparams().layers.empty());
  EXPECT_EQ(m->hparams().layer_attn(2).window, 0);
}

TEST_F(Mistral, APatternKeyIsRefusedNamingIt) {
  expect_refused(with_key("llama.attention.sliding_window_pattern", GgufValue::of_u32(2)),
                 "llama.attention.sliding_window_pattern is unsupported for llama");
}

// One layer visited three times: each visit slides over 5 positions of the visit below, so
// position p sees tokens p - 12 .. p and nothing earlier. With the window ignored, token 0 would
// reach every position.
TEST_F(Mistral, ARepeatedLayerSlidesOnEveryVisit) {
  auto s = tiny();
  s.n_layer = 1;
  auto m = write_and_load(s);
  const LayerPath path{{0, 0, 0}};
  auto run = [&](int32_t first) {
    std::vector<int32_t> toks = {first};
    for (int i = 1; i < 16; ++i) toks.push_back(100 + i);
    Session sess(*m, path, SessionOptions{.n_ctx = 32});
    auto l = sess.prefill(toks, /*all_logits=*/true);
    return std::vector<float>(l.begin(), l.end());
  };
  const auto a = run(3), b = run(900);
  const size_t V = m->hparams().n_vocab;
  auto row_diff = [&](size_t r) { return test::row_max_abs_diff(a, b, V, r); };
  EXPECT_GT(row_diff(12), 1e-5f);  // 3 x (5 - 1) positions back reaches token 0
  for (size_t r = 13; r < 16; ++r) EXPECT_EQ(row_diff(r), 0.0f) << "position " << r;
}

// mistralai/Mistral-7B-v0.1's config.json.
TEST(MistralShapes, KnowsMistral7b) {
  auto s = synth::find_shape("mistral-7b");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->arch, "llama");
  EXPECT_EQ(s->n_embd, 4096);
  EXPECT_EQ(s->n_layer, 32);
  EXPECT_EQ(s->n_head_kv, 8);
  EXPECT_EQ(s->n_ff, 14336);
  EXPECT_EQ(s->n_vocab, 32000);
  EXPECT_EQ(s->sliding_window, 4096);
  EXPECT_FALSE(s->tied);
}

}  // namespace
}  // namespace reprise
