// Architecture hyperparameters of a llama-family model, read from GGUF metadata or config.json.
#pragma once

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

namespace reprise {

class GgufFile;

enum class Arch { Llama, Qwen2, Qwen3, Qwen3Moe, Phi3, Gemma2, Gemma3, SmolLM3, Qwen35 };

// The gated FFN's activation: act(h Wg^T) * (h Wu^T).
enum class FfnAct {
  Silu,      // SwiGLU (Llama, Qwen)
  GeluTanh,  // GeGLU with the tanh approximation of GELU (Gemma)
};

// How rotary embeddings pair up dimensions inside a head of size d:
// Interleaved rotates (x[2i], x[2i+1]) (GGUF llama, llama.cpp's "normal" rope);
// Neox rotates (x[i], x[i + d/2]) (Qwen, and every Hugging Face checkpoint's rotate_half).
enum class RopeStyle { Interleaved, Neox };

// What one physical layer's attention is. It belongs to the layer, not to a path position: a
// path that repeats or reorders the layer keeps it.
struct LayerAttn {
  // Sliding window in tokens: a query at position p sees keys p - window + 1 .. p. 0 = global
  // (every earlier key).
  int window = 0;
  float rope_theta = 10000.0f;
  float rope_freq_scale = 1.0f;  // positions are multiplied by it (linear rope scaling); 1 = none
  bool rope = true;              // false: q and k are not rotated at all (SmolLM3's NoPE layers)
};

// Shapes of a Gated DeltaNet (linear-attention) layer of a Qwen3.5 hybrid. q and k have n_k_heads
// heads of head_k_dim, v has n_v_heads heads of head_v_dim. The short causal convolution runs over
// the concatenated [q, k, v] channels with conv_kernel taps.
struct DeltaNetShape {
  int n_k_heads = 0, n_v_heads = 0, head_k_dim = 0, head_v_dim = 0, conv_kernel = 0;
  // Which key head a value head reads, i.e. the order of the value heads in every tensor that
  // has one row (or column, or channel) block per value head. Hugging Face checkpoints group
  // them by key head (value head h reads key head h / (n_v_heads / n_k_heads)); GGUF files are
  // converted to tiled order (h reads h % n_k_heads, as llama.cpp 0c1e570 broadcasts). Every
  // per-head step is the same in either order, so the weights are used as the file stores them.
  bool v_heads_grouped = false;
  int key_dim() const { return n_k_heads * head_k_dim; }
  int value_dim() const { return n_v_heads * head_v_dim; }
  int conv_dim() const { return 2 * key_dim() + value_dim(); }
  int key_head(int v_head) const {
    return v_heads_grouped ? v_head / (n_v_heads / n_k_heads) : v_head % n_k_heads;
  }
};

// The rope frequency scaling one sequence runs with: which factors apply depends on its context
// size for long-rope models (HParams::rope_scaling). `factors` views the HParams' own vectors.
struct RopeScaling {
  enum class Kind { None, Llama3, LongRopeShort, LongRopeLong };
  Kind kind = Kind::None;
  std::span<const float> factors;  // per-frequency divisors, rotary_dims() / 2; empty = none
  float attn_factor = 1.0f;        // cos and sin are multiplied by it
};

struct HParams {
  Arch arch = Arch::Llama;
  std::string arch_name;  // "llama", "qwen2", "qwen3", "qwen3moe", "phi3", "gemma2", "gemma3"
  int n_vocab = 0;
  int n_embd = 0;     // d_model
  int n_layer = 0;    // physical blocks in the file
  int n_head = 0;     // query heads
  int n_head_kv = 0;  // key/value heads (GQA when < n_head)
  int head_dim = 0;
  int n_ff = 0;  // FFN hidden size (of a dense block)
  // Mixture of experts (qwen3moe, Mixtral-style llama): every block routes each token to
  // n_expert_used of n_expert gated FFNs of width n_ff_exp. 0 experts = dense blocks.
  int n_expert = 0;
  int n_expert_used = 0;
  int n_ff_exp = 0;
  int n_ctx_train = 2048;
  float rms_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopeStyle rope_style = RopeStyle::Interleaved;
  // Per-frequency divisors (rotary_dims() / 2 of them) for Llama 3 style rope scaling (GGUF
  // rope_freqs); empty = none. They win over long-rope factors, as in llama.cpp.
  std::vector<float> rope_freq_factors;
  // Phi-3 long-rope ("longrope", formerly "su") scaling: two sets of per-frequency divisors
  // (rotary_dims() / 2 each; empty = none). A sequence whose context is longer than
  // rope_orig_ctx runs the long ones, any other the short ones: see rope_scaling().
  std::vector<float> rope_long_factors, rope_short_factors;
  int rope_orig_ctx = 0;  // rope.scaling.original_context_length; 0 = n_ctx_train
  // Rope's cos and sin are multiplied by it (rope.scaling.attn_factor; long-rope's
  // sqrt(1 + ln(s) / ln(original context)) for a context extended s times). 1 = none.
  float rope_attn_factor = 1.0f;
  bool qkv_bias = false;     // Qwen2: biases on Q, K, V
  bool qk_norm = false;      // Qwen3: RMSNorm over each head of Q and K
  bool tied_output = false;  // output head shares the token embedding

