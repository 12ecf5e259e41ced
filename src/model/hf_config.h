// Hyperparameters from a Hugging Face config.json (the classes listed in hf_config.cpp's kArchs:
// Llama, Qwen2/3, Qwen3-MoE, Mixtral, Phi-3, Gemma 2/3, and Qwen3.5's text model, also inside a
// Qwen3_5ForConditionalGeneration's text_config), with the defaults transformers applies to fields
// a config leaves out.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

#include "model/hparams.h"

namespace reprise {

// `source` names the config (its path) in messages. Throws FormatError for a missing or ill-typed
// field and for sizes that cannot describe a model; Error for an architecture or rope scaling type
// reprise does not run. rope_style is always Neox: HF checkpoints store Q/K rows for rotate-half
// rope, so their weights are used as they are (GGUF llama permutes those rows for interleaved
// rope).
HParams hparams_from_hf_config(const nlohmann::json& config, const std::string& source);

// Phi-3 long-rope's attention factor for a model extended from original_positions to
// max_positions: sqrt(1 + ln(extension) / ln(original)), 1 when not extended (transformers'
// longrope default, and what llama.cpp's converter writes as rope.scaling.attn_factor).
double long_rope_attn_factor(double max_positions, double original_positions);

// Llama 3 rope scaling: the divisor of each of the head_dim / 2 rope frequencies
// (theta_i = pos * base^(-2i/head_dim) / factor_i), as transformers and llama.cpp compute it.
std::vector<float> llama3_rope_freq_factors(int head_dim, double rope_theta, double factor,
                                            double low_freq_factor, double high_freq_factor,
                                            double original_max_positions);

}  // namespace reprise
