#include "synth/synth.h"
#include "format/tensor_type.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "format/gguf_writer.h"
#include "kernels/quant.h"
#include "model/hf_config.h"
#include "util/error.h"
#include "util/strings.h"

namespace reprise::synth {
namespace {

// Counter-based random numbers: value i of stream s depends only on (seed, s, i), so a tensor's
// contents do not depend on how rows are split across threads.
uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t hash_name(const std::string& s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Fills out[0..n) with N(0, std^2) values of stream `stream` starting at element `first`
// (Box-Muller on pairs, so `first` must be even).
void normal_fill(uint64_t stream, uint64_t first, float std, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += 2) {
    const uint64_t r = mix64(stream ^ mix64(first + static_cast<uint64_t>(i)));
    const double u1 = (static_cast<double>(r >> 40) + 0.5) / 16777216.0;  // (0, 1)
    const double u2 = static_cast<double>(r & 0xFFFFFF) / 16777216.0;
    const double rad = std::sqrt(-2.0 * std::log(u1)) * std;
    out[i] = static_cast<float>(rad * std::cos(2 * M_PI * u2));
    if (i + 1 < n) out[i + 1] = static_cast<float>(rad * std::sin(2 * M_PI * u2));
  }
}

GgufValue string_array(std::vector<std::string> v) {
  GgufValue a;
  a.type = GgufType::ARRAY;
  a.elem = GgufType::STRING;
  a.strings = std::move(v);
  return a;
}

GgufValue i32_array(std::vector<int64_t> v) {
  GgufValue a;
  a.type = GgufType::ARRAY;
  a.elem = GgufType::I32;
  a.ints = std::move(v);
  return a;
}

// Long-rope frequency divisors for `pairs` rotated pairs, shaped like Phi-4-mini's: the long
// set stretches the slow frequencies (high pair index) by about the whole context extension and
// leaves the fastest ones nearly alone, rising smoothly in between (extension^smoothstep); the
// short set stays within 1..1.5. Fixed numbers, so files are reproducible.
std::vector<float> long_rope_factors(int pairs, double extension, bool long_ctx) {
  std::vector<float> f(static_cast<size_t>(pairs));
  for (int i = 0; i < pairs; ++i) {
    const double t = pairs > 1 ? static_cast<double>(i) / (pairs - 1) : 1.0;
    const double smooth = t * t * (3 - 2 * t);
    f[static_cast<size_t>(i)] = static_cast<float>(
        long_ctx ? std::pow(std::max(extension, 1.0), smooth) : 1.0 + 0.5 * t * t);
  }
  return f;
}

// UTF-8 of one code point below 0x800 (all GPT-2 byte-alphabet characters are).
std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// GPT-2's byte-level alphabet: printable bytes stand for themselves, the others map to
// 256, 257, ... in byte order. Token ids follow the alphabet's order (printables first).
std::vector<std::string> byte_tokens() {
  std::vector<std::string> out;
  std::vector<bool> printable(256, false);
  for (int b = 33; b <= 126; ++b) printable[b] = true;
  for (int b = 161; b <= 172; ++b) printable[b] = true;
  for (int b = 174; b <= 255; ++b) printable[b] = true;
  for (int b = 0; b < 256; ++b)
    if (printable[b]) out.push_back(utf8(b));
  int next = 256;
  for (int b = 0; b < 256; ++b)
    if (!printable[b]) out.push_back(utf8(next++));
  return out;
}

void set_vocab(GgufWriter& w, const SynthShape& s) {
  std::vector<std::string> tokens = byte_tokens();
  std::vector<int64_t> types(tokens.size(), 1);
  std::vector<std::string> merges;
  for (char a = 'a'; a <= 'z'; ++a)
    for (char b = 'a'; b <= 'z'; ++b) {
      merges.push_back(fmt::format("{} {}", a, b));
      tokens.push_back(fmt::format("{}{}", a, b));
      types.push_back(1);
    }
  const int64_t eot = static_cast<int64_t>(tokens.size());
  std::vector<const char*> specials = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  // llama.cpp marks these in every vocabulary of a model named like Phi-3, and fails to load
  // one without them.
  if (s.arch == "phi3") specials.insert(specials.end(), {"<unk>", "<s>", "</s>"});
  for (const char* special : specials) {
    tokens.push_back(special);
    types.push_back(3);
  }
  if (static_cast<int>(tokens.size()) > s.n_vocab)
    throw Error(fmt::format("synth: vocabulary of {} is too small", s.n_vocab));
  for (int i = static_cast<int>(tokens.size()); i < s.n_vocab; ++i) {
    tokens.push_back(fmt::format("<|synth_{}|>", i));
    types.push_back(3);
  }
  w.set("tokenizer.ggml.model", GgufValue::of_string("gpt2"));
  w.set("tokenizer.ggml.pre", GgufValue::of_string(s.arch == "llama" ? "llama-bpe" : "qwen2"));
  w.set("tokenizer.ggml.tokens", string_array(std::move(tokens)));
  w.set("tokenizer.ggml.token_type", i32_array(std::move(types)));
  w.set("tokenizer.ggml.merges", string_array(std::move(merges)));
  w.set("tokenizer.ggml.bos_token_id", GgufValue::of_u32(static_cast<uint32_t>(eot)));
  w.set("tokenizer.ggml.eos_token_id", GgufValue::of_u32(static_cast<uint32_t>(eot)));
  w.set("tokenizer.ggml.add_bos_token", GgufValue::of_bool(false));
}

// llama.cpp's ftype numbers for general.file_type.
uint32_t ftype_number(const FileType& ft) {
  if (ft.q4_k_m) return kLlamaFileTypeQ4_K_M;
  return llama_file_type(ft.base).value_or(0);
}

// The Q4_K_M rule for which layers of attn_v / ffn_down get Q6_K: the first and last eighth of
// the layers, and every third layer in between.
bool more_bits(int layer, int n_layer) {
  return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

// The token mixer of Qwen3.5 layer l, named as llama.cpp 0c1e570 loads it: a Gated DeltaNet layer
// (the conv taps kept F32, as llama-quantize keeps them; decay a = -exp(A_log) < 0 and dt bias
// spread so the per-token decay exp(softplus(alpha + dt) a) ranges over (0, 1)), or every
// full_attn_interval-th layer gated full attention (attn_q holds query and gate rows per head).
template <class Matrix, class Vector, class TypeOf>
void write_qwen35_mixer(const SynthShape& s, int l, int64_t d, float in_std, Matrix& matrix,
                        Vector& vector, TypeOf& type_of) {
  auto n = [&](const char* role) { return fmt::format("blk.{}.{}.weight", l, role); };
  if ((l + 1) % s.full_attn_interval == 0) {
    const int64_t q_dim = int64_t{s.n_head} * s.head_dim,
                  kv_dim = int64_t{s.n_head_kv} * s.head_dim;
    matrix(n("attn_q"), 2 * q_dim, d, in_std, type_of("attn_q", l, d, false));
    matrix(n("attn_k"), kv_dim, d, in_std, type_of("attn_k", l, d, false));
    matrix(n("attn_v"), kv_dim, d, in_std, type_of("attn_v", l, d, false));
    vector(n("attn_q_norm"), s.head_dim, 1.0f, 0.1f);
    vector(n("attn_k_norm"), s.head_dim, 1.0f, 0.1f);
    matrix(n("attn_output"), d, q_dim, 1.0f / std::sqrt(static_cast<float>(q_dim)),
           type_of("attn_output", l, q_dim, false));
    return;
  }
  const int64_t key_dim = int64_t{s.dn_k_heads} * s.dn_head_dim,
                value_dim = int64_t{s.dn_v_heads} * s.dn_head_dim,
                conv_dim = 2 * key_dim + value_dim;
  matrix(n("attn_qkv"), conv_dim, d, in_std, type_of("attn_qkv", l, d, false));
  matrix(n("attn_gate"), value_dim, d, in_std, type_of("attn_gate", l, d, false));
  matrix(n("ssm_conv1d"), conv_dim, s.dn_conv, 1.0f / std::sqrt(static_cast<float>(s.dn_conv)),
         TensorType::F32);
  vector(fmt::format("blk.{}.ssm_dt.bias", l), s.dn_v_heads, 0.0f, 1.0f);
  vector(fmt::format("blk.{}.ssm_a", l), s.dn_v_heads, -1.0f, 0.3f);
  matrix(n("ssm_beta"), s.dn_v_heads, d, in_std, type_of("ssm_beta", l, d, false));
  matrix(n("ssm_alpha"), s.dn_v_heads, d, in_std, type_of("ssm_alpha", l, d, false));
  vector(n("ssm_norm"), s.dn_head_dim, 1.0f, 0.1f);
  matrix(n("ssm_out"), d, value_dim, 1.0f / std::sqrt(static_cast<float>(value_dim)),
         type_of("ssm_out", l, value_dim, false));
}

}  // namespace

const std::vector<SynthShape>& known_shapes() {
  static const std::vector<SynthShape> shapes = [] {
    std::vector<SynthShape> v;
    SynthShape s;
    s = {};
    s.name = "qwen2.5-0.5b", s.arch = "qwen2", s.n_embd = 896, s.n_layer = 24, s.n_head = 14,
    s.n_head_kv = 2, s.head_dim = 64, s.n_ff = 4864, s.n_vocab = 151936, s.n_ctx = 32768,
    s.rope_theta = 1e6f, s.rms_eps = 1e-6f, s.tied = true, s.qkv_bias = true;
    v.push_back(s);
    s = {};
    s.name = "qwen2.5-1.5b", s.arch = "qwen2", s.n_embd = 1536, s.n_layer = 28, s.n_head = 12,
    s.n_head_kv = 2, s.head_dim = 128, s.n_ff = 8960, s.n_vocab = 151936, s.n_ctx = 32768,
    s.rope_theta = 1e6f, s.rms_eps = 1e-6f, s.tied = true, s.qkv_bias = true;
    v.push_back(s);
    s = {};
    s.name = "qwen3-0.6b", s.arch = "qwen3", s.n_embd = 1024, s.n_layer = 28, s.n_head = 16,
    s.n_head_kv = 8, s.head_dim = 128, s.n_ff = 3072, s.n_vocab = 151936, s.n_ctx = 40960,
    s.rope_theta = 1e6f, s.rms_eps = 1e-6f, s.tied = true, s.qk_norm = true;
    v.push_back(s);
    s = {};
    s.name = "llama-3.2-1b", s.arch = "llama", s.n_embd = 2048, s.n_layer = 16, s.n_head = 32,
    s.n_head_kv = 8, s.head_dim = 64, s.n_ff = 8192, s.n_vocab = 128256, s.n_ctx = 131072,
    s.rope_theta = 500000.0f, s.rms_eps = 1e-5f, s.tied = true, s.llama3_rope = true;
    v.push_back(s);
    // google/gemma-3-1b-it: five sliding-window layers (512 tokens, rope base 1e4) per global
    // one (1e6); the pattern is llama.cpp's default for gemma3, so the file does not name it.
    s = {};
    s.name = "gemma3-1b", s.arch = "gemma3", s.n_embd = 1152, s.n_layer = 26, s.n_head = 4,
    s.n_head_kv = 1, s.head_dim = 256, s.n_ff = 6912, s.n_vocab = 262144, s.n_ctx = 32768,
    s.rope_theta = 1e6f, s.rms_eps = 1e-6f, s.tied = true, s.qk_norm = true, s.sliding_window = 512,
    s.rope_theta_swa = 1e4f;
    v.push_back(s);
    // google/gemma-2-2b-it: even layers slide (4096 tokens), logits soft-capped at 50 / 30.
    s = {};
    s.name = "gemma2-2b", s.arch = "gemma2", s.n_embd = 2304, s.n_layer = 26, s.n_head = 8,
    s.n_head_kv = 4, s.head_dim = 256, s.n_ff = 9216, s.n_vocab = 256000, s.n_ctx = 8192,
    s.rope_theta = 1e4f, s.rms_eps = 1e-6f, s.tied = true, s.sliding_window = 4096,
    s.attn_softcap = 50, s.final_softcap = 30;
    v.push_back(s);
    // Fixture sizes: a window of 4 tokens, so a 16-token prompt crosses it; gemma3-tiny's layer
    // 2 is global (period 3), gemma2-tiny caps hard enough (4 and 3) to change the logits.
    s = {};
    s.name = "gemma3-tiny", s.arch = "gemma3", s.n_embd = 64, s.n_layer = 4, s.n_head = 4,
    s.n_head_kv = 2, s.head_dim = 16, s.n_ff = 128, s.n_vocab = 1024, s.n_ctx = 256,
    s.rope_theta = 1e6f, s.rms_eps = 1e-6f, s.tied = true, s.qk_norm = true, s.sliding_window = 4,
    s.swa_period = 3, s.rope_theta_swa = 1e4f;
    v.push_back(s);
    s = {};
    s.name = "gemma2-tiny", s.arch = "gemma2", s.n_embd = 64, s.n_layer = 4, s.n_head = 4,
    s.n_head_kv = 2, s.head_dim = 16, s.n_ff = 128, s.n_vocab = 1024, s.n_ctx = 256,
    s.rope_theta = 1e4f, s.rms_eps = 1e-6f, s.tied = true, s.sliding_window = 4, s.attn_softcap = 4,
    s.final_softcap = 3;
    v.push_back(s);
    // Qwen/Qwen3-30B-A3B: 128 experts of width 768, 8 per token (~3.3 B active parameters);
    // use --layers to make a smaller file.
    s = {};
    s.name = "qwen3-30b-a3b", s.arch = "qwen3moe", s.n_embd = 2048, s.n_layer = 48, s.n_head = 32,
    s.n_head_kv = 4, s.head_dim = 128, s.n_ff = 6144, s.n_vocab = 151936, s.n_ctx = 40960,
    s.rope_theta = 1e6f, s.rms_eps = 1e-6f, s.tied = false, s.qk_norm = true, s.n_expert = 128,
    s.n_expert_used = 8, s.n_ff_exp = 768;
    v.push_back(s);
    // mistralai/Mixtral-8x7B-v0.1: llama arch, 8 experts of width 14336, 2 per token.
    s = {};
    s.name = "mixtral-8x7b", s.arch = "llama", s.n_embd = 4096, s.n_layer = 32, s.n_head = 32,
    s.n_head_kv = 8, s.head_dim = 128, s.n_ff = 14336, s.n_vocab = 32000, s.n_ctx = 32768,
    s.rope_theta = 1e6f, s.rms_eps = 1e-5f, s.tied = false, s.n_expert = 8, s.n_expert_used = 2,
    s.n_ff_exp = 14336;
    v.push_back(s);
    // Fixture sizes: 4 experts, 2 per token, so a 16-token prompt spreads over all of them
    // (tied output, unlike Mixtral, to keep the file small).
    s = {};
    s.name = "qwen3moe-tiny", s.arch = "qwen3moe", s.n_embd = 64, s.n_layer = 4, s.n_head = 4,
    s.n_head_kv = 2, s.head_dim = 16, s.n_ff = 96, s.n_vocab = 1024, s.n_ctx = 256,
    s.rope_theta = 1e6f, s.rms_eps = 1e-6f, s.tied = true, s.qk_norm = true, s.n_expert = 4,
    s.n_expert_used = 2, s.n_ff_exp = 32;
    v.push_back(s);
    s = {};
    s.name = "mixtral-tiny", s.arch = "llama", s.n_embd = 64, s.n_layer = 4, s.n_head = 4,
    s.n_head_kv = 2, s.head_dim = 16, s.n_ff = 32, s.n_vocab = 1024, s.n_ctx = 256,
    s.rope_theta = 1e6f, s.rms_eps = 1e-5f, s.tied = true, s.n_expert = 4, s.n_expert_used = 2,
    s.n_ff_exp = 32;
    v.push_back(s);
    // microsoft/Phi-3-mini-4k-instruct: fused QKV and gate-up; its converted files name a
    // 2047-token window, which llama.cpp ignores for phi3.
    s = {};
    s.name = "phi3-mini-4k", s.arch = "phi3", s.n_embd = 3072, s.n_layer = 32, s.n_head = 32,
    s.n_head_kv = 32, s.head_dim = 96, s.n_ff = 8192, s.n_vocab = 32064, s.n_ctx = 4096,
    s.rope_theta = 1e4f, s.rms_eps = 1e-5f, s.tied = false, s.sliding_window = 2047;
    v.push_back(s);
    // microsoft/Phi-4-mini-instruct: Phi-3 blocks with grouped-query attention, rope on 96 of
    // 128 head dimensions (partial_rotary_factor 0.75), a 200k vocabulary, tied embeddings, and
    // long-rope scaling from 4096 to 131072 positions.
    s = {};
    s.name = "phi-4-mini", s.arch = "phi3", s.n_embd = 3072, s.n_layer = 32, s.n_head = 24,
    s.n_head_kv = 8, s.head_dim = 128, s.rope_dims = 96, s.n_ff = 8192, s.n_vocab = 200064,
    s.n_ctx = 131072, s.rope_theta = 1e4f, s.rms_eps = 1e-5f, s.tied = true, s.rope_orig_ctx = 4096;
    v.push_back(s);
    // Fixture size of the same: rope on 12 of 16, original context 256 and 8192 positions (an
    // extension of 32 as Phi-4-mini's). 256 because llama.cpp rounds its context up to a
    // multiple of 256 before choosing factors, so contexts 256 and 512 give the short and the
    // long factors in both programs.
    s = {};
    s.name = "phi4-tiny", s.arch = "phi3", s.n_embd = 64, s.n_layer = 4, s.n_head = 4,
    s.n_head_kv = 2, s.head_dim = 16, s.rope_dims = 12, s.n_ff = 128, s.n_vocab = 1024,
    s.n_ctx = 8192, s.rope_theta = 1e4f, s.rms_eps = 1e-5f, s.tied = true, s.rope_orig_ctx = 256;
    v.push_back(s);
    // A window of 4 tokens (ignored, as llama.cpp does) that a 16-token prompt would cross.
    s = {};
    s.name = "phi3-tiny", s.arch = "phi3", s.n_embd = 64, s.n_layer = 4, s.n_head = 4,
    s.n_head_kv = 2, s.head_dim = 16, s.n_ff = 128, s.n_vocab = 1024, s.n_ctx = 256,
    s.rope_theta = 1e4f, s.rms_eps = 1e-5f, s.tied = true, s.sliding_window = 4;
    v.push_back(s);
    // mistralai/Mistral-7B-v0.1: llama arch, every layer slides over 4096 tokens.
    s = {};
    s.name = "mistral-7b", s.arch = "llama", s.n_embd = 4096, s.n_layer = 32, s.n_head = 32,
    s.n_head_kv = 8, s.head_dim = 128, s.n_ff = 14336, s.n_vocab = 32000, s.n_ctx = 32768,
    s.rope_theta = 1e4f, s.rms_eps = 1e-5f, s.tied = false, s.sliding_window = 4096;
    v.push_back(s);
    // A window of 5 tokens, so a 16-token prompt crosses it (and 4 layers see 4 x 4 positions
    // back: token 0 still reaches the last position, through the stack, not directly).
    s = {};
    s.name = "mistral-tiny", s.arch = "llama", s.n_embd = 64, s.n_layer = 4, s.n_head = 4,
    s.n_head_kv = 2, s.head_dim = 16, s.n_ff = 128, s.n_vocab = 1024, s.n_ctx = 256,
    s.rope_theta = 1e4f, s.rms_eps = 1e-5f, s.tied = true, s.sliding_window = 5;
    v.push_back(s);
    // HuggingFaceTB/SmolLM3-3B: Llama blocks, every fourth without rope (llama.cpp's rule for
    // smollm3, not written in the file).
    s = {};
    s.name = "smollm3-3b", s.arch = "smollm3", s.n_embd = 2048, s.n_layer = 36, s.n_head = 16,
    s.n_head_kv = 4, s.head_dim = 128, s.n_ff = 11008, s.n_vocab = 128256, s.n_ctx = 65536,
    s.rope_theta = 5e6f, s.rms_eps = 1e-6f, s.tied = true;
    v.push_back(s);
    // Layer 3 is the one without rope.
    s = {};
    s.name = "smollm3-tiny", s.arch = "smollm3", s.n_embd = 64, s.n_layer = 4, s.n_head = 4,
    s.n_head_kv = 2, s.head_dim = 16, s.n_ff = 128, s.n_vocab = 1024, s.n_ctx = 256,
    s.rope_theta = 1e4f, s.rms_eps = 1e-6f, s.tied = true;
    v.push_back(s);
    // Qwen/Qwen3.5-2B (text part): 18 Gated DeltaNet layers (16 key and 16 value heads of 128,
    // conv of 4) and every fourth layer gated full attention (8 query heads of 256, 2 KV heads,
    // rope on the first 64 dimensions, base 1e7).
    s = {};
    s.name = "qwen3.5-2b", s.arch = "qwen35", s.n_embd = 2048, s.n_layer = 24, s.n_head = 8,
    s.n_head_kv = 2, s.head_dim = 256, s.n_ff = 6144, s.n_vocab = 248320, s.n_ctx = 262144,
    s.rope_theta = 1e7f, s.rms_eps = 1e-6f, s.tied = true, s.qk_norm = true,
    s.full_attn_interval = 4, s.rope_dims = 64, s.dn_k_heads = 16, s.dn_v_heads = 16,
    s.dn_head_dim = 128, s.dn_conv = 4;
    v.push_back(s);
    // Fixture size: layers 2 and 5 are full attention, 0, 1, 3, 4 linear attention; twice as
    // many value heads as key heads (the tiling of key heads matters), rope on half of a head.
    // RMS eps 0.1: the gated RMSNorm of a DeltaNet output head rescales it to unit RMS, so with
    // random weights and a tiny eps a head whose output is near zero turns 8-bit activation
    // rounding into logit changes of 1.7 (llama.cpp's own Q8_0 run against its dequantized one);
    // at 0.1 they stay below 0.2, and a misplaced eps shows in the F32 comparison.
    s = {};
    s.name = "qwen35-tiny", s.arch = "qwen35", s.n_embd = 64, s.n_layer = 6, s.n_head = 4,
    s.n_head_kv = 2, s.head_dim = 16, s.n_ff = 128, s.n_vocab = 1024, s.n_ctx = 256,
    s.rope_theta = 1e7f, s.rms_eps = 0.1f, s.tied = true, s.qk_norm = true,
    s.full_attn_interval = 3, s.rope_dims = 8, s.dn_k_heads = 2, s.dn_v_heads = 4,
    s.dn_head_dim = 16, s.dn_conv = 4;
    v.push_back(s);
    return v;
  }();
  return shapes;
}

std::optional<SynthShape> find_shape(std::string_view name) {
  for (const auto& s : known_shapes())
    if (s.name == name) return s;
  return std::nullopt;
}

std::optional<FileType> parse_file_type(std::string_view name) {
  const std::string lower = to_lower(name);
  if (lower == "q4_k_m") return FileType{lower, TensorType::Q4_K, true};
  auto t = tensor_type_from_name(lower);
  if (!t || !info(*t).computable) return std::nullopt;
  return FileType{lower, *t, false};
}

TensorType tensor_type_for(const FileType& ft, const std::string& role, int layer, int n_layer,
                           int64_t cols, bool is_output) {
  TensorType t = ft.base;
  if (ft.q4_k_m) {
    if (is_output || ((role == "attn_v" || role == "ffn_down") && more_bits(layer, n_layer)))
      t = TensorType::Q6_K;
  }
  if (cols % 256 != 0) {
    if (t == TensorType::Q4_K || t == TensorType::Q2_K || t == TensorType::Q3_K)
      t = TensorType::Q4_0;
    if (t == TensorType::IQ4_XS) t = TensorType::IQ4_NL;
    if (t == TensorType::Q5_K || t == TensorType::Q6_K) t = TensorType::Q8_0;
  }
  return t;
}

SynthStats write_synth_model(const SynthShape& s, const FileType& ft, uint64_t seed,
                             const std::filesystem::path& out, bool overwrite, ThreadPool& pool,
                             const std::function<void(int done, int total)>& progress) {
  GgufWriter w;
  const std::string a = s.arch;
  w.set("general.architecture", GgufValue::of_string(a));
  w.set("general.name", GgufValue::of_string(fmt::format("reprise-synth-{}-{}", s.name, ft.name)));
  w.set("general.file_type", GgufValue::of_u32(ftype_number(ft)));
  w.set(a + ".context_length", GgufValue::of_u32(s.n_ctx));
  w.set(a + ".embedding_length", GgufValue::of_u32(s.n_embd));
  w.set(a + ".block_count", GgufValue::of_u32(s.n_layer));
  w.set(a + ".feed_forward_length", GgufValue::of_u32(s.n_ff));
  w.set(a + ".attention.head_count", GgufValue::of_u32(s.n_head));
  w.set(a + ".attention.head_count_kv", GgufValue::of_u32(s.n_head_kv));
  w.set(a + ".attention.key_length", GgufValue::of_u32(s.head_dim));
  w.set(a + ".attention.value_length", GgufValue::of_u32(s.head_dim));
  w.set(a + ".rope.dimension_count", GgufValue::of_u32(s.rope_dims > 0 ? s.rope_dims : s.head_dim));
  w.set(a + ".rope.freq_base", GgufValue::of_f32(s.rope_theta));
  w.set(a + ".attention.layer_norm_rms_epsilon", GgufValue::of_f32(s.rms_eps));
  if (s.arch == "llama") w.set(a + ".vocab_size", GgufValue::of_u32(s.n_vocab));
  if (s.sliding_window > 0)
    w.set(a + ".attention.sliding_window", GgufValue::of_u32(s.sliding_window));
  if (s.swa_period > 0)
    w.set(a + ".attention.sliding_window_pattern", GgufValue::of_u32(s.swa_period));
  if (s.rope_theta_swa > 0) w.set(a + ".rope.freq_base_swa", GgufValue::of_f32(s.rope_theta_swa));
  if (s.rope_orig_ctx > 0) {
    w.set(a + ".rope.scaling.original_context_length", GgufValue::of_u32(s.rope_orig_ctx));
    w.set(a + ".rope.scaling.attn_factor",
          GgufValue::of_f32(static_cast<float>(long_rope_attn_factor(s.n_ctx, s.rope_orig_ctx))));
  }
  if (s.attn_softcap > 0) w.set(a + ".attn_logit_softcapping", GgufValue::of_f32(s.attn_softcap));
  if (s.final_softcap > 0)
    w.set(a + ".final_logit_softcapping", GgufValue::of_f32(s.final_softcap));
  if (s.n_expert > 0) {
    w.set(a + ".expert_count", GgufValue::of_u32(s.n_expert));
    w.set(a + ".expert_used_count", GgufValue::of_u32(s.n_expert_used));
    if (s.arch != "llama") w.set(a + ".expert_feed_forward_length", GgufValue::of_u32(s.n_ff_exp));
  }
  const bool qwen35 = s.arch == "qwen35";
  if (qwen35) {
    // llama.cpp requires the M-RoPE sections: the rotated pairs split in three as Qwen's
    // [11, 11, 10] splits 32, so every pair sees the text position (none falls in section e).
    const int half = (s.rope_dims > 0 ? s.rope_dims : s.head_dim) / 2, t = (half + 2) / 3,
              h = (half - t + 1) / 2;
    w.set(a + ".rope.dimension_sections", i32_array({t, h, half - t - h, 0}));
    w.set(a + ".full_attention_interval", GgufValue::of_u32(s.full_attn_interval));
    w.set(a + ".ssm.conv_kernel", GgufValue::of_u32(s.dn_conv));
    w.set(a + ".ssm.state_size", GgufValue::of_u32(s.dn_head_dim));
    w.set(a + ".ssm.group_count", GgufValue::of_u32(s.dn_k_heads));
    w.set(a + ".ssm.time_step_rank", GgufValue::of_u32(s.dn_v_heads));
    w.set(a + ".ssm.inner_size", GgufValue::of_u32(s.dn_v_heads * s.dn_head_dim));
  }
  set_vocab(w, s);

  SynthStats stats;
  // A 2-D tensor [rows, cols] of N(0, std^2), quantized row by row on the pool.
  // `stack` > 0 writes a 3-D tensor [stack, rows / stack, cols] (experts) of the same rows.
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols, float std, TensorType t,
                    int64_t stack = 0) {
    const uint64_t rb = row_bytes(t, static_cast<uint64_t>(cols));
    std::vector<std::byte> data(rb * rows);
    const uint64_t stream = mix64(seed ^ hash_name(name));
    pool.parallel_for(rows, [&](int64_t r0, int64_t r1) {
      std::vector<float> row(static_cast<size_t>(cols + 1));
      for (int64_t r = r0; r < r1; ++r) {
        normal_fill(stream, static_cast<uint64_t>(r) * static_cast<uint64_t>(cols + (cols & 1)),
                    std, row.data(), cols);
        kernels::quantize_row(t, row.data(), data.data() + r * rb, cols);
      }
    });
    stats.bytes += data.size();
    stats.parameters += static_cast<uint64_t>(rows * cols);
    ++stats.tensors;
    std::vector<int64_t> shape = {rows, cols};
    if (stack > 0) shape = {stack, rows / stack, cols};
    w.add_tensor(name, t, std::move(shape), std::move(data));
  };
  // A 1-D F32 tensor: mean + N(0, std^2).
  auto vector = [&](const std::string& name, int64_t n, float mean, float std) {
    std::vector<float> v(static_cast<size_t>(n + 1));
    normal_fill(mix64(seed ^ hash_name(name)), 0, std, v.data(), n);
    std::vector<std::byte> data(n * sizeof(float));
    for (int64_t i = 0; i < n; ++i) {
      const float x = v[i] + mean;
      std::memcpy(&data[i * sizeof(float)], &x, sizeof(float));
    }
    stats.bytes += data.size();
    stats.parameters += static_cast<uint64_t>(n);
    ++stats.tensors;
    w.add_tensor(name, TensorType::F32, {n}, std::move(data));
  };
  auto type_of = [&](const std::string& role, int layer, int64_t cols, bool is_output) {
    return tensor_type_for(ft, role, layer, s.n_layer, cols, is_output);
  };

