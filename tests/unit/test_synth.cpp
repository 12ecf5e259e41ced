// reprise synth: known shapes, the type mix, reproducibility, and that the result loads and runs.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine/session.h"
#include "model/model.h"
#include "support/test_support.h"
#include "synth/synth.h"
#include "util/error.h"

namespace reprise::synth {
namespace {

namespace fs = std::filesystem;

// A shape small enough for a unit test, with every optional feature on.
SynthShape tiny(const std::string& arch) {
  SynthShape s;
  s.name = "tiny-" + arch;
  s.arch = arch;
  s.n_embd = 256;
  s.n_layer = 2;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.head_dim = 64;
  s.n_ff = 512;
  s.n_vocab = 1200;
  s.n_ctx = 256;
  s.rope_theta = arch == "llama" ? 500000.0f : 1e6f;
  s.qkv_bias = arch == "qwen2";
  s.qk_norm = arch == "qwen3";
  s.llama3_rope = arch == "llama";
  return s;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

fs::path temp_file(const std::string& name) {
  return reprise::test::scratch("synth_" + name);
}

TEST(Synth, KnowsTheRealShapes) {
  auto q = find_shape("qwen2.5-0.5b");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->n_embd, 896);
  EXPECT_EQ(q->n_layer, 24);
  EXPECT_EQ(q->n_vocab, 151936);
  EXPECT_TRUE(q->qkv_bias && q->tied);
  auto l = find_shape("llama-3.2-1b");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->n_vocab, 128256);
  EXPECT_TRUE(l->llama3_rope);
  EXPECT_TRUE(find_shape("qwen3-0.6b") && find_shape("qwen3-0.6b")->qk_norm);
  EXPECT_TRUE(find_shape("qwen2.5-1.5b"));
  EXPECT_FALSE(find_shape("gpt-5"));
}

TEST(Synth, TypeMixAndFallbacks) {
  auto m = parse_file_type("Q4_K_M");
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->q4_k_m);
  // Output / tied embedding gets Q6_K; 896-wide rows cannot hold K blocks and fall back.
  EXPECT_EQ(tensor_type_for(*m, "token_embd", -1, 24, 1024, true), TensorType::Q6_K);
  EXPECT_EQ(tensor_type_for(*m, "token_embd", -1, 24, 896, true), TensorType::Q8_0);
  EXPECT_EQ(tensor_type_for(*m, "attn_q", 5, 24, 1024, false), TensorType::Q4_K);
  EXPECT_EQ(tensor_type_for(*m, "attn_q", 5, 24, 896, false), TensorType::Q4_0);
  // attn_v / ffn_down: first and last eighth, and every third layer in between, get Q6_K.
  EXPECT_EQ(tensor_type_for(*m, "ffn_down", 0, 24, 4864, false), TensorType::Q6_K);
  EXPECT_EQ(tensor_type_for(*m, "ffn_down", 3, 24, 4864, false), TensorType::Q4_K);
  EXPECT_EQ(tensor_type_for(*m, "ffn_down", 5, 24, 4864, false), TensorType::Q6_K);
  EXPECT_EQ(tensor_type_for(*m, "ffn_down", 23, 24, 4864, false), TensorType::Q6_K);
  auto f16 = parse_file_type("f16");
  ASSERT_TRUE(f16);
  EXPECT_EQ(tensor_type_for(*f16, "attn_q", 0, 24, 896, false), TensorType::F16);
  // Types without 256-wide rows fall back to a 32-block type, as llama.cpp does.
  auto q3 = parse_file_type("q3_k");
  ASSERT_TRUE(q3);
  EXPECT_EQ(tensor_type_for(*q3, "attn_q", 0, 24, 1024, false), TensorType::Q3_K);
  EXPECT_EQ(tensor_type_for(*q3, "attn_q", 0, 24, 896, false), TensorType::Q4_0);
  auto xs = parse_file_type("IQ4_XS");
  ASSERT_TRUE(xs);
  EXPECT_EQ(tensor_type_for(*xs, "attn_q", 0, 24, 896, false), TensorType::IQ4_NL);
  EXPECT_FALSE(parse_file_type("iq2_xxs"));
  EXPECT_FALSE(parse_file_type("i32"));
}

TEST(Synth, SeededReproducibleAndLoadable) {
  for (const char* arch : {"qwen2", "qwen3", "llama"}) {
    SCOPED_TRACE(arch);
    const SynthShape s = tiny(arch);
    const FileType ft = *parse_file_type("q4_k_m");
    const fs::path a = temp_file(std::string(arch) + "_a.gguf"),
                   b = temp_file(std::string(arch) + "_b.gguf"),
                   c = temp_file(std::string(arch) + "_c.gguf");
    ThreadPool one(1), two(2);
    auto st = write_synth_model(s, ft, 7, a, true, one);
    EXPECT_GT(st.parameters, 0u);
    if (std::string(arch) == "qwen2") {           // once is enough for the byte-level checks
      write_synth_model(s, ft, 7, b, true, two);  // thread count must not matter
      write_synth_model(s, ft, 8, c, true, two);
      EXPECT_EQ(slurp(a), slurp(b));
      EXPECT_NE(slurp(a), slurp(c));
      EXPECT_THROW(write_synth_model(s, ft, 7, a, false, one), Error);  // no silent overwrite
    }

    // Progress: the embeddings, then each layer, in order, before the file is written.
    const fs::path d = temp_file(std::string(arch) + "_progress.gguf");
    fs::remove(d);
    std::vector<int> calls;
    bool file_before_last = true;
    write_synth_model(s, ft, 7, d, false, one, [&](int done, int total) {
      EXPECT_EQ(total, 3);
      calls.push_back(done);
      file_before_last = fs::exists(d);
    });
    EXPECT_EQ(calls, (std::vector<int>{1, 2, 3}));
    EXPECT_FALSE(file_before_last);
    EXPECT_EQ(slurp(d), slurp(a));  // the hook changes nothing in the file

    auto m = Model::load(a);
    EXPECT_EQ(m->hparams().n_vocab, 1200);
    EXPECT_EQ(m->hparams().n_layer, 2);
    EXPECT_EQ(m->hparams().qkv_bias, s.qkv_bias);
    EXPECT_EQ(m->hparams().qk_norm, s.qk_norm);
    EXPECT_EQ(m->hparams().rope_freq_factors.empty(), !s.llama3_rope);
    ASSERT_NE(m->tokenizer(), nullptr);
    EncodeOptions eo;
    eo.add_bos = false;
    EXPECT_FALSE(m->tokenizer()->encode("hello there", eo).empty());
    SessionOptions so;
    so.n_threads = 2;
    so.n_ctx = 32;
    Session session(*m, LayerPath::identity(2), so);
    std::vector<int32_t> prompt = {1, 2, 3, 300, 1100};
    auto logits = session.prefill(prompt);
    ASSERT_EQ(logits.size(), 1200u);
    double ss = 0;
    for (float x : logits) {
      ASSERT_TRUE(std::isfinite(x));
      ss += double(x) * x;
    }
    // Realistic scale: logits of order 1, neither vanishing nor exploding.
    const double rms = std::sqrt(ss / logits.size());
    EXPECT_GT(rms, 0.1);
    EXPECT_LT(rms, 30);
    for (const auto& p : {a, b, c}) fs::remove(p);  // absent ones are fine
  }
}

}  // namespace
}  // namespace reprise::synth
