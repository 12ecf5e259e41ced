// Pre-tokenizers of byte-level BPE vocabularies: the regular expressions that cut a prompt into
// words before merges are applied (merges never cross a word boundary). Selected by the GGUF
// name in tokenizer.ggml.pre.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace reprise {

class PreTokenizer {
 public:
  // Throws Error naming the known names when `name` is not one of them.
  explicit PreTokenizer(const std::string& name);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Accepted names, for messages and for callers that want to check before building.
  static const std::vector<std::string>& known_names();
  static bool is_known(std::string_view name);
  // Whether llama.cpp prepends BOS for this name when the file has no add_bos_token (Llama 3).
  static bool adds_bos(std::string_view name);

  // Splits valid UTF-8 into words (views into text) that cover it without gaps. The caller
  // checks validity; the regex engine is told not to.
  std::vector<std::string_view> split(std::string_view text) const;

  // Llama 3 emits a word that is itself a token without running merges on it.
  bool ignore_merges() const { return ignore_merges_; }

 private:
  struct Regex;
  std::vector<std::unique_ptr<Regex>> regexes_;  // applied one after another
  bool ignore_merges_ = false;
};

}  // namespace reprise
