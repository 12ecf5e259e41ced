#include "model/tokenizer_bpe.h"

#include <fmt/format.h>

#include "model/symbol_merge.h"
#include "model/utf8_stream.h"
#include "util/error.h"

namespace reprise {
namespace {

// GPT-2's table: printable Latin-1 bytes stand for themselves, the other 68 bytes (controls,
// space, DEL, NBSP, soft hyphen...) are moved to U+0100 onwards in byte order, so every byte has
// a visible, non-space character.
std::array<char32_t, 256> byte_to_codepoint() {
  std::array<char32_t, 256> map{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    map[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return map;
}

// Inverse of byte_to_codepoint over U+0000..U+0143; -1 where no byte maps.
const std::array<int16_t, 324>& codepoint_to_byte() {
  static const std::array<int16_t, 324> inv = [] {
    std::array<int16_t, 324> a;
    a.fill(-1);
    const auto fwd = byte_to_codepoint();
    for (int b = 0; b < 256; ++b) a[fwd[b]] = static_cast<int16_t>(b);
    return a;
  }();
  return inv;
}

// Decodes the (valid) character at s[pos]; returns its code point and advances pos.
char32_t next_codepoint(std::string_view s, size_t& pos) {
  size_t len = 1;
  if (utf8_sequence_at(s, pos, len) != Utf8Status::Complete) {
    len = 1;
    return 0xFFFFFFFF;  // not a character: the caller copies the byte through
  }
  const auto b0 = static_cast<unsigned char>(s[pos]);
  char32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[pos + k]) & 0x3F);
  pos += len;
  return cp;
}

size_t utf8_char_len(std::string_view s, size_t pos) {
  size_t len = 1;
  utf8_sequence_at(s, pos, len);
  return len;
}

}  // namespace

BpeTokenizer::BpeTokenizer(Vocab vocab)
    : Tokenizer(std::move(vocab)),
      index_(vocab_.tokens),
      specials_(vocab_),
      pre_(vocab_.pre.empty() ? std::string("default") : vocab_.pre) {
  ranks_.reserve(vocab_.merges.size());
  for (size_t i = 0; i < vocab_.merges.size(); ++i)
    ranks_.emplace(vocab_.merges[i],
                   static_cast<int32_t>(i));  // a repeated merge keeps its first rank
  const auto fwd = byte_to_codepoint();
  for (int b = 0; b < 256; ++b) append_utf8(byte_text_[b], fwd[b]);
}

int32_t BpeTokenizer::merge_rank(std::string_view left, std::string_view right,
                                 std::string& scratch) const {
  scratch.assign(left);
  scratch += ' ';
  scratch += right;
  auto it = ranks_.find(std::string_view(scratch));
  return it == ranks_.end() ? -1 : it->second;
}

void BpeTokenizer::append_symbol(std::string_view text, std::vector<int32_t>& out) const {
  if (const int32_t id = index_.find(text); id >= 0) {
    out.push_back(id);
    return;
  }
  // Merges only build listed tokens, so this is a character missing from an odd vocabulary.
  // Spell it per character, then fall back to <unk>; llama.cpp drops what it cannot spell, and
  // so do we when there is no <unk>.
  for (size_t pos = 0; pos < text.size();) {
    const size_t len = utf8_char_len(text, pos);
    const int32_t id = index_.find(text.substr(pos, len));
    if (id >= 0)
      out.push_back(id);
    else if (vocab_.unk >= 0)
      out.push_back(vocab_.unk);
    pos += len;
  }
}

void BpeTokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  std::string mapped;
  mapped.reserve(word.size() * 2);
  for (char c : word) mapped += byte_text_[static_cast<unsigned char>(c)];
  const std::string_view text = mapped;

  if (pre_.ignore_merges()) {
    if (const int32_t id = index_.find(text); id >= 0) {
      out.push_back(id);
      return;
    }
  }

  // Lowest merge rank first.
  std::string scratch;
  merge_symbols<int32_t>(
      text, [&](size_t pos) { return utf8_char_len(text, pos); },
      [&](size_t start, uint32_t left, uint32_t right) -> std::optional<int32_t> {
        const int32_t rank =
            merge_rank(text.substr(start, left), text.substr(start + left, right), scratch);
        return rank >= 0 ? std::optional(rank) : std::nullopt;
      },
      [](int32_t a, int32_t b) { return a < b; },
      [&](std::string_view piece) { append_symbol(piece, out); });
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, const EncodeOptions& opts) const {
  if (const size_t bad = find_invalid_utf8(text); bad != std::string_view::npos)
    throw Error(fmt::format("invalid UTF-8 in prompt at byte {}", bad));
  std::vector<int32_t> out;
  if (opts.add_bos && vocab_.add_bos && vocab_.bos >= 0) out.push_back(vocab_.bos);
  for (const PromptFragment& f : specials_.split(text, opts.parse_special)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      continue;
    }
    for (std::string_view word : pre_.split(f.text)) encode_word(word, out);
  }
  if (opts.add_bos && vocab_.add_eos && vocab_.eos >= 0) out.push_back(vocab_.eos);
  return out;
}

std::string BpeTokenizer::token_to_piece(int32_t id) const {
  if (id < 0 || id >= vocab_.size())
    throw Error(
        fmt::format("token id {} out of range (vocabulary has {} tokens)", id, vocab_.size()));
  const std::string& text = vocab_.tokens[id];
  switch (vocab_.attrs[id]) {
    case TokenAttr::Control:
    case TokenAttr::Unknown:
    case TokenAttr::Unused:
      return "";
    case TokenAttr::UserDefined:
      return text;  // added tokens are stored as plain text
    case TokenAttr::Normal:
    case TokenAttr::Undefined:
    case TokenAttr::Byte:
      break;
  }
  const auto& inv = codepoint_to_byte();
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const size_t start = pos;
    const char32_t cp = next_codepoint(text, pos);
    if (cp < inv.size() && inv[cp] >= 0) {
      out += static_cast<char>(inv[cp]);
    } else {
      // Not from the byte table (a hand-made vocabulary): keep the character as written.
      if (pos == start) ++pos;
      out.append(text, start, pos - start);
    }
  }
  return out;
}

std::string BpeTokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  for (int32_t id : ids) out += token_to_piece(id);
  return out;
}

}  // namespace reprise
