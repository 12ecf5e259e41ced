#include "model/golden.h"

#include <cmath>
#include <fstream>

#include "support/test_support.h"

namespace reprise::test {
namespace {

GoldenRun parse_run(const nlohmann::json& j) {
  GoldenRun r;
  r.logits_all = j.at("logits_all").get<std::vector<std::vector<float>>>();
  r.greedy_tokens = j.at("greedy_tokens").get<std::vector<int32_t>>();
  // The golden tool (tests/data/golden) records no hidden states; shared goldens do.
  if (!j.contains("hidden_last")) return r;
  const auto& h = j.at("hidden_last");
  for (size_t k = 0; h.contains("layer_" + std::to_string(k)); ++k)
    r.hidden.push_back(h.at("layer_" + std::to_string(k)).get<std::vector<float>>());
  r.hidden.push_back(h.at("final_norm").get<std::vector<float>>());
  return r;
}

}  // namespace

std::optional<Golden> load_golden(const std::string& name) {
  std::filesystem::path p = source_dir() / "tests/data/golden" / (name + ".json");
  if (!std::filesystem::exists(p)) {
    if (!have_shared()) return std::nullopt;
    p = shared_dir() / "golden" / (name + ".json");
    if (!std::filesystem::exists(p)) return std::nullopt;
  }
  std::ifstream f(p);
  nlohmann::json j = nlohmann::json::parse(f);
  Golden g;
  g.name = name;
  g.model_file = j.at("model_file").get<std::string>();
  if (j.contains("layer_path") && !j.at("layer_path").is_null())
    g.layer_path = j.at("layer_path").get<std::vector<int>>();
  if (j.contains("layer_path_spec")) g.layer_path_spec = j.at("layer_path_spec").get<std::string>();
  g.prompt_tokens = j.at("prompt_tokens").get<std::vector<int32_t>>();
  if (j.contains("n_ctx")) g.n_ctx = j.at("n_ctx").get<int>();
  g.main = parse_run(j);
  if (j.contains("dequantized_reference")) g.dequantized = parse_run(j.at("dequantized_reference"));
  return g;
}

std::filesystem::path golden_model_path(const Golden& g) {
  // Path goldens were made on physically unrolled copies; reprise runs the base model instead.
  std::string file = g.model_file;
  if (size_t k = g.name.find("-path-"); k != std::string::npos)
    file = g.name.substr(0, k) + ".gguf";
  for (const char* dir : {"models", "tests/data/fixtures"}) {
    std::filesystem::path in_repo = source_dir() / dir / file;
    if (std::filesystem::exists(in_repo)) return in_repo;
  }
  if (!have_shared()) return {};
  std::filesystem::path fixture = shared_dir() / "fixtures" / file;
  return std::filesystem::exists(fixture) ? fixture : std::filesystem::path{};
}

}  // namespace reprise::test