  const int64_t d = s.n_embd, q_dim = int64_t{s.n_head} * s.head_dim,
                kv_dim = int64_t{s.n_head_kv} * s.head_dim;
  const float embd_std = 1.0f / std::sqrt(static_cast<float>(d));
  matrix("token_embd.weight", s.n_vocab, d, embd_std, type_of("token_embd", -1, d, s.tied));
  if (!s.tied) matrix("output.weight", s.n_vocab, d, embd_std, type_of("output", -1, d, true));
  vector("output_norm.weight", d, 1.0f, 0.1f);
  // A 1-D F32 tensor of given values (rope factors).
  auto values = [&](const std::string& name, const std::vector<float>& f) {
    std::vector<std::byte> data(f.size() * sizeof(float));
    std::memcpy(data.data(), f.data(), data.size());
    stats.bytes += data.size();
    ++stats.tensors;
    w.add_tensor(name, TensorType::F32, {static_cast<int64_t>(f.size())}, std::move(data));
  };
  if (s.llama3_rope)
    values("rope_freqs.weight",
           llama3_rope_freq_factors(s.head_dim, s.rope_theta, 32.0, 1.0, 4.0, 8192.0));
  if (s.rope_orig_ctx > 0) {
    const int pairs = (s.rope_dims > 0 ? s.rope_dims : s.head_dim) / 2;
    const double extension = static_cast<double>(s.n_ctx) / s.rope_orig_ctx;
    values("rope_factors_long.weight", long_rope_factors(pairs, extension, /*long_ctx=*/true));
    values("rope_factors_short.weight", long_rope_factors(pairs, extension, /*long_ctx=*/false));
  }
  if (progress) progress(1, s.n_layer + 1);
  const float in_std = 1.0f / std::sqrt(static_cast<float>(d));
  const bool gemma = s.arch == "gemma2" || s.arch == "gemma3";
  const bool phi3 = s.arch == "phi3";
  for (int l = 0; l < s.n_layer; ++l) {
    auto n = [&](const char* role) { return fmt::format("blk.{}.{}.weight", l, role); };
    vector(n("attn_norm"), d, 1.0f, 0.1f);
    if (qwen35) {
      write_qwen35_mixer(s, l, d, in_std, matrix, vector, type_of);
      vector(n("post_attention_norm"), d, 1.0f, 0.1f);  // the FFN's input norm
      matrix(n("ffn_gate"), s.n_ff, d, in_std, type_of("ffn_gate", l, d, false));
      matrix(n("ffn_up"), s.n_ff, d, in_std, type_of("ffn_up", l, d, false));
      matrix(n("ffn_down"), d, s.n_ff, 1.0f / std::sqrt(static_cast<float>(s.n_ff)),
             type_of("ffn_down", l, s.n_ff, false));
      if (progress) progress(l + 2, s.n_layer + 1);
      continue;
    }
    if (phi3) {  // fused Q, K, V
      matrix(n("attn_qkv"), q_dim + 2 * kv_dim, d, in_std, type_of("attn_qkv", l, d, false));
    } else {
      matrix(n("attn_q"), q_dim, d, in_std, type_of("attn_q", l, d, false));
      matrix(n("attn_k"), kv_dim, d, in_std, type_of("attn_k", l, d, false));
      matrix(n("attn_v"), kv_dim, d, in_std, type_of("attn_v", l, d, false));
    }
    if (s.qkv_bias) {
      vector(fmt::format("blk.{}.attn_q.bias", l), q_dim, 0.0f, 0.1f);
      vector(fmt::format("blk.{}.attn_k.bias", l), kv_dim, 0.0f, 0.1f);
      vector(fmt::format("blk.{}.attn_v.bias", l), kv_dim, 0.0f, 0.1f);
    }
    if (s.qk_norm) {
      vector(n("attn_q_norm"), s.head_dim, 1.0f, 0.1f);
      vector(n("attn_k_norm"), s.head_dim, 1.0f, 0.1f);
    }
    matrix(n("attn_output"), d, q_dim, 1.0f / std::sqrt(static_cast<float>(q_dim)),
           type_of("attn_output", l, q_dim, false));
    if (gemma) vector(n("post_attention_norm"), d, 1.0f, 0.1f);
    vector(n("ffn_norm"), d, 1.0f, 0.1f);
    if (s.n_expert > 0) {
      const int64_t E = s.n_expert, ff = s.n_ff_exp;
      matrix(n("ffn_gate_inp"), E, d, in_std, TensorType::F32);
      matrix(n("ffn_gate_exps"), E * ff, d, in_std, type_of("ffn_gate_exps", l, d, false), E);
      matrix(n("ffn_up_exps"), E * ff, d, in_std, type_of("ffn_up_exps", l, d, false), E);
      matrix(n("ffn_down_exps"), E * d, ff, 1.0f / std::sqrt(static_cast<float>(ff)),
             type_of("ffn_down", l, ff, false), E);
    } else if (phi3) {  // fused gate and up: the gate's rows, then the up rows
      matrix(n("ffn_up"), 2 * int64_t{s.n_ff}, d, in_std, type_of("ffn_up", l, d, false));
      matrix(n("ffn_down"), d, s.n_ff, 1.0f / std::sqrt(static_cast<float>(s.n_ff)),
             type_of("ffn_down", l, s.n_ff, false));
    } else {
      matrix(n("ffn_gate"), s.n_ff, d, in_std, type_of("ffn_gate", l, d, false));
      matrix(n("ffn_up"), s.n_ff, d, in_std, type_of("ffn_up", l, d, false));
      matrix(n("ffn_down"), d, s.n_ff, 1.0f / std::sqrt(static_cast<float>(s.n_ff)),
             type_of("ffn_down", l, s.n_ff, false));
    }
    if (gemma) vector(n("post_ffw_norm"), d, 1.0f, 0.1f);
    if (progress) progress(l + 2, s.n_layer + 1);
  }
  w.write(out, overwrite);
  return stats;
}

}  // namespace reprise::synth
