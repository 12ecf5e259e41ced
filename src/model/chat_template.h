// Chat formatting for the common prompt formats, without a Jinja interpreter: each family is
// written out by hand, and a model's Jinja template is only used to recognise its family.
//
// No output starts with a BOS text: the tokenizer adds BOS (EncodeOptions::add_bos). Formats
// that put EOS/BOS between turns (llama2 "</s><s>", mistral "</s>") write the token texts, so
// a multi-turn prompt must be encoded with parse_special.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace reprise {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant" (chatml and llama3 accept any role)
  std::string content;
};

// "chatml", "llama3", "llama2", "mistral", "gemma".
const std::vector<std::string>& chat_template_families();

// The prompt for `msgs` in the given family; with add_generation_prompt it ends where the
// assistant's reply begins. Families without a system role (mistral, gemma) and llama2 (whose
// <<SYS>> block lives inside the user turn) fold system messages into the next user turn.
// Throws Error for an unknown family (listing the known ones) or a role the family lacks.
std::string format_chat(const std::string& family, const std::vector<ChatMessage>& msgs,
                        bool add_generation_prompt);

// The family whose markers appear in a Jinja chat template, or nullopt.
std::optional<std::string> detect_chat_template(const std::string& jinja_source);

// The system message a ChatML template writes itself when the conversation has none (SmolLM2:
// "You are a helpful AI assistant named SmolLM, trained by Hugging Face"), or nullopt. Callers
// that format a conversation without a system message add this one to render what the model's
// own template renders.
std::optional<std::string> default_system_message(const std::string& jinja_source);

}  // namespace reprise
