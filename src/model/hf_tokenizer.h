// Vocabulary from a Hugging Face model directory: tokenizer.json (the `tokenizers` library
// format) plus tokenizer_config.json / special_tokens_map.json for BOS/EOS and the chat template.
//
// Two BPE flavours are understood:
//  - SentencePiece-style (byte_fallback, U+2581 for spaces), as converted Llama 2 tokenizers:
//    mapped to Model::Spm with scores derived from the merge ranks, so that SentencePiece's
//    score-ordered merging reproduces the BPE merge order;
//  - byte-level (a ByteLevel pre-tokenizer), as Llama 3 and Qwen2: mapped to Model::Bpe, the
//    pre-tokenizer name chosen by recognising the Split regex.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "model/vocab.h"

namespace reprise {

// nullopt when dir has no tokenizer.json. Throws FormatError naming the file on bad content and
// on tokenizer kinds that are not supported (Unigram, WordPiece, unknown pre-tokenizer regex).
std::optional<Vocab> vocab_from_hf_dir(const std::filesystem::path& dir);

// The same from file contents. config_json and special_tokens_json may be empty (absent);
// `source` names tokenizer.json in error messages.
Vocab vocab_from_hf_json(std::string_view tokenizer_json, std::string_view config_json,
                         std::string_view special_tokens_json, const std::string& source);

}  // namespace reprise
