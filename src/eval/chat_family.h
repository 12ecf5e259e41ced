// Which chat template family a command wraps prompts in: the one resolution `eval --chat`,
// `chat --chat-template` and `serve --chat-template` share.
#pragma once

#include <string>

#include "eval/request_tokens.h"
#include "model/tokenizer.h"

namespace reprise::eval {

// What to do when the model's template is not one reprise recognises.
enum class UnknownTemplate {
  Refuse,  // an Error naming the model (eval --chat auto: scoring in a guessed format misleads)
  ChatML,  // fall back to ChatML (interactive chat and the server)
};

// `requested`: a family name (checked: an unknown one is an Error naming `flag` and listing the
// known families), or "auto" / "" for the family whose markers the model's own Jinja template
// (`tok`'s vocabulary; none without a tokenizer) shows. `model_path` names the model in errors.
std::string resolve_chat_family(const std::string& requested, const Tokenizer* tok,
                                UnknownTemplate unknown, const std::string& flag,
                                const std::string& model_path);

// The prompt format of `eval --chat REQUESTED`: "" plain prompts; "auto" the model's own family
// with the system turn its template writes by default (what the model's template renders); a
// family name as given, with no system turn. Errors as resolve_chat_family (Refuse).
PromptFormat eval_prompt_format(const std::string& requested, const Tokenizer* tok,
                                const std::string& model_path);

}  // namespace reprise::eval
