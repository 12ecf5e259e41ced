#include "eval/chat_family.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "model/chat_template.h"
#include "util/error.h"

namespace reprise::eval {

std::string resolve_chat_family(const std::string& requested, const Tokenizer* tok,
                                UnknownTemplate unknown, const std::string& flag,
                                const std::string& model_path) {
  if (!requested.empty() && requested != "auto") {
    const auto& fams = chat_template_families();
    if (std::find(fams.begin(), fams.end(), requested) == fams.end())
      throw Error(
          fmt::format("{} '{}': unknown (known: {})", flag, requested, fmt::join(fams, ", ")));
    return requested;
  }
  if (tok)
    if (auto family = detect_chat_template(tok->vocab().chat_template)) return *family;
  if (unknown == UnknownTemplate::ChatML) return "chatml";
  throw Error(fmt::format("{} auto: {} has no chat template reprise recognises; name a family ({})",
                          flag, model_path, fmt::join(chat_template_families(), ", ")));
}

PromptFormat eval_prompt_format(const std::string& requested, const Tokenizer* tok,
                                const std::string& model_path) {
  PromptFormat f;
  if (requested.empty()) return f;
  f.chat_family =
      resolve_chat_family(requested, tok, UnknownTemplate::Refuse, "--chat", model_path);
  if (requested == "auto" && tok)
    f.chat_system = default_system_message(tok->vocab().chat_template).value_or("");
  return f;
}

}  // namespace reprise::eval
