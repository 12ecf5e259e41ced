#include "model/tokenizer_spm.h"

#include <fmt/format.h>

#include <utility>

#include "model/symbol_merge.h"
#include "util/error.h"

namespace reprise {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

std::string escape_spaces(std::string_view text, bool prefix) {
  std::string s;
  s.reserve(text.size() + 8);
  if (prefix) s += kSpace;
  for (char c : text) {
    if (c == ' ')
      s += kSpace;
    else
      s += c;
  }
  return s;
}

std::string unescape_spaces(std::string_view text) {
  std::string s;
  s.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    if (text.substr(pos, kSpace.size()) == kSpace) {
      s += ' ';
      pos += kSpace.size();
    } else {
      s += text[pos++];
    }
  }
  return s;
}

// Length of the character that starts with byte b, judged by the lead byte alone, the way
// SentencePiece walks text; malformed input is not rejected, it just ends up as byte tokens.
size_t char_len(unsigned char b) {
  if (b < 0xC0) return 1;
  if (b < 0xE0) return 2;
  if (b < 0xF0) return 3;
  return 4;
}

// "<0x41>" -> 0x41; -1 for any other text.
int parse_byte_token(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
  int v = 0;
  for (char c : t.substr(3, 2)) {
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= c - '0';
    else if (c >= 'A' && c <= 'F')
      v |= c - 'A' + 10;
    else if (c >= 'a' && c <= 'f')
      v |= c - 'a' + 10;
    else
      return -1;
  }
  return v;
}

}  // namespace

SpmTokenizer::SpmTokenizer(Vocab vocab)
    : Tokenizer(std::move(vocab)), index_(vocab_.tokens), specials_(vocab_) {
  for (int b = 0; b < 256; ++b) {
    int32_t id = index_.find(fmt::format("<0x{:02X}>", b));
    if (id < 0) id = index_.find(std::string(1, static_cast<char>(b)));
    if (id < 0) id = vocab_.unk;
    byte_ids_[b] = id;
  }
}

void SpmTokenizer::append_bytes(std::string_view piece, std::vector<int32_t>& out) const {
  for (char c : piece) {
    const int32_t id = byte_ids_[static_cast<unsigned char>(c)];
    if (id < 0)
      throw Error(fmt::format("tokenizer: no token for byte 0x{:02X} and no unknown token",
                              static_cast<unsigned char>(c)));
    out.push_back(id);
  }
}

void SpmTokenizer::encode_escaped(std::string_view text, std::vector<int32_t>& out) const {
  // Highest piece score first, so equal-score merges go left to right.
  merge_symbols<float>(
      text,
      [&](size_t pos) {
        return std::min(char_len(static_cast<unsigned char>(text[pos])), text.size() - pos);
      },
      [&](size_t start, uint32_t left, uint32_t right) -> std::optional<float> {
        const int32_t id = index_.find(text.substr(start, left + right));
        return id >= 0 ? std::optional(vocab_.scores[id]) : std::nullopt;
      },
      [](float a, float b) { return a > b; },
      // Every merged symbol is a token by construction; only single characters can be missing.
      [&](std::string_view piece) {
        const int32_t id = index_.find(piece);
        if (id >= 0)
          out.push_back(id);
        else
          append_bytes(piece, out);
      });
}

std::vector<int32_t> SpmTokenizer::encode(std::string_view text, const EncodeOptions& opts) const {
  std::vector<int32_t> out;
  if (opts.add_bos && vocab_.add_bos && vocab_.bos >= 0) out.push_back(vocab_.bos);
  // SentencePiece sees each stretch of text between special tokens as the start of a sentence,
  // so each gets the space prefix.
  bool after_special = true;
  for (const PromptFragment& f : specials_.split(text, opts.parse_special)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_special = true;
      continue;
    }
    encode_escaped(escape_spaces(f.text, vocab_.add_space_prefix && after_special), out);
    after_special = false;
  }
  if (opts.add_bos && vocab_.add_eos && vocab_.eos >= 0) out.push_back(vocab_.eos);
  return out;
}

std::string SpmTokenizer::token_to_piece(int32_t id) const {
  if (id < 0 || id >= vocab_.size())
    throw Error(
        fmt::format("token id {} out of range (vocabulary has {} tokens)", id, vocab_.size()));
  const std::string& text = vocab_.tokens[id];
  switch (vocab_.attrs[id]) {
    case TokenAttr::Normal:
    case TokenAttr::Undefined:
      return unescape_spaces(text);
    case TokenAttr::UserDefined:
      return text;
    case TokenAttr::Byte: {
      const int b = parse_byte_token(text);
      return b < 0 ? text : std::string(1, static_cast<char>(b));
    }
    case TokenAttr::Control:
    case TokenAttr::Unknown:
    case TokenAttr::Unused:
      return "";
  }
  return "";
}

std::string SpmTokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  // encode() put a space in front of the text; the first piece that produces output loses it.
  bool strip = vocab_.add_space_prefix;
  auto emit = [&](std::string piece) {
    if (strip && !piece.empty()) {
      if (piece.front() == ' ') piece.erase(0, 1);
      strip = false;
    }
    out += piece;
  };
  // Byte tokens are joined before spaces are restored: a truncated UTF-8 lead byte in the
  // input swallows the first bytes of the following escaped space, so that space only
  // reappears once the whole run of bytes is seen together.
  std::string bytes;
  for (int32_t id : ids) {
    const bool is_byte = id >= 0 && id < vocab_.size() && vocab_.attrs[id] == TokenAttr::Byte &&
                         parse_byte_token(vocab_.tokens[id]) >= 0;
    if (is_byte) {
      bytes += token_to_piece(id);
      continue;
    }
    if (!bytes.empty()) emit(unescape_spaces(std::exchange(bytes, {})));
    emit(token_to_piece(id));
  }
  if (!bytes.empty()) emit(unescape_spaces(bytes));
  return out;
}

}  // namespace reprise
