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

}  // namespace reprise::eval
