// reprise tokenize -m MODEL -p TEXT: the token ids of a text.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/common.h"

namespace reprise::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  std::string prompt;
  bool no_bos = false;
  bool special = false;
  bool pieces = false;
};

int run_tokenize(const TokenizeOptions& o) {
  auto m = Model::load(o.model, Model::Need::Tokenizer);
  auto ids = tokenize_prompt(*m, o.prompt, !o.no_bos, o.special);
  if (!o.pieces) {
    fmt::print("[{}]\n", fmt::join(ids, ", "));
    return 0;
  }
  for (int32_t id : ids) fmt::print("{:>8} -> '{}'\n", id, m->tokenizer()->token_to_piece(id));
  return 0;
}

void add_tokenize(CLI::App& app, Runner& run) {
  auto o = std::make_shared<TokenizeOptions>();
  auto* sub = app.add_subcommand("tokenize", "print the token ids of a text");
  sub->add_option("-m,--model", o->model,
                  "GGUF file (vocabulary-only files too) or safetensors directory")
      ->required();
  sub->add_option("-p,--prompt", o->prompt, "text to tokenize")->required();
  sub->add_flag("--no-bos", o->no_bos, "do not add the BOS token");
  sub->add_flag("--special", o->special, "parse special token texts such as <|im_start|>");
  sub->add_flag("--pieces", o->pieces, "print one id and its text per line");
  sub->callback([&run, o] { run = [o] { return run_tokenize(*o); }; });
}

const CommandRegistration kRegistration(50, add_tokenize);

}  // namespace
}  // namespace reprise::cli
