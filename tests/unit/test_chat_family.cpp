// eval/chat_family.h: which chat family a command uses, and its one-line errors.
#include <gtest/gtest.h>

#include "eval/chat_family.h"
#include "util/error.h"

namespace reprise::eval {
namespace {

std::string error_of(const std::string& requested, UnknownTemplate unknown) {
  try {
    resolve_chat_family(requested, nullptr, unknown, "--chat", "m.gguf");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ChatFamily, ANamedFamilyIsCheckedAndKept) {
  EXPECT_EQ(resolve_chat_family("llama3", nullptr, UnknownTemplate::Refuse, "--chat", "m.gguf"),
            "llama3");
  EXPECT_EQ(error_of("bogus", UnknownTemplate::ChatML),
            "--chat 'bogus': unknown (known: chatml, llama3, llama2, mistral, gemma)");
}

TEST(ChatFamily, AutoWithoutARecognisedTemplateFallsBackOrRefuses) {
  EXPECT_EQ(resolve_chat_family("", nullptr, UnknownTemplate::ChatML, "--chat-template", "m"),
            "chatml");
  EXPECT_EQ(resolve_chat_family("auto", nullptr, UnknownTemplate::ChatML, "--chat", "m"), "chatml");
  EXPECT_EQ(error_of("auto", UnknownTemplate::Refuse),
            "--chat auto: m.gguf has no chat template reprise recognises; name a family "
            "(chatml, llama3, llama2, mistral, gemma)");
}

TEST(ChatFamily, EvalPromptFormat) {
  EXPECT_EQ(eval_prompt_format("", nullptr, "m").chat_family, "");
  const PromptFormat f = eval_prompt_format("gemma", nullptr, "m");
  EXPECT_EQ(f.chat_family, "gemma");
  EXPECT_EQ(f.chat_system, "");  // a named family gets no default system turn
}

}  // namespace
}  // namespace reprise::eval
