// Loading llama.cpp reference outputs (shared/golden/*.json) and comparing logits with them.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "support/logits.h"

namespace reprise::test {

struct GoldenRun {
  std::vector<std::vector<float>> logits_all;  // [16][n_vocab]
  std::vector<int32_t> greedy_tokens;
  std::vector<std::vector<float>> hidden;  // layer_0.. then final_norm last; empty if not recorded
};

struct Golden {
  std::string name;
  std::string model_file;
  std::optional<std::vector<int>> layer_path;
  // A path in reprise's notation, for what a list of layers cannot say (a damped repeat,
  // "repeat:1:4@0.5": the reference ran our export of it); wins over layer_path.
  std::optional<std::string> layer_path_spec;
  std::vector<int32_t> prompt_tokens;
  // The context llama.cpp ran with (its per-sequence n_ctx), which a session must use too: a
  // long-rope model chooses its factors by it. Goldens that do not record it: 64.
  int n_ctx = 64;
  GoldenRun main;
  std::optional<GoldenRun> dequantized;  // non-F32 files only
};

// Reads tests/data/golden/NAME.json or, failing that, the shared golden directory.
// Returns nullopt when neither has it.
std::optional<Golden> load_golden(const std::string& name);

// Path of the golden's model file: models/ or tests/data/fixtures/ in the repo, or the shared
// fixtures; empty if absent.
std::filesystem::path golden_model_path(const Golden& g);

}  // namespace reprise::test
