#include "model/vocab.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <array>
#include <optional>
#include <string_view>

#include "format/gguf.h"
#include "model/pretokenizer.h"
#include "util/error.h"

namespace reprise {
namespace {

constexpr std::string_view kModelKey = "tokenizer.ggml.model";
constexpr std::string_view kTokensKey = "tokenizer.ggml.tokens";
constexpr std::string_view kScoresKey = "tokenizer.ggml.scores";
constexpr std::string_view kTypesKey = "tokenizer.ggml.token_type";
constexpr std::string_view kMergesKey = "tokenizer.ggml.merges";

Vocab::Model parse_model_name(const GgufFile& gguf) {
  const auto name = gguf.get_string(kModelKey);
  if (!name || *name == "none" || name->empty()) return Vocab::Model::None;
  if (*name == "llama") return Vocab::Model::Spm;
  if (*name == "gpt2") return Vocab::Model::Bpe;
  throw FormatError(gguf.path(), fmt::format("unknown tokenizer model \"{}\" in {} (known: llama, "
                                             "gpt2, none)",
                                             *name, kModelKey));
}

// An array metadata value of the given element kind, or nullptr when the key is absent.
const GgufValue* find_array(const GgufFile& gguf, std::string_view key, std::string_view kind,
                            bool (*accepts)(GgufType)) {
  const GgufValue* v = gguf.find(key);
  if (!v) return nullptr;
  if (!v->is_array() || !accepts(v->elem))
    throw FormatError(gguf.path(),
                      fmt::format("metadata {} is {}, expected an array of {}", key,
                                  gguf_type_name(v->is_array() ? v->elem : v->type), kind));
  return v;
}

bool is_string_type(GgufType t) {
  return t == GgufType::STRING;
}
bool is_float_type(GgufType t) {
  return t == GgufType::F32 || t == GgufType::F64;
}
bool is_int_type(GgufType t) {
  return t != GgufType::STRING && t != GgufType::ARRAY && t != GgufType::BOOL && !is_float_type(t);
}

void check_length(const GgufFile& gguf, std::string_view key, size_t have, size_t want) {
  if (have != want)
    throw FormatError(gguf.path(),
                      fmt::format("{} has {} entries but {} has {}", key, have, kTokensKey, want));
}

std::vector<TokenAttr> read_attrs(const GgufFile& gguf, size_t n_tokens) {
  const GgufValue* v = find_array(gguf, kTypesKey, "integers", is_int_type);
  if (!v) return std::vector<TokenAttr>(n_tokens, TokenAttr::Normal);
  check_length(gguf, kTypesKey, v->ints.size(), n_tokens);
  std::vector<TokenAttr> attrs;
  attrs.reserve(n_tokens);
  for (size_t i = 0; i < v->ints.size(); ++i) {
    const int64_t t = v->ints[i];
    if (t < 0 || t > static_cast<int64_t>(TokenAttr::Byte))
      throw FormatError(gguf.path(),
                        fmt::format("{}[{}] is {}, not a token type (0 to 6)", kTypesKey, i, t));
    attrs.push_back(static_cast<TokenAttr>(t));
  }
  return attrs;
}

// A special token id; absent, -1 and 0xFFFFFFFF (how converters write "none") all mean -1.
int32_t read_special_id(const GgufFile& gguf, std::string_view key, int32_t n_tokens,
                        int32_t fallback) {
  const auto v = gguf.get_int(key);
  if (!v) return fallback < n_tokens ? fallback : -1;
  if (*v == -1 || *v == 0xFFFFFFFFll) return -1;
  if (*v < 0 || *v >= n_tokens)
    throw FormatError(gguf.path(), fmt::format("{} is {}, outside the vocabulary of {} tokens", key,
                                               *v, n_tokens));
  return static_cast<int32_t>(*v);
}

void read_merges(const GgufFile& gguf, Vocab& vocab) {
  const GgufValue* v = find_array(gguf, kMergesKey, "strings", is_string_type);
  if (v) vocab.merges = v->strings;
  if (vocab.model == Vocab::Model::Bpe && vocab.merges.empty())
    throw FormatError(gguf.path(), fmt::format("BPE vocabulary has no {}", kMergesKey));
  for (size_t i = 0; i < vocab.merges.size(); ++i) {
    const std::string& m = vocab.merges[i];
    // The left part may itself be a lone space, so the separator is searched from offset 1.
    const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
    if (sp == std::string::npos || sp + 1 >= m.size())
      throw FormatError(gguf.path(), fmt::format("{}[{}] \"{}\" is not two pieces split by a space",
                                                 kMergesKey, i, m));
  }
}

void read_special_ids(const GgufFile& gguf, Vocab& vocab) {
  const int32_t n = vocab.size();
  const bool spm = vocab.model == Vocab::Model::Spm;
  // SentencePiece's llama vocabularies put <unk>, <s>, </s> at 0, 1, 2 when the file is silent.
  vocab.bos = read_special_id(gguf, "tokenizer.ggml.bos_token_id", n, spm ? 1 : -1);
  vocab.eos = read_special_id(gguf, "tokenizer.ggml.eos_token_id", n, spm ? 2 : -1);
  vocab.unk = read_special_id(gguf, "tokenizer.ggml.unknown_token_id", n, spm ? 0 : -1);
  vocab.pad = read_special_id(gguf, "tokenizer.ggml.padding_token_id", n, -1);
  vocab.eot = read_special_id(gguf, "tokenizer.ggml.eot_token_id", n, -1);
  if (vocab.eot < 0) vocab.eot = guess_eot_token(vocab);
}

void read_flags(const GgufFile& gguf, Vocab& vocab) {
  const bool spm = vocab.model == Vocab::Model::Spm;
  vocab.add_bos = gguf.get_bool("tokenizer.ggml.add_bos_token")
                      .value_or(spm || PreTokenizer::adds_bos(vocab.pre));
  vocab.add_eos = gguf.get_bool("tokenizer.ggml.add_eos_token").value_or(false);
  vocab.add_space_prefix = gguf.get_bool("tokenizer.ggml.add_space_prefix").value_or(spm);
  if (vocab.add_bos && vocab.bos < 0)
    throw FormatError(gguf.path(), "tokenizer.ggml.add_bos_token is set but there is no BOS");
  if (vocab.add_eos && vocab.eos < 0)
    throw FormatError(gguf.path(), "tokenizer.ggml.add_eos_token is set but there is no EOS");
}

}  // namespace

int32_t guess_eot_token(const Vocab& vocab) {
  static constexpr std::array<std::string_view, 6> kTexts = {
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|end_of_turn|>", "<EOT>"};
  for (std::string_view text : kTexts)
    for (int32_t id = 0; id < vocab.size(); ++id)
      if (vocab.tokens[id] == text) return id;
  return -1;
}

void check_vocab(const Vocab& vocab, const std::string& source) {
  if (vocab.model == Vocab::Model::None) return;
  const size_t n = vocab.tokens.size();
  if (n == 0) throw FormatError(source, "vocabulary has no tokens");
  if (n > static_cast<size_t>(INT32_MAX))
    throw FormatError(source, fmt::format("vocabulary has {} tokens, too many", n));
  if (!vocab.scores.empty() && vocab.scores.size() != n)
    throw FormatError(
        source, fmt::format("vocabulary has {} tokens but {} scores", n, vocab.scores.size()));
  if (vocab.attrs.size() != n)
    throw FormatError(
        source, fmt::format("vocabulary has {} tokens but {} token types", n, vocab.attrs.size()));
  const std::pair<const char*, int32_t> ids[] = {{"bos", vocab.bos},
                                                 {"eos", vocab.eos},
                                                 {"eot", vocab.eot},
                                                 {"unk", vocab.unk},
                                                 {"pad", vocab.pad}};
  for (const auto& [name, id] : ids)
    if (id < -1 || id >= static_cast<int32_t>(n))
      throw FormatError(source, fmt::format("{} token id {} is outside the vocabulary of {} tokens",
                                            name, id, n));
  if (vocab.model == Vocab::Model::Bpe && vocab.merges.empty())
    throw FormatError(source, "BPE vocabulary has no merges");
}

Vocab vocab_from_gguf(const GgufFile& gguf) {
  Vocab vocab;
  vocab.model = parse_model_name(gguf);
  vocab.chat_template = gguf.get_string("tokenizer.chat_template").value_or("");
  if (vocab.model == Vocab::Model::None) return vocab;

  const GgufValue* tokens = find_array(gguf, kTokensKey, "strings", is_string_type);
  if (!tokens || tokens->strings.empty())
    throw FormatError(gguf.path(), fmt::format("{} is missing or empty", kTokensKey));
  if (tokens->strings.size() > static_cast<size_t>(INT32_MAX))
    throw FormatError(gguf.path(), fmt::format("{} has too many entries", kTokensKey));
  vocab.tokens = tokens->strings;
  const size_t n = vocab.tokens.size();

  if (const GgufValue* scores = find_array(gguf, kScoresKey, "floats", is_float_type)) {
    check_length(gguf, kScoresKey, scores->floats.size(), n);
    vocab.scores.assign(scores->floats.begin(), scores->floats.end());
  } else if (vocab.model == Vocab::Model::Spm) {
    vocab.scores.assign(n, 0.0f);  // every merge then ties and the leftmost pair goes first
  }
  vocab.attrs = read_attrs(gguf, n);
  read_merges(gguf, vocab);
  vocab.pre = gguf.get_string("tokenizer.ggml.pre").value_or("");
  if (vocab.model == Vocab::Model::Bpe && !PreTokenizer::is_known(vocab.pre))
    throw FormatError(gguf.path(),
                      fmt::format("tokenizer.ggml.pre \"{}\" is not a known "
                                  "pre-tokenizer (known: {})",
                                  vocab.pre, fmt::join(PreTokenizer::known_names(), ", ")));
  read_special_ids(gguf, vocab);
  read_flags(gguf, vocab);
  check_vocab(vocab, gguf.path());
  return vocab;
}

}  // namespace reprise
