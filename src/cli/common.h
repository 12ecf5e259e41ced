// Options and helpers shared by the subcommands.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/layer_path.h"
#include "engine/sampler.h"
#include "engine/session.h"
#include "model/model.h"

namespace reprise::cli {

// The subcommand that parsing selected; returns the process exit code.
using Runner = std::function<int()>;

// The help text of every --path option.
inline constexpr const char* kLayerPathHelp =
    "layer path: '0..3,1..4', 'repeat:I:J[:K]', 'skip:I:J', or a mergekit passthrough recipe "
    "file (default: all layers)";

// -m MODEL, --path SPEC, -t THREADS, -c/--ctx N: every command that runs a model has them.
struct ModelOptions {
  std::string model;
  std::string path;
  int threads = 0;
  int ctx = 0;
  std::string kv_type = "f32";
  int gpu_layers = -1;  // llama.cpp's -ngl, accepted and ignored (reprise runs on the CPU)

  // Whether -m must be given (eval --list runs without a model).
  enum class ModelFlag { Required, Optional };
  void add_to(CLI::App& sub, bool with_path = true, ModelFlag model_flag = ModelFlag::Required);
  // Loads the model; warns on stderr when --ctx exceeds its training context or -ngl was given.
  std::unique_ptr<Model> load() const;
  // --path as notation, or the path a mergekit passthrough recipe file describes.
  LayerPath layer_path(const Model& m) const;
  SessionOptions session_options() const;
};

// `spec` as layer path notation: unchanged, or, when it names a file, the canonical path of the
// mergekit passthrough recipe in it, its ranges checked against `n_layer` when > 0. Throws Error
// naming the file (and line) for a recipe reprise cannot read.
std::string layer_path_spec(const std::string& spec, int n_layer = 0);

// Warns on stderr when `n_ctx` (given by `flag`) exceeds the model's training context: positions
// beyond it were never trained, and the cache for them still costs memory.
void warn_if_beyond_training_context(const Model& m, int n_ctx, const char* flag);

// --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n into `s`.
void add_sampling_options(CLI::App& sub, SamplerOptions& s);

// Checks, before any work, that `path` can be written: its folder exists and is writable, it is
// not a folder, and it does not exist unless `overwrite`. Throws Error naming `option` and path.
void check_output_file(const std::string& path, bool overwrite, const char* option);

// Rewrites llama.cpp's multi-letter single-dash flags (-ngl) to their long forms, which CLI11
// can parse; returns the new argument list.
std::vector<std::string> normalize_llama_flags(int argc, char** argv);

// A repeated option takes its last value (as in llama.cpp and most tools) instead of failing.
void take_last_of_repeated_options(CLI::App& app);

// Parses "1,2,3" into token ids; throws Error naming the bad token.
std::vector<int32_t> parse_token_list(const std::string& s);

// Tokenizes a prompt; throws Error if the model has no vocabulary.
std::vector<int32_t> tokenize_prompt(const Model& m, const std::string& prompt, bool add_bos,
                                     bool parse_special);

}  // namespace reprise::cli
