// Byte-level BPE tokenizer (GGUF tokenizer.ggml.model = "gpt2"), as used by Llama 3 and Qwen:
// the prompt is cut into words by the pre-tokenizer regex, each byte of a word is mapped to a
// printable character (GPT-2's byte-to-unicode table), then the pairs with the lowest merge
// rank are joined until no listed merge applies.
#pragma once

#include <array>
#include <unordered_map>

#include "model/pretokenizer.h"
#include "model/tokenizer.h"

namespace reprise {

class BpeTokenizer final : public Tokenizer {
 public:
  explicit BpeTokenizer(Vocab vocab);

  // Throws Error("invalid UTF-8 in prompt at byte N") for malformed input.
  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& opts) const override;
  std::string token_to_piece(int32_t id) const override;
  std::string decode(std::span<const int32_t> ids) const override;

 private:
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
  // Rank of merging left+right, or -1 when no merge lists that pair.
  int32_t merge_rank(std::string_view left, std::string_view right, std::string& scratch) const;
  void append_symbol(std::string_view text, std::vector<int32_t>& out) const;

  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  TokenIndex index_;
  SpecialTokenSplitter specials_;
  PreTokenizer pre_;
  std::unordered_map<std::string, int32_t, Hash, std::equal_to<>> ranks_;  // "left right"
  std::array<std::string, 256> byte_text_;  // byte -> its printable stand-in, UTF-8
};

}  // namespace reprise
