// vLLM's tokenizer endpoints, which lm-evaluation-harness's `tokenizer_backend=remote` uses, so
// that a client can tokenize exactly as the server does without a tokenizer of its own:
//
//   POST /tokenize        {"prompt": str, "add_special_tokens": bool = true}
//                         → {"tokens": [ids], "count": n, "max_model_len": n_ctx}
//   POST /detokenize      {"tokens": [ids]} → {"prompt": str}
//   GET  /tokenizer_info  → {"tokenizer_class", "bos_token", "eos_token", "pad_token",
//                            "chat_template", "add_bos_token"}
//
// As in Hugging Face tokenizers, special-token texts in the prompt ("</s>") become those tokens;
// add_special_tokens adds BOS when the vocabulary asks for it. Errors throw ApiError (400) naming
// the field.
#pragma once

#include <nlohmann/json.hpp>

#include <string_view>

#include "model/tokenizer.h"

namespace reprise::serve {

nlohmann::ordered_json tokenize_reply(const Tokenizer* tokenizer, std::string_view body, int n_ctx);
nlohmann::ordered_json detokenize_reply(const Tokenizer* tokenizer, std::string_view body);
nlohmann::ordered_json tokenizer_info(const Tokenizer* tokenizer);

}  // namespace reprise::serve
