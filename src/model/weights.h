// Read-only views of a model's parameters. Matrices are views into the mapped file(s); only the
// 1-D parameters (norm gains, biases) are converted to owned F32 vectors, which costs a few
// kilobytes per layer and lets every file type share one forward pass.
#pragma once

#include <vector>

#include "format/tensor_view.h"

namespace reprise {

// One expert of a mixture-of-experts block: a gated FFN of width n_ff_exp, each matrix a 2-D
// view of one slice of the file's 3-D expert tensor (no copy).
struct ExpertWeights {
  TensorView w_gate;  // [n_ff_exp, n_embd]
  TensorView w_up;    // [n_ff_exp, n_embd]
  TensorView w_down;  // [n_embd, n_ff_exp]
};

// A Gated DeltaNet (linear-attention) layer of a Qwen3.5 hybrid; shapes from HParams::delta
// (conv_dim = 2 key_dim + value_dim).
struct DeltaNetWeights {
  TensorView w_qkv;            // [conv_dim, n_embd] (attn_qkv): q, k, v channels before the conv
  TensorView w_z;              // [value_dim, n_embd] (attn_gate): the output gate
  TensorView w_beta;           // [n_v_heads, n_embd] (ssm_beta): write strength, sigmoid
  TensorView w_alpha;          // [n_v_heads, n_embd] (ssm_alpha): decay input
  TensorView w_out;            // [n_embd, value_dim] (ssm_out)
  std::vector<float> conv;     // [conv_dim, conv_kernel] (ssm_conv1d): taps, oldest first
  std::vector<float> dt_bias;  // [n_v_heads] (ssm_dt.bias)
  std::vector<float> a;        // [n_v_heads] (ssm_a): -exp(A_log), as the converter stores it
  std::vector<float> norm;     // [head_v_dim] (ssm_norm): RMSNorm of each output head
};

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
  TensorView w_gate;                  // [n_ff, n_embd]; empty in an MoE block
  TensorView w_up;                    // [n_ff, n_embd]; empty in an MoE block
  TensorView w_down;                  // [n_embd, n_ff]; empty in an MoE block
  // Mixture of experts (HParams::moe()): the router and the experts, in place of the FFN above.
  TensorView router;                   // [n_expert, n_embd] (ffn_gate_inp)
  std::vector<ExpertWeights> experts;  // n_expert of them
  // Qwen3.5: a linear-attention layer (HParams::is_recurrent) has these in place of wq..wo (a
  // full-attention layer's wq is [2 q_dim, n_embd]: query and gate rows per head).
  DeltaNetWeights delta;

  bool moe() const { return !experts.empty(); }
  // Bytes of matrix weights this block references in the mapped file (every expert).
  uint64_t matrix_bytes() const;
  // Bytes of matrix weights one token reads, and the multiply-adds x 2 it does: the attention,
  // the router and n_expert_used experts (every matrix of a dense block).
  uint64_t token_matrix_bytes(int n_expert_used) const;
  double token_matmul_flops(int n_expert_used) const;
};

struct Weights {
  TensorView token_embd;             // [n_vocab, n_embd]
  std::vector<float> output_norm;    // [n_embd]
  TensorView output;                 // [n_vocab, n_embd]; the embedding itself when tied
  std::vector<BlockWeights> blocks;  // one per physical layer, indexed by layer number
};

}  // namespace reprise
