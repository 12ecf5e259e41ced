// UTF-8 validation helpers and a buffer that turns token pieces into whole characters.
//
// A token may stand for part of a character (byte-fallback and byte-level vocabularies split
// emoji and CJK into single bytes), so printing pieces as they arrive can show broken glyphs or
// produce invalid UTF-8 in a JSON reply. Utf8Stream holds back an incomplete tail until the
// bytes that finish it arrive.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace reprise {

enum class Utf8Status { Complete, Incomplete, Invalid };

// Classifies the sequence starting at s[pos]: Complete (and its byte length in `len`), Incomplete
// (a valid beginning cut off by the end of s) or Invalid (overlong, surrogate, out of range, stray
// continuation byte). `len` is 1 for Invalid.
Utf8Status utf8_sequence_at(std::string_view s, size_t pos, size_t& len);

// Offset of the first byte that does not begin a complete, valid sequence; npos when s is valid.
size_t find_invalid_utf8(std::string_view s);

// Appends the UTF-8 encoding of code point cp (assumed valid).
void append_utf8(std::string& out, char32_t cp);

class Utf8Stream {
 public:
  // Keep passes invalid bytes through unchanged; Replace turns each into U+FFFD so that the
  // output is always valid UTF-8.
  enum class Invalid { Keep, Replace };

  explicit Utf8Stream(Invalid mode = Invalid::Keep) : mode_(mode) {}

  // Adds a piece and returns every complete character now available (possibly "").
  std::string push(std::string_view piece);

  // Returns what is still held back (an unfinished sequence) and empties the buffer.
  std::string flush();

  // Bytes held back waiting for the rest of a character.
  size_t pending() const { return pending_.size(); }

 private:
  void emit_invalid(std::string& out, char byte) const;

  std::string pending_;
  Invalid mode_;
};

}  // namespace reprise
