// Internal to export/: the file names an HF export directory holds, so a forced export replaces
// only an earlier export (util/output_file.h's OutputDir asks), never unrelated data.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace reprise::exporter {

// Tokenizer and generation files an HF directory may carry beside its weights; an HF export copies
// the ones its source has.
std::span<const std::string_view> hf_side_files();

// True for the file names an HF export writes (config, weights, index, tokenizer files).
bool is_export_file_name(const std::string& name);

}  // namespace reprise::exporter
