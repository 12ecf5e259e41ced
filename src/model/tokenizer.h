// Text <-> token ids for SentencePiece-style (SPM) and byte-level BPE vocabularies.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/vocab.h"

namespace reprise {

struct EncodeOptions {
  // Prepend BOS when the vocabulary asks for it (vocab.add_bos). Like llama.cpp's add_special it
  // also appends EOS when vocab.add_eos.
  bool add_bos = true;
  bool parse_special = false;  // recognise control / user-defined token texts inside the prompt
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Throws Error on invalid input (e.g. a BPE prompt that is not valid UTF-8).
  virtual std::vector<int32_t> encode(std::string_view text, const EncodeOptions& opts) const = 0;

  // The bytes a token stands for (byte tokens give their single byte; control tokens give "").
  virtual std::string token_to_piece(int32_t id) const = 0;

  // Concatenated pieces; SPM drops the leading space that encode() added.
  virtual std::string decode(std::span<const int32_t> ids) const = 0;

  const Vocab& vocab() const { return vocab_; }

 protected:
  explicit Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {}
  Vocab vocab_;
};

// SPM or BPE by vocab.model; throws Error for Model::None or an unsupported pre-tokenizer.
std::unique_ptr<Tokenizer> make_tokenizer(Vocab vocab);

// Piece text -> id without building a std::string per lookup. When a text repeats, the later id
// wins, as in llama.cpp.
class TokenIndex {
 public:
  explicit TokenIndex(const std::vector<std::string>& tokens);
  int32_t find(std::string_view text) const;  // -1 when absent

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, int32_t, Hash, std::equal_to<>> ids_;
};

// A piece of a prompt after special-token splitting: raw text, or one token id.
struct PromptFragment {
  std::string_view text;  // a view into the prompt when token < 0
  int32_t token = -1;
};

// Cuts a prompt at the texts of special tokens. User-defined tokens are always recognised;
// control and unknown tokens only with parse_special. As in llama.cpp the longest token text is
// cut out everywhere first, then the next longest from what is left, and so on.
class SpecialTokenSplitter {
 public:
  explicit SpecialTokenSplitter(const Vocab& vocab);
  std::vector<PromptFragment> split(std::string_view text, bool parse_special) const;

 private:
  struct Special {
    std::string text;
    int32_t id;
    bool always;  // user-defined: matched even without parse_special
  };
  std::vector<Special> specials_;  // longest text first
};

}  // namespace reprise