  // Gemma 2/3. Defaults are the Llama/Qwen block.
  float embd_scale = 1.0f;  // token embeddings are multiplied by it (Gemma: sqrt(n_embd))
  bool post_norms = false;  // RMSNorm of the attention and FFN outputs before each add
  FfnAct ffn_act = FfnAct::Silu;
  float attn_scale = 0.0f;     // query-key score scale; 0 = 1 / sqrt(head_dim)
  float attn_softcap = 0.0f;   // scores s -> c tanh(s / c) before the softmax; 0 = none
  float final_softcap = 0.0f;  // the same on the output logits; 0 = none
  // One entry per physical layer when layers differ (sliding-window and global layers, layers
  // without rope); empty when every layer is global with rope_theta: use layer_attn().
  std::vector<LayerAttn> layers;

  // Qwen3.5 hybrid (qwen35). Defaults change nothing for the other architectures.
  int rope_dims = 0;  // leading dimensions of a head that rope rotates; 0 = head_dim
  // M-RoPE sections (t, h, w, e) of the rotated pairs; empty = plain rope. For text every
  // section sees the token's position except e, which llama.cpp 0c1e570 feeds position 0:
  // pairs that its interleaved layout gives to e do not turn (rope_pair_turns()).
  std::vector<int> rope_sections;
  bool attn_out_gate = false;  // attn_q yields [query, gate] per head; output *= sigmoid(gate)
  DeltaNetShape delta;         // shapes of the linear-attention layers
  // One flag per physical layer: true = Gated DeltaNet (linear attention, a recurrent state),
  // false = full attention. Empty = every layer is attention.
  std::vector<bool> recurrent;

  bool is_recurrent(int layer) const {
    return !recurrent.empty() && recurrent[static_cast<size_t>(layer)];
  }
  bool hybrid() const { return !recurrent.empty(); }
  int rotary_dims() const { return rope_dims > 0 ? rope_dims : head_dim; }
  bool rope_pair_turns(int pair) const;

  // The context a session gets when none is asked for: the training context, capped at 4096.
  int default_ctx() const { return std::min(n_ctx_train, 4096); }
  // The rope scaling of a sequence whose KV cache holds n_ctx positions. As llama.cpp 0c1e570
  // chooses (llama_model::get_rope_factors): rope_freqs if present, else the long-rope long
  // factors when n_ctx exceeds the original context, else the short ones. (llama.cpp first
  // rounds its context up to a multiple of 256; reprise uses the context as given, which
  // chooses the same for every original context that is such a multiple, as Phi's 4096 is.)
  RopeScaling rope_scaling(int n_ctx) const;
  int long_rope_orig_ctx() const { return rope_orig_ctx > 0 ? rope_orig_ctx : n_ctx_train; }

  LayerAttn layer_attn(int layer) const {
    return layers.empty() ? LayerAttn{0, rope_theta, 1.0f} : layers[static_cast<size_t>(layer)];
  }
  float score_scale() const {
    return attn_scale > 0 ? attn_scale : 1.0f / std::sqrt(float(head_dim));
  }

  bool moe() const { return n_expert > 0; }
  int q_dim() const { return n_head * head_dim; }
  int kv_dim() const { return n_head_kv * head_dim; }
};

// Maps an architecture name ("llama", "qwen2", "qwen3", "qwen3moe", "phi3", "gemma2", "gemma3",
// "qwen35") to Arch; throws Error listing the known names otherwise. `source` names the file or
// field for the message.
Arch parse_arch(const std::string& name, const std::string& source);

// Whether block `layer` of a smollm3 file rotates q and k: every fourth block (3, 7, ...) does
// not, a rule fixed by block index (llama.cpp 0c1e570 reads no key for it).
bool smollm3_block_has_rope(int layer);

// Reads `<arch>.*` metadata. Throws FormatError naming the file and the missing/invalid key.
HParams hparams_from_gguf(const GgufFile& gguf);

}  // namespace reprise
