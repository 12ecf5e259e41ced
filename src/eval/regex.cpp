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
  const int g = groups > 0 ? 1 : 0;
  size_t start = 0;
  while (start <= text.size()) {
    const int rc = pcre2_match(impl_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                               start, 0, md, nullptr);
    if (rc < 0) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    if (ov[2 * g] != PCRE2_UNSET)
      out.emplace_back(text.substr(ov[2 * g], ov[2 * g + 1] - ov[2 * g]));
    else
      out.emplace_back();
    // Step past an empty match so the loop always advances.
    start = ov[1] > ov[0] ? ov[1] : ov[1] + 1;
  }
  pcre2_match_data_free(md);
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
