// SentencePiece-style tokenizer (GGUF tokenizer.ggml.model = "llama"): spaces become U+2581, and
// adjacent pieces are merged greedily, the pair whose joined text is the highest-scoring token
// first. Characters that end up in no token are spelled as <0xXX> byte tokens.
#pragma once

#include <array>

#include "model/tokenizer.h"

namespace reprise {

class SpmTokenizer final : public Tokenizer {
 public:
  explicit SpmTokenizer(Vocab vocab);

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& opts) const override;
  std::string token_to_piece(int32_t id) const override;
  std::string decode(std::span<const int32_t> ids) const override;

 private:
  // Tokenizes text that already has its spaces escaped to U+2581.
  void encode_escaped(std::string_view text, std::vector<int32_t>& out) const;
  void append_bytes(std::string_view piece, std::vector<int32_t>& out) const;

  TokenIndex index_;
  SpecialTokenSplitter specials_;
  std::array<int32_t, 256> byte_ids_;  // -1 when neither a byte token nor <unk> exists
};

}  // namespace reprise
