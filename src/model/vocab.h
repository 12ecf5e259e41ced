// A tokenizer vocabulary as stored in GGUF (`tokenizer.ggml.*`) or Hugging Face tokenizer files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace reprise {

class GgufFile;

// Token attribute codes as GGUF stores them in tokenizer.ggml.token_type.
enum class TokenAttr : int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

struct Vocab {
  enum class Model { None, Spm, Bpe };
  Model model = Model::None;
  std::vector<std::string> tokens;  // id -> piece (SPM: with U+2581 for space; BPE: byte-mapped)
  std::vector<float> scores;        // SPM merge priorities; may be empty for BPE
  std::vector<TokenAttr> attrs;     // per token; Normal when the file has none
  std::vector<std::string> merges;  // BPE: "left right" in priority order
  std::string pre;                  // BPE pre-tokenizer name (tokenizer.ggml.pre), e.g. "qwen2"
  int32_t bos = -1, eos = -1, eot = -1, unk = -1, pad = -1;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = true;  // SPM: prepend a space to the text (llama's default)
  std::string chat_template;     // Jinja source, may be empty

  int32_t size() const { return static_cast<int32_t>(tokens.size()); }
};

// Reads the vocabulary of a GGUF file. Model::None when the file has no tokenizer.ggml.model.
// Throws FormatError naming the file and key on malformed or inconsistent vocabularies.
Vocab vocab_from_gguf(const GgufFile& gguf);

// Checks what the tokenizers rely on: per-token arrays as long as `tokens`, special ids in range,
// BPE merges present and well formed. Throws FormatError(source, ...) otherwise.
void check_vocab(const Vocab& vocab, const std::string& source);

// The first of the usual end-of-turn token texts ("<|eot_id|>", "<|im_end|>", "<end_of_turn>",
// ...) present in the vocabulary, or -1. Used when a file names no end-of-turn token.
int32_t guess_eot_token(const Vocab& vocab);

}  // namespace reprise
