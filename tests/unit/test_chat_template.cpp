// Chat formatting per family against hand-written prompts, and family detection from Jinja
// templates written in the style of the models' tokenizer_config.json.
#include <gtest/gtest.h>

#include "model/chat_template.h"
#include "util/error.h"

namespace reprise {
namespace {

const std::vector<ChatMessage> kConversation = {
    {"system", "You are terse."},
    {"user", "Hi!"},
    {"assistant", "Hello."},
    {"user", "Name a colour."},
};

TEST(ChatTemplate, ChatMl) {
  EXPECT_EQ(format_chat("chatml", kConversation, true),
            "<|im_start|>system\nYou are terse.<|im_end|>\n"
            "<|im_start|>user\nHi!<|im_end|>\n"
            "<|im_start|>assistant\nHello.<|im_end|>\n"
            "<|im_start|>user\nName a colour.<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(format_chat("chatml", {{"user", "x"}}, false), "<|im_start|>user\nx<|im_end|>\n");
}

TEST(ChatTemplate, Llama3) {
  EXPECT_EQ(format_chat("llama3", kConversation, true),
            "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nName a colour.<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // Content is trimmed, as the official template does.
  EXPECT_EQ(format_chat("llama3", {{"user", "  x \n"}}, false),
            "<|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|>");
}

TEST(ChatTemplate, Llama2PutsSystemInsideFirstTurn) {
  EXPECT_EQ(format_chat("llama2", kConversation, true),
            "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi! [/INST] Hello. </s>"
            "<s>[INST] Name a colour. [/INST]");
  EXPECT_EQ(format_chat("llama2", {{"user", "Hi!"}}, true), "[INST] Hi! [/INST]");
}

TEST(ChatTemplate, MistralFoldsSystemIntoFirstUserTurn) {
  EXPECT_EQ(format_chat("mistral", kConversation, true),
            "[INST] You are terse.\n\nHi! [/INST]Hello.</s>[INST] Name a colour. [/INST]");
  EXPECT_EQ(format_chat("mistral", {{"user", "Hi!"}}, false), "[INST] Hi! [/INST]");
}

TEST(ChatTemplate, GemmaFoldsSystemIntoFirstUserTurn) {
  EXPECT_EQ(format_chat("gemma", kConversation, true),
            "<start_of_turn>user\nYou are terse.\n\nHi!<end_of_turn>\n"
            "<start_of_turn>model\nHello.<end_of_turn>\n"
            "<start_of_turn>user\nName a colour.<end_of_turn>\n"
            "<start_of_turn>model\n");
  EXPECT_EQ(format_chat("gemma", {{"user", "Hi!"}}, false),
            "<start_of_turn>user\nHi!<end_of_turn>\n");
}

TEST(ChatTemplate, SystemAloneIsNotLost) {
  EXPECT_EQ(format_chat("gemma", {{"system", "Be kind."}}, true),
            "<start_of_turn>user\nBe kind.\n\n<end_of_turn>\n<start_of_turn>model\n");
}

TEST(ChatTemplate, UnknownFamilyListsKnownOnes) {
  try {
    format_chat("vicuna", kConversation, true);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_STREQ(
        e.what(),
        "unknown chat template \"vicuna\" (known: chatml, llama3, llama2, mistral, gemma)");
  }
}

TEST(ChatTemplate, UnsupportedRole) {
  try {
    format_chat("gemma", {{"tool", "42"}}, true);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "chat template gemma: unsupported role \"tool\" (system, user, assistant)");
  }
  // ChatML passes any role through.
  EXPECT_EQ(format_chat("chatml", {{"tool", "42"}}, false), "<|im_start|>tool\n42<|im_end|>\n");
}

TEST(ChatTemplate, DetectsFamilies) {
  const std::string qwen =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
      "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
      "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
      "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  const std::string llama3 =
      "{% set loop_messages = messages %}{% for message in loop_messages %}"
      "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ "
      "message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
      "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
      "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
      "{% endif %}";
  const std::string llama2 =
      "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
      "{% set system_message = messages[0]['content'] %}{% else %}"
      "{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
      "{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}"
      "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
      "{% else %}{% set content = message['content'] %}{% endif %}"
      "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
      "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}"
      "{% endif %}{% endfor %}";
  const std::string mistral =
      "{{ bos_token }}{% for message in messages %}"
      "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
      "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
      "{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' "
      "}}"
      "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
      "{% endif %}{% endfor %}";
  const std::string gemma =
      "{{ bos_token }}{% for message in messages %}"
      "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
      "{% else %}{% set role = message['role'] %}{% endif %}"
      "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
      "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}";

  EXPECT_EQ(detect_chat_template(qwen), "chatml");
  EXPECT_EQ(detect_chat_template(llama3), "llama3");
  EXPECT_EQ(detect_chat_template(llama2), "llama2");
  EXPECT_EQ(detect_chat_template(mistral), "mistral");
  EXPECT_EQ(detect_chat_template(gemma), "gemma");
  EXPECT_EQ(detect_chat_template("{{ messages[0]['content'] }}"), std::nullopt);
  EXPECT_EQ(detect_chat_template(""), std::nullopt);
  for (const std::string& family : chat_template_families())
    EXPECT_NO_THROW(format_chat(family, kConversation, true)) << family;
}

// SmolLM2-135M-Instruct's tokenizer.chat_template, as stored in its GGUF (real newlines).
const std::string kSmolLM2Template =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|im_start|>assistant\n' }}{% endif %}";

TEST(ChatTemplate, DefaultSystemMessageOfSmolLM2) {
  EXPECT_EQ(detect_chat_template(kSmolLM2Template), "chatml");
  EXPECT_EQ(default_system_message(kSmolLM2Template),
            "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  // The same template with Jinja's escaped newlines.
  std::string escaped;
  for (char c : kSmolLM2Template) escaped += c == '\n' ? std::string("\\n") : std::string(1, c);
  EXPECT_EQ(default_system_message(escaped),
            "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
}

TEST(ChatTemplate, NoDefaultSystemMessageUnlessTheTemplateWritesOne) {
  // Plain ChatML: the system turn, if any, is the caller's.
  EXPECT_EQ(default_system_message("{% for message in messages %}{{'<|im_start|>' + "
                                   "message['role'] + '\\n' + message['content'] + '<|im_end|>'}}"
                                   "{% endfor %}"),
            std::nullopt);
  // A system turn built from a variable is not a fixed default.
  EXPECT_EQ(default_system_message("{% if messages[0]['role'] != 'system' %}{{ "
                                   "'<|im_start|>system\\n' + default_system + '<|im_end|>' }}"
                                   "{% endif %}"),
            std::nullopt);
  // No guard on the first message's role.
  EXPECT_EQ(default_system_message("{{ '<|im_start|>system\\nBe brief.<|im_end|>' }}"),
            std::nullopt);
  EXPECT_EQ(default_system_message(""), std::nullopt);
}

}  // namespace
}  // namespace reprise
