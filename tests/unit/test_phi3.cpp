// Phi-3 files: the fused attn_qkv and gate-up ffn_up split into row views, the window llama.cpp
// ignores, and what is refused. Logits against llama.cpp: tests/model/test_golden.cpp (phi3-tiny).
#include <gtest/gtest.h>

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

TEST_F(Phi3, LongRopeFactorsAreRefusedNamingTheTensor) {
  auto src = GgufFile::open(write(tiny()));
  GgufWriter w;
  w.copy_metadata(*src);
  for (const TensorView& t : src->tensors()) w.add_tensor(t.name, t.type, t.shape, t.data);
  w.add_tensor("rope_factors_long.weight", TensorType::F32, {8},
               std::vector<std::byte>(8 * sizeof(float)));
  w.write(dir_ / "long.gguf", true);
  try {
    Model::load(dir_ / "long.gguf");
    FAIL() << "loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "tensor rope_factors_long.weight (long-rope scaling) is unsupported"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(Phi3, PartialRotaryIsRefusedNamingTheKey) {
  auto src = GgufFile::open(write(tiny()));
  GgufWriter w;
  w.copy_metadata(*src);
  w.set("phi3.rope.dimension_count", GgufValue::of_u32(12));
  for (const TensorView& t : src->tensors()) w.add_tensor(t.name, t.type, t.shape, t.data);
  w.write(dir_ / "partial.gguf", true);
  try {
    Model::load(dir_ / "partial.gguf");
    FAIL() << "loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("phi3.rope.dimension_count 12 != head dimension 16"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace reprise
