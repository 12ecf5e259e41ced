// Exporting a model along a layer path to the formats other runtimes load:
//   gguf      llama.cpp / Ollama: blocks physically copied in path order and renumbered
//   hf        transformers / vLLM: config.json + model.safetensors (sharded above a size limit)
//   mergekit  a passthrough recipe whose layer_range slices reproduce the path
//   exl3      ExLlamaV3's layer_map string (one line), which its runtime follows over the
//             source model's own weights
//
// The exported model run along its plain path computes what the source computes along the path
// (bit for bit when tensor types are kept; see docs/export.md for the one exception, the Llama
// Q/K row order between GGUF and Hugging Face). Output appears all at once or not at all: files
// are written under temporary names and renamed, an HF directory is assembled beside its final
// name and renamed into place.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/layer_path.h"
#include "format/tensor_type.h"
#include "model/model.h"

namespace reprise::exporter {

enum class Format { Gguf, Hf, Mergekit, Exl3 };

// "gguf", "hf", "mergekit", "exl3" (also "safetensors" for hf, "yaml" for mergekit, "layer_map"
// for exl3); Error otherwise.
Format parse_format(std::string_view name);
// The format an output name implies: *.gguf, *.yaml / *.yml, else nullopt.
std::optional<Format> format_from_output(const std::filesystem::path& out);

// What --type asks for. keep: each tensor keeps its type (an HF export turns quantized matrices
// into F32, since safetensors has no ggml block types). Q4_K_M: llama.cpp's mix, see
// output_type(). 1-D tensors (norms, biases, rope factors) are F32 in every case.
struct TypeSpec {
  enum class Kind { Keep, Fixed, Q4_K_M };
  Kind kind = Kind::Keep;
  TensorType type = TensorType::F32;  // for Fixed
  std::string name = "keep";
};
// keep, F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
// IQ4_XS, Q4_K_M (case-insensitive).
TypeSpec parse_type_spec(std::string_view name);

struct ExportOptions {
  Format format = Format::Gguf;
  TypeSpec type;
  bool force = false;  // replace an existing output
  bool alias = false;  // GGUF: repeated blocks share one copy of their data (see docs)
  uint64_t max_shard_bytes = 5'000'000'000;  // HF: shard above this many bytes of tensors
  std::string name;                          // GGUF general.name; default: source name + the path
  std::string model_ref;                     // mergekit `model:`; default: the source path as given
  int n_threads = 0;                         // conversion threads; 0 = all cores
};

struct ExportResult {
  std::vector<std::filesystem::path> files;  // written, relative to the output for HF
  uint64_t tensor_bytes = 0;                 // tensor data written (aliases count nothing)
  int n_tensors = 0;
  std::vector<std::string> notes;  // type fallbacks, dequantizations, dropped tensors
};

// Writes `model` along `path` to `out`. Throws Error (one line naming the output, argument or
// file) for an invalid request, an existing output without force, or any I/O failure; no file or
// temporary is left behind then.
ExportResult export_model(const Model& model, const LayerPath& path,
                          const std::filesystem::path& out, const ExportOptions& opts);

// ExLlamaV3's `layer_map` for `path`: comma-separated layer indices and inclusive a..b ranges
// (its Config docstring, turboderp-org/exllamav3 exllamav3/model/config.py), which is reprise's
// canonical form of an undamped path. Throws Error for an empty or a damped path (ExLlamaV3 has
// no residual weight).
std::string exl3_layer_map(const LayerPath& path);

// The llama.cpp Q4_K_M rule for one 2-D tensor (by its output GGUF role, e.g. "attn_v.weight",
// at output block `block` of `n_blocks`; block = -1 for non-block tensors): Q6_K or Q4_K.
TensorType q4_k_m_type(std::string_view role, int block, int n_blocks, bool is_output_head);

}  // namespace reprise::exporter
