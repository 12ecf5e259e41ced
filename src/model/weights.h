// Read-only views of a model's parameters. Matrices are views into the mapped file(s); only the
// 1-D parameters (norm gains, biases) are converted to owned F32 vectors, which costs a few
// kilobytes per layer and lets every file type share one forward pass.
#pragma once

#include <vector>

#include "format/tensor_view.h"

namespace reprise {

// One physical transformer block. Matrices are [out, in] row-major (one output per row).
struct BlockWeights {
  std::vector<float> attn_norm;       // [n_embd]
  TensorView wq;                      // [n_head * head_dim, n_embd]
  TensorView wk;                      // [n_head_kv * head_dim, n_embd]
  TensorView wv;                      // [n_head_kv * head_dim, n_embd]
  TensorView wo;                      // [n_embd, n_head * head_dim]
  std::vector<float> bq, bk, bv;      // [q_dim], [kv_dim], [kv_dim]; empty unless Qwen2
  std::vector<float> q_norm, k_norm;  // [head_dim]; empty unless Qwen3
  std::vector<float> attn_post_norm;  // [n_embd]; empty unless Gemma (norm of the attention output)
  std::vector<float> ffn_norm;        // [n_embd]
  std::vector<float> ffn_post_norm;   // [n_embd]; empty unless Gemma (norm of the FFN output)
  TensorView w_gate;                  // [n_ff, n_embd]
  TensorView w_up;                    // [n_ff, n_embd]
  TensorView w_down;                  // [n_embd, n_ff]

  // Bytes of matrix weights this block references in the mapped file.
  uint64_t matrix_bytes() const;
};

struct Weights {
  TensorView token_embd;           // [n_vocab, n_embd]
  std::vector<float> output_norm;  // [n_embd]
  TensorView output;               // [n_vocab, n_embd]; the embedding itself when tied
  std::vector<BlockWeights> blocks;  // one per physical layer, indexed by layer number
};

}  // namespace reprise
