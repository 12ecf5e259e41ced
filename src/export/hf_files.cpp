#include "export/hf_files.h"

namespace reprise::exporter {

std::span<const std::string_view> hf_side_files() {
  static constexpr std::string_view kSideFiles[] = {"tokenizer.json",
                                                    "tokenizer_config.json",
                                                    "special_tokens_map.json",
                                                    "tokenizer.model",
                                                    "vocab.json",
                                                    "merges.txt",
                                                    "added_tokens.json",
                                                    "chat_template.jinja",
                                                    "chat_template.json",
                                                    "generation_config.json"};
  return kSideFiles;
}

bool is_export_file_name(const std::string& name) {
  if (name == "config.json" || name == "model.safetensors.index.json") return true;
  for (auto n : hf_side_files())
    if (name == n) return true;
  return name.ends_with(".safetensors");
}

}  // namespace reprise::exporter
