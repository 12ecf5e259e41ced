#include "support/gguf_builder.h"

#include <fstream>
#include <random>

#include <unistd.h>

#include "support/test_support.h"

namespace reprise::test {

std::filesystem::path write_temp_file(const std::string& name, const std::vector<uint8_t>& bytes) {
  static const std::filesystem::path dir = [] {
    auto d = scratch("gguf");
    std::filesystem::create_directories(d);
    return d;
  }();
  auto p = dir / name;
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return p;
}

std::vector<uint8_t> tiny_llama_gguf(int n_layer, int d, int n_ff, int n_vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  auto random = [&](size_t n, float scale) {
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
  };
  auto ones = [](size_t n) { return std::vector<float>(n, 1.0f); };
  const int n_head = 2, head_dim = d / n_head;
  GgufBuilder b;
  b.kv_string("general.architecture", "llama");
  b.kv_string("general.name", "tiny-test");
  b.kv_u32("llama.context_length", 64);
  b.kv_u32("llama.embedding_length", d);
  b.kv_u32("llama.block_count", n_layer);
  b.kv_u32("llama.feed_forward_length", n_ff);
  b.kv_u32("llama.attention.head_count", n_head);
  b.kv_u32("llama.attention.head_count_kv", n_head);
  b.kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  const uint64_t D = d, F = n_ff, V = n_vocab;
  const float s = 1.0f / std::sqrt(static_cast<float>(d));
  b.tensor_f32("token_embd.weight", {D, V}, random(D * V, 1.0f));
  b.tensor_f32("output_norm.weight", {D}, ones(D));
  b.tensor_f32("output.weight", {D, V}, random(D * V, s));
  for (int l = 0; l < n_layer; ++l) {
    auto n = [&](const char* role) { return "blk." + std::to_string(l) + "." + role; };
    b.tensor_f32(n("attn_norm.weight"), {D}, ones(D));
    b.tensor_f32(n("attn_q.weight"), {D, D}, random(D * D, s));
    b.tensor_f32(n("attn_k.weight"), {D, D}, random(D * D, s));
    b.tensor_f32(n("attn_v.weight"), {D, D}, random(D * D, s));
    b.tensor_f32(n("attn_output.weight"), {D, D}, random(D * D, s));
    b.tensor_f32(n("ffn_norm.weight"), {D}, ones(D));
    b.tensor_f32(n("ffn_gate.weight"), {D, F}, random(D * F, s));
    b.tensor_f32(n("ffn_up.weight"), {D, F}, random(D * F, s));
    b.tensor_f32(n("ffn_down.weight"), {F, D}, random(D * F, 1.0f / std::sqrt(float(n_ff))));
  }
  (void)head_dim;
  return b.build();
}

}  // namespace reprise::test
