#include "model/utf8_stream.h"

#include <cstdint>

namespace reprise {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

struct LeadInfo {
  size_t len;  // 0: cannot start a sequence
  uint8_t second_lo, second_hi;
};

// The second byte's range depends on the lead: that is where overlong forms, surrogates and
// code points above U+10FFFF are excluded.
LeadInfo lead_info(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

}  // namespace

Utf8Status utf8_sequence_at(std::string_view s, size_t pos, size_t& len) {
  len = 1;
  const LeadInfo info = lead_info(static_cast<uint8_t>(s[pos]));
  if (info.len == 0) return Utf8Status::Invalid;
  for (size_t k = 1; k < info.len; ++k) {
    if (pos + k >= s.size()) return Utf8Status::Incomplete;
    const auto b = static_cast<uint8_t>(s[pos + k]);
    const uint8_t lo = k == 1 ? info.second_lo : 0x80;
    const uint8_t hi = k == 1 ? info.second_hi : 0xBF;
    if (b < lo || b > hi) return Utf8Status::Invalid;
  }
  len = info.len;
  return Utf8Status::Complete;
}

size_t find_invalid_utf8(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    size_t len = 0;
    if (utf8_sequence_at(s, pos, len) != Utf8Status::Complete) return pos;
    pos += len;
  }
  return std::string_view::npos;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

void Utf8Stream::emit_invalid(std::string& out, char byte) const {
  if (mode_ == Invalid::Replace)
    out += kReplacement;
  else
    out += byte;
}

std::string Utf8Stream::push(std::string_view piece) {
  pending_ += piece;
  std::string out;
  size_t pos = 0;
  while (pos < pending_.size()) {
    size_t len = 0;
    const Utf8Status st = utf8_sequence_at(pending_, pos, len);
    if (st == Utf8Status::Incomplete) break;
    if (st == Utf8Status::Invalid)
      emit_invalid(out, pending_[pos]);
    else
      out.append(pending_, pos, len);
    pos += len;
  }
  pending_.erase(0, pos);
  return out;
}

std::string Utf8Stream::flush() {
  std::string out;
  // Whatever is left can never complete: every byte of it is reported as invalid.
  for (char c : pending_) emit_invalid(out, c);
  pending_.clear();
  return out;
}

}  // namespace reprise
