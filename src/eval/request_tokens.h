// The tokenization rules every LanguageModel implementation shares, so that two
// implementations (a plain session, a scan's prefix cache) score exactly the same tokens.
//
//  - A context starts with BOS when the vocabulary adds one (vocab.add_bos); EOS is never
//    appended.
//  - A context/continuation pair is tokenized as a whole and split where it stops agreeing with
//    the context alone, so the continuation's first token is whatever the tokenizer makes of the
//    boundary (" Paris" may be one token or a space and a word). Trailing whitespace of the
//    context moves to the continuation first, as lm-evaluation-harness does.
//  - A passage starts with the start token: BOS when the vocabulary adds one, else EOS (the token
//    a model sees between documents).
//  - With a chat family, a context becomes one user turn followed by the assistant prompt
//    (model/chat_template.h); the continuation then loses its leading whitespace.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace reprise {
class Tokenizer;
}

namespace reprise::eval {

struct PromptFormat {
  std::string chat_family;  // empty: plain text; else "chatml", "llama3", ... (format_chat)
  std::string chat_system;  // a system message put before each chat-wrapped prompt; may be empty
};

class RequestTokenizer {
 public:
  explicit RequestTokenizer(const Tokenizer& tokenizer, PromptFormat format = {});

  const Tokenizer& tokenizer() const { return tok_; }

  // BOS (when the vocabulary adds one) + the context text, chat-wrapped when asked.
  std::vector<int32_t> context(std::string_view text) const;

  struct Pair {
    std::vector<int32_t> context, continuation;
  };
  // Throws Error when the continuation adds no tokens.
  Pair pair(std::string_view context, std::string_view continuation) const;

  // Start token + the text. Throws Error when the vocabulary has neither BOS nor EOS.
  std::vector<int32_t> passage(std::string_view text) const;

  struct Candidates {
    std::vector<int32_t> context;  // the tokens every candidate shares
    std::vector<int32_t> tokens;   // each candidate's first token after them
  };
  // Throws Error when there are no candidates or two map to the same token.
  Candidates candidates(std::string_view context, std::span<const std::string> candidates) const;

  // BOS if the vocabulary adds one, else EOS; -1 when there is neither.
  int32_t start_token() const;

  // "plain" or "chat:<family>".
  std::string format_name() const;
  // The context and continuation texts as they are tokenized: unchanged for plain text, the
  // context wrapped and the continuation's leading whitespace dropped with a chat family.
  std::pair<std::string, std::string> rendered(std::string_view context,
                                               std::string_view continuation) const;

 private:
  // The context text as it is tokenized (chat-wrapped or not) and the continuation with the
  // whitespace moved or trimmed.
  std::pair<std::string, std::string> join_parts(std::string_view context,
                                                 std::string_view continuation) const;
  std::vector<int32_t> encode_with_bos(const std::string& text) const;

  const Tokenizer& tok_;
  PromptFormat format_;
};

}  // namespace reprise::eval
