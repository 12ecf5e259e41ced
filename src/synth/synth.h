// Random-weight models at the real shapes of published checkpoints, for benchmarks and tests
// that need a model of realistic size without shipping one.
//
// Weights are seeded and reproducible (independent of the thread count): projections
// N(0, 1/fan_in), embeddings N(0, 1/n_embd), norm gains 1 + N(0, 0.1), biases N(0, 0.1). The
// vocabulary has the real size: 256 byte tokens in GPT-2's byte-level alphabet, 676 merges of
// lowercase letter pairs, <|endoftext|>/<|im_start|>/<|im_end|>, then control tokens
// <|synth_N|> up to the size, so both reprise and llama.cpp load the file and tokenize text.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "format/tensor_type.h"
#include "util/thread_pool.h"

namespace reprise::synth {

struct SynthShape {
  std::string name;  // "qwen2.5-0.5b"
  std::string arch;  // "llama", "qwen2", "qwen3", "qwen3moe", "phi3", "gemma2", "gemma3", "qwen35"
  int n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0, n_vocab = 0;
  int n_ctx = 0;
  float rope_theta = 10000, rms_eps = 1e-6f;
  bool tied = true, qkv_bias = false, qk_norm = false;
  bool llama3_rope = false;  // Llama 3.x rope frequency factors (factor 32, low 1, high 4, 8192)
  // > 0 (phi3): Phi-3 long-rope scaling from this original context to n_ctx, written as the
  // converter writes it: rope_factors_long/short.weight (rotated pairs each, shaped like
  // Phi-4-mini's: long ones ramp from 1 to n_ctx / original over the pairs, short ones stay near
  // 1), rope.scaling.original_context_length and rope.scaling.attn_factor.
  int rope_orig_ctx = 0;
  // Gemma (arch gemma2/gemma3: post-attention and post-FFN norms, gemma3 also QK-norm). Each is
  // written to the file only when set; 0 leaves the key out (the architecture's default).
  int sliding_window = 0;                     // attention.sliding_window
  int swa_period = 0;                         // attention.sliding_window_pattern (a period)
  float rope_theta_swa = 0;                   // rope.freq_base_swa
  float attn_softcap = 0, final_softcap = 0;  // attn_logit_softcapping, final_logit_softcapping
  // Mixture of experts (qwen3moe, or llama as Mixtral): n_expert > 0 replaces every block's FFN
  // by a router (ffn_gate_inp, kept F32 as llama-quantize keeps it) and 3-D expert tensors of
  // width n_ff_exp (qwen3moe writes expert_feed_forward_length; llama's experts are n_ff wide).
  int n_expert = 0, n_expert_used = 0, n_ff_exp = 0;
  // rope_dims > 0: rope rotates only that many leading dimensions of a head (Phi-4-mini's partial
  // rotary, Qwen3.5's attention layers).
  // Qwen3.5 hybrid (arch qwen35): every full_attn_interval-th layer is gated full attention that
  // rotates rope_dims dimensions of a head, the others are Gated DeltaNet layers with dn_k_heads
  // key heads and dn_v_heads value heads of dn_head_dim, and a conv of dn_conv taps.
  int full_attn_interval = 0, rope_dims = 0;
  int dn_k_heads = 0, dn_v_heads = 0, dn_head_dim = 0, dn_conv = 0;
};

// The shapes `--like` knows, and a lookup by name (nullopt if unknown). The "-tiny" shapes are
// test-fixture sizes of an architecture (every feature, a few hundred kilobytes).
const std::vector<SynthShape>& known_shapes();
std::optional<SynthShape> find_shape(std::string_view name);

// A file type: every 2-D tensor in one type, or llama.cpp's Q4_K_M mix (Q6_K for the output /
// tied embedding and for a share of attn_v and ffn_down, Q4_K elsewhere). Rows whose length is
// not a multiple of 256 cannot hold K-quant blocks; like llama.cpp, such tensors fall back to a
// 32-block type (Q2_K, Q3_K and Q4_K -> Q4_0, Q5_K and Q6_K -> Q8_0, IQ4_XS -> IQ4_NL). 1-D
// tensors (norms, biases) stay F32.
struct FileType {
  std::string name;  // "q4_k_m", "f16", ...
  TensorType base = TensorType::F32;
  bool q4_k_m = false;
};
std::optional<FileType> parse_file_type(std::string_view name);

// The type a 2-D tensor gets. `layer`/`n_layer` place attn_v / ffn_down for the Q4_K_M mix.
TensorType tensor_type_for(const FileType& ft, const std::string& role, int layer, int n_layer,
                           int64_t cols, bool is_output);

struct SynthStats {
  uint64_t tensors = 0, bytes = 0, parameters = 0;
};

// Generates and writes the model (refuses to overwrite unless `overwrite`). `progress`, if set,
// is called with (parts done, n_layer + 1) after each part is generated: the embeddings and
// output head (a large share of a small model), then each layer. The file is written after the
// last call.
SynthStats write_synth_model(const SynthShape& shape, const FileType& type, uint64_t seed,
                             const std::filesystem::path& out, bool overwrite, ThreadPool& pool,
                             const std::function<void(int done, int total)>& progress = {});

}  // namespace reprise::synth
