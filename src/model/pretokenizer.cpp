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

// The regex sets below are the ones llama.cpp (commit 0c1e570, src/llama-vocab.cpp) runs for each
// tokenizer.ggml.pre name, which in turn follow the models' Hugging Face tokenizer.json files.

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

// As Qwen2 but combining marks count as part of a word (Qwen3.5).
const std::string& qwen35_pattern() {
  static const std::string p =
      std::string(kContractions) +
      R"(|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+)"
      R"(|\s+(?!\S)|\s+)";
  return p;
}

// GPT-2's pattern. llama.cpp matches it with a hand-written splitter that also takes a lone
// whitespace run the pattern leaves over, hence the final \s+.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Every digit a word of its own (applied before another pattern).
constexpr const char* kSingleDigits = R"(\p{N})";

// CJK ideographs, the Samaritan..CJK span and Hangul, as DeepSeek's tokenizers group them.
constexpr const char* kDeepseekCjk = R"([\x{4e00}-\x{9fa5}\x{800}-\x{4e00}\x{ac00}-\x{d7ff}]+)";

// DeepSeek LLM's letters: the cased letters (Latin, Greek, Cyrillic, Armenian, Georgian,
// Cherokee, Glagolitic, Coptic, Deseret, ...) as its tokenizer.json lists them; uncased scripts
// such as CJK fall through to the other patterns.
const std::string& deepseek_llm_letters() {
  static const std::string p =
      std::string(R"(\s?[)") +
      R"(A-Za-z\x{b5}\x{c0}-\x{d6}\x{d8}-\x{f6}\x{f8}-\x{1ba}\x{1bc}-\x{1bf}\x{1c4}-\x{293})"
      R"(\x{295}-\x{2af}\x{370}-\x{373}\x{376}\x{377}\x{37b}-\x{37d}\x{37f}\x{386})"
      R"(\x{388}-\x{38a}\x{38c}\x{38e}-\x{3a1}\x{3a3}-\x{3f5}\x{3f7}-\x{481}\x{48a}-\x{52f})"
      R"(\x{531}-\x{556}\x{10a0}-\x{10c5}\x{13a0}-\x{13f5}\x{13f8}-\x{13fd}\x{1c90}-\x{1cba})"
      R"(\x{1cbd}-\x{1cbf}\x{1d00}-\x{1d2b}\x{1d6b}-\x{1d77}\x{1d79}-\x{1d9a}\x{1e00}-\x{1f15})"
      R"(\x{1f18}-\x{1f1d}\x{1f20}-\x{1f45}\x{1f48}-\x{1f4d}\x{1f50}-\x{1f57}\x{1f59}\x{1f5b})"
      R"(\x{1f5d}\x{1f5f}-\x{1f7d}\x{1f80}-\x{1fb4}\x{1fb6}-\x{1fbc}\x{1fbe}\x{1fc2}-\x{1fc4})"
      R"(\x{1fc6}-\x{1fcc}\x{1fd0}-\x{1fd3}\x{1fd6}-\x{1fdb}\x{1fe0}-\x{1fec}\x{1ff2}-\x{1ff4})"
      R"(\x{1ff6}-\x{1ffc}\x{2102}\x{2107}\x{210a}-\x{2113}\x{2115}\x{2119}-\x{211d}\x{2124})"
      R"(\x{2126}\x{2128}\x{212a}-\x{212d}\x{212f}-\x{2134}\x{2139}\x{213c}-\x{213f})"
      R"(\x{2145}-\x{2149}\x{214e}\x{2183}\x{2184}\x{2c00}-\x{2c7b}\x{2c7e}-\x{2ce4})"
      R"(\x{2ceb}-\x{2cee}\x{2cf2}\x{2cf3}\x{a640}-\x{a66d}\x{a680}-\x{a69b}\x{a722}-\x{a76f})"
      R"(\x{a771}-\x{a787}\x{a78b}-\x{a78e}\x{ab70}-\x{abbf}\x{fb00}-\x{fb06}\x{fb13}-\x{fb17})"
      R"(\x{ff21}-\x{ff3a}\x{ff41}-\x{ff5a}\x{10400}-\x{1044f}\x{104b0}-\x{104d3})"
      R"(\x{104d8}-\x{104fb}\x{10c80}-\x{10cb2}\x{10cc0}-\x{10cf2}\x{118a0}-\x{118df})"
      R"(\x{1e900}-\x{1e943})"
      "]+";
  return p;
}

struct Preset {
  std::vector<std::string> names;
  std::vector<std::string> patterns;
  bool ignore_merges;  // a word that is itself a token is emitted without running merges
  bool adds_bos;       // llama.cpp prepends BOS unless the file says otherwise
};

const std::vector<Preset>& presets() {
  static const std::vector<Preset> p = {
      {{"llama3", "llama-bpe", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"},
       {llama3_pattern()},
       true,
       true},
      // Llama 3's pattern without its other two habits.
      {{"dbrx", "smaug-bpe"}, {llama3_pattern()}, false, false},
      {{"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2", "hunyuan"},
       {qwen2_pattern()},
       false,
       false},
      {{"qwen35"}, {qwen35_pattern()}, false, false},
      {{"gpt2", "gpt-2", "phi-2", "mpt", "olmo", "exaone4", "mellum"},
       {kGpt2Pattern},
       false,
       false},
      // SmolLM/SmolLM2, StarCoder and kin: digits one by one, then GPT-2's pattern.
      {{"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"},
       {kSingleDigits, kGpt2Pattern},
       false,
       false},
      {{"deepseek-coder"},
       {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kDeepseekCjk, kSingleDigits},
       false,
       false},
      {{"deepseek-llm"},
       {"[\\r\\n]", deepseek_llm_letters(),
        R"(\s?[!-/:-~\x{ff01}-\x{ff0f}\x{ff1a}-\x{ff5e}\x{2018}-\x{201f}\x{3000}-\x{3002}]+)",
        R"(\s+\z)", kDeepseekCjk, R"(\p{N}+)"},
       false,
       false},
      {{"falcon"},
       {R"([\p{P}\$\+<=>\^~\|`]+)",
        R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)",
        "[0-9][0-9][0-9]"},
       false,
       false},
      // What llama.cpp runs when a BPE file names no pre-tokenizer.
      {{"default", ""},
       {R"([\p{P}\$\+<=>\^~\|]+)",
        R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))", R"(\p{N}+)",
        R"([0-9][0-9][0-9])"},
       false,
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

bool PreTokenizer::adds_bos(std::string_view name) {
  const Preset* preset = find_preset(name);
  return preset && preset->adds_bos;
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
