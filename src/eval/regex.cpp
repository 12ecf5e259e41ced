#define PCRE2_CODE_UNIT_WIDTH 8
#include "eval/regex.h"

#include <fmt/format.h>
#include <pcre2.h>

#include "util/error.h"

namespace reprise::eval {

struct Regex::Impl {
  pcre2_code* code = nullptr;
  ~Impl() { pcre2_code_free(code); }
};

Regex::Regex(std::string_view pattern, bool caseless)
    : pattern_(pattern), impl_(std::make_unique<Impl>()) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  uint32_t flags = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_UCP;
  if (caseless) flags |= PCRE2_CASELESS;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), flags,
                              &err, &offset, nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw Error(
        fmt::format("regex '{}': {} at offset {}", pattern, reinterpret_cast<char*>(msg), offset));
  }
}

Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

std::vector<std::string> Regex::find_all(std::string_view text) const {
  std::vector<std::string> out;
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
  uint32_t groups = 0;
  pcre2_pattern_info(impl_->code, PCRE2_INFO_CAPTURECOUNT, &groups);
  size_t start = 0;
  while (start <= text.size()) {
    const int rc = pcre2_match(impl_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                               start, 0, md, nullptr);
    if (rc < 0) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    std::string found;
    // Group 0 (the whole match) only when the pattern has no groups of its own.
    for (uint32_t g = groups > 0 ? 1 : 0; g <= groups && found.empty(); ++g)
      if (static_cast<int>(g) < rc && ov[2 * g] != PCRE2_UNSET)
        found.assign(text.substr(ov[2 * g], ov[2 * g + 1] - ov[2 * g]));
    out.push_back(std::move(found));
    // Step past an empty match so the loop always advances.
    start = ov[1] > ov[0] ? ov[1] : ov[1] + 1;
  }
  pcre2_match_data_free(md);
  return out;
}

std::string Regex::replace_all(std::string_view text, std::string_view replacement) const {
  std::string out;
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
  size_t start = 0, copied = 0;
  while (start <= text.size()) {
    const int rc = pcre2_match(impl_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                               start, 0, md, nullptr);
    if (rc < 0) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    out.append(text.substr(copied, ov[0] - copied));
    out.append(replacement);
    copied = ov[1];
    start = ov[1] > ov[0] ? ov[1] : ov[1] + 1;
  }
  pcre2_match_data_free(md);
  if (copied < text.size()) out.append(text.substr(copied));
  return out;
}

std::optional<std::string> Regex::first(std::string_view text) const {
  auto all = find_all(text);
  if (all.empty()) return std::nullopt;
  return all.front();
}

std::optional<std::string> Regex::last(std::string_view text) const {
  auto all = find_all(text);
  if (all.empty()) return std::nullopt;
  return all.back();
}

namespace {

// Where Python's str.lower() and PCRE2's \L differ for single characters (checked over all code
// points): Python also lowers the Roman numerals U+2160..216F (+0x10) and the circled capitals
// U+24B6..24CF (+0x1A), which are not letters, and maps U+0130 to "i" + U+0307.
std::string python_lower_fixups(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 == 0xC4 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xB0) {
      out += "i\xCC\x87";
      ++i;
      continue;
    }
    if (b0 == 0xE2 && i + 2 < s.size()) {
      const auto b1 = static_cast<unsigned char>(s[i + 1]);
      const auto b2 = static_cast<unsigned char>(s[i + 2]);
      char32_t c = 0x2000 | ((b1 & 0x3F) << 6) | (b2 & 0x3F);
      const bool continuation = (b1 & 0xC0) == 0x80 && (b2 & 0xC0) == 0x80;
      if (continuation && ((c >= 0x2160 && c <= 0x216F) || (c >= 0x24B6 && c <= 0x24CF))) {
        c += c <= 0x216F ? 0x10 : 0x1A;
        out += static_cast<char>(b0);
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

}  // namespace

std::string unicode_lower(std::string_view text) {
  // A substitution of the whole text by itself with \L (force lower case), which PCRE2 applies
  // per character from its Unicode tables in UTF mode.
  static const Regex all("(?s).+");
  if (text.empty()) return {};
  PCRE2_SIZE size = text.size() + 16;
  std::string out;
  for (int attempt = 0; attempt < 2; ++attempt) {
    out.resize(size);
    const int rc = pcre2_substitute(
        all.impl_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0,
        PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_EXTENDED | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH,
        nullptr, nullptr, reinterpret_cast<PCRE2_SPTR>("\\L$0"), PCRE2_ZERO_TERMINATED,
        reinterpret_cast<PCRE2_UCHAR*>(out.data()), &size);
    if (rc >= 0) {
      out.resize(size);
      return python_lower_fixups(out);
    }
    if (rc != PCRE2_ERROR_NOMEMORY) break;
  }
  return std::string(text);
}

}  // namespace reprise::eval
