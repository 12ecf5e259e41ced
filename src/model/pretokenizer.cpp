#include "model/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pcre2.h>

#include <algorithm>
#include <span>

#include "util/error.h"

namespace reprise {
namespace {

// Contractions spelled out letter by letter instead of (?i:...): under Unicode case folding
// (?i) would also accept look-alikes such as U+017F for "s", which the reference tokenizers
// do not.
constexpr const char* kContractions =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]))";

const std::string& llama3_pattern() {
  static const std::string p =
      std::string(kContractions) +
      R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  return p;
}

// As Llama 3 but digits stand alone, so numbers tokenize digit by digit.
const std::string& qwen2_pattern() {
  static const std::string p =
      std::string(kContractions) +
      R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  return p;
}

constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct Preset {
  std::vector<std::string> names;
  std::vector<std::string> patterns;
  bool ignore_merges;
};

const std::vector<Preset>& presets() {
  static const std::vector<Preset> p = {
      {{"llama3", "llama-bpe", "llama-v3"}, {llama3_pattern()}, true},
      {{"qwen2", "deepseek-r1-qwen"}, {qwen2_pattern()}, false},
      {{"gpt2", "gpt-2"}, {kGpt2Pattern}, false},
      // What llama.cpp runs when a BPE file names no pre-tokenizer.
      {{"default", ""},
       {R"([\p{P}\$\+<=>\^~\|]+)",
        R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))", R"(\p{N}+)",
        R"([0-9][0-9][0-9])"},
       false},
  };
  return p;
}

const Preset* find_preset(std::string_view name) {
  for (const Preset& p : presets())
    if (std::find(p.names.begin(), p.names.end(), name) != p.names.end()) return &p;
  return nullptr;
}

}  // namespace

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }
};

PreTokenizer::~PreTokenizer() = default;

const std::vector<std::string>& PreTokenizer::known_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const Preset& p : presets())
      for (const std::string& n : p.names)
        if (!n.empty()) out.push_back(n);
    return out;
  }();
  return names;
}

bool PreTokenizer::is_known(std::string_view name) {
  return find_preset(name) != nullptr;
}

PreTokenizer::PreTokenizer(const std::string& name) {
  const Preset* preset = find_preset(name);
  if (!preset)
    throw Error(fmt::format("unknown pre-tokenizer \"{}\" (known: {})", name,
                            fmt::join(known_names(), ", ")));
  ignore_merges_ = preset->ignore_merges;
  for (const std::string& pattern : preset->patterns) {
    auto re = std::make_unique<Regex>();
    int err = 0;
    PCRE2_SIZE err_off = 0;
    re->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                             PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
    if (!re->code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw Error(fmt::format("pre-tokenizer \"{}\": regex does not compile at offset {}: {}", name,
                              err_off, reinterpret_cast<const char*>(msg)));
    }
    // The JIT is only a speed-up; without it (e.g. on an unsupported CPU) matching still works.
    pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);
    regexes_.push_back(std::move(re));
  }
}

namespace {

// Cuts one piece into matches of `code` and the unmatched stretches between them.
void split_piece(pcre2_code* code, pcre2_match_data* md, std::string_view piece,
                 std::vector<std::string_view>& out) {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
  size_t pos = 0;
  size_t gap_start = 0;
  while (pos < piece.size()) {
    const int rc = pcre2_match(code, subject, piece.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw Error(
          fmt::format("pre-tokenizer regex failed: {}", reinterpret_cast<const char*>(msg)));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t start = ov[0], end = ov[1];
    if (end == start) {
      // The built-in patterns never match empty; step over one character anyway so that a
      // pattern that did could not loop forever.
      pos = start + 1;
      while (pos < piece.size() && (static_cast<unsigned char>(piece[pos]) & 0xC0) == 0x80) ++pos;
      continue;
    }
    if (start > gap_start) out.push_back(piece.substr(gap_start, start - gap_start));
    out.push_back(piece.substr(start, end - start));
    pos = gap_start = end;
  }
  if (gap_start < piece.size()) out.push_back(piece.substr(gap_start));
}

}  // namespace

std::vector<std::string_view> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string_view> words;
  if (text.empty()) return words;
  words.push_back(text);
  for (const auto& re : regexes_) {
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
        pcre2_match_data_create_from_pattern(re->code, nullptr), &pcre2_match_data_free);
    std::vector<std::string_view> next;
    next.reserve(words.size() * 2);
    for (std::string_view w : words) split_piece(re->code, md.get(), w, next);
    words = std::move(next);
  }
  return words;
}

}  // namespace reprise
