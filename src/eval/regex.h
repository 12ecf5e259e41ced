// A small PCRE2 wrapper for answer extraction (UTF-8 aware, tolerant of invalid bytes in model
// output).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace reprise::eval {

class Regex {
 public:
  // Throws Error naming the pattern when it does not compile.
  explicit Regex(std::string_view pattern, bool caseless = false);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  // Each match's first non-empty capture group (or the whole match when the pattern has no
  // group; "" when every group is empty), left to right, non-overlapping. With several groups this
  // is what lm-evaluation-harness's regex filter takes from Python's re.findall tuples.
  std::vector<std::string> find_all(std::string_view text) const;
  // Every match replaced by `replacement` (literal text), like Python's re.sub(pattern, repl, s).
  std::string replace_all(std::string_view text, std::string_view replacement) const;
  std::optional<std::string> first(std::string_view text) const;
  std::optional<std::string> last(std::string_view text) const;

  const std::string& pattern() const { return pattern_; }

 private:
  friend std::string unicode_lower(std::string_view text);
  struct Impl;
  std::string pattern_;
  std::unique_ptr<Impl> impl_;
};

// Lower case as Python's str.lower() does it character by character (PCRE2's Unicode tables, and
// the few characters where Python differs; Python's final-sigma rule is not applied). Bytes that
// are not valid UTF-8 are kept as they are.
std::string unicode_lower(std::string_view text);

}  // namespace reprise::eval
