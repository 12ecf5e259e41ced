// Architecture hyperparameters of a llama-family model, read from GGUF metadata or config.json.
#pragma once

#include <string>
#include <vector>

namespace reprise {

class GgufFile;

enum class Arch { Llama, Qwen2, Qwen3 };

// How rotary embeddings pair up dimensions inside a head of size d:
// Interleaved rotates (x[2i], x[2i+1]) (GGUF llama, llama.cpp's "normal" rope);
// Neox rotates (x[i], x[i + d/2]) (Qwen, and every Hugging Face checkpoint's rotate_half).
enum class RopeStyle { Interleaved, Neox };

struct HParams {
  Arch arch = Arch::Llama;
  std::string arch_name;  // "llama", "qwen2", "qwen3"
  int n_vocab = 0;
  int n_embd = 0;     // d_model
  int n_layer = 0;    // physical blocks in the file
  int n_head = 0;     // query heads
  int n_head_kv = 0;  // key/value heads (GQA when < n_head)
  int head_dim = 0;
  int n_ff = 0;  // FFN hidden size
  int n_ctx_train = 2048;
  float rms_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopeStyle rope_style = RopeStyle::Interleaved;
  // Per-frequency divisors (head_dim / 2 of them) for Llama 3 style rope scaling; empty = none.
  std::vector<float> rope_freq_factors;
  bool qkv_bias = false;     // Qwen2: biases on Q, K, V
  bool qk_norm = false;      // Qwen3: RMSNorm over each head of Q and K
  bool tied_output = false;  // output head shares the token embedding

  int q_dim() const { return n_head * head_dim; }
  int kv_dim() const { return n_head_kv * head_dim; }
};

// Maps an architecture name ("llama", "qwen2", "qwen3") to Arch; throws Error listing the known
// names otherwise. `source` names the file or field for the message.
Arch parse_arch(const std::string& name, const std::string& source);

// Reads `<arch>.*` metadata. Throws FormatError naming the file and the missing/invalid key.
HParams hparams_from_gguf(const GgufFile& gguf);

}  // namespace reprise
