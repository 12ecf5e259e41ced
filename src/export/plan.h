// Internal to export/: which tensors an export writes, where each one's bytes come from, and how
// they are converted (type, and the Llama Q/K row order between GGUF and Hugging Face).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/layer_path.h"
#include "export/export.h"
#include "format/tensor_view.h"
#include "model/model.h"
#include "util/thread_pool.h"

namespace reprise::exporter {

// Naming and Q/K row convention of a file family.
enum class Layout { Gguf, Hf };

// GGUF llama stores each head's Q/K rows for interleaved rope (pairs 2i, 2i+1); Hugging Face for
// rotate-half rope (pairs i, i + d/2). For W_hf of n heads of size d:
//   W_gguf = W_hf.reshape(n, 2, d/2, in).swapaxes(1, 2).reshape(n * d, in)
enum class RowOrder { Same, HalvesToInterleaved, InterleavedToHalves };

struct PlannedTensor {
  std::string role;  // GGUF-style name in the output ("blk.5.attn_q.weight")
  std::string name;  // name in the output file (role, or its HF name)
  const TensorView* src = nullptr;
  std::vector<float> values;  // used instead of src when set (computed rope factors)
  TensorType type = TensorType::F32;
  std::vector<int64_t> shape;  // row-major, as the source
  RowOrder order = RowOrder::Same;
  int head_dim = 0;  // for a RowOrder change
  int block = -1;    // output block (path position), -1 for global tensors
  int same_as = -1;  // earlier planned tensor with identical bytes (for --alias)
  uint64_t nbytes = 0;
  // Factor the values are multiplied by: the residual weight of a damped path position, applied
  // to the last weights of each sublayer (attn_output and ffn_down or the experts' ffn_down_exps;
  // Gemma's post-sublayer norms instead).
  float scale = 1.0f;

  // The output bytes are exactly the source bytes (no conversion, no reordering).
  bool verbatim() const {
    return src && values.empty() && src->type == type && order == RowOrder::Same && scale == 1.0f;
  }
};

struct Plan {
  std::vector<PlannedTensor> tensors;
  std::vector<std::string> notes;
  bool tied_output = false;  // no separate output head is written
};

// The source tensor playing a GGUF role ("token_embd.weight", "blk.3.ffn_up.weight"), or nullptr.
const TensorView* source_tensor(const Model& m, const std::string& role);
// The Hugging Face name of a GGUF role.
std::string hf_name(const std::string& role);

// Lists the output tensors of `m` along `path` for `layout` with the types `type` asks for. A
// damped position's attn_output and ffn_down (or Gemma's post norms) get scale = its weight:
// W (alpha x) = (alpha W) x, so the plain exported model computes the damped path (up to one
// rounding of each scaled weight).
// Throws Error for a type the layout cannot hold (HF + quantized).
Plan make_plan(const Model& m, const LayerPath& path, Layout layout, const TypeSpec& type);

// Writes t's output bytes (t.nbytes of them), converting rows on the pool's threads.
void produce(const PlannedTensor& t, std::span<std::byte> out, ThreadPool& pool);

}  // namespace reprise::exporter
