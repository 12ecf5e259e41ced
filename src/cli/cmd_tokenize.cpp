// reprise tokenize -m MODEL -p TEXT: the token ids of a text.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "model/utf8_stream.h"

namespace reprise::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  std::string prompt;
  bool no_bos = false;
  bool special = false;
  bool pieces = false;
};

// A token as llama.cpp's llama-tokenize shows it: control and byte tokens by their vocabulary text
// ("<s>", "<|im_start|>", "<0xE4>"), others by their text, with any byte that is not part of a
// whole UTF-8 character written as <0xNN>.
std::string printable_piece(const Tokenizer& tok, int32_t id) {
  const Vocab& v = tok.vocab();
  const TokenAttr attr = static_cast<size_t>(id) < v.attrs.size() ? v.attrs[id] : TokenAttr::Normal;
  if (attr == TokenAttr::Control || attr == TokenAttr::Byte || attr == TokenAttr::Unknown)
    return v.tokens[id];
  const std::string piece = tok.token_to_piece(id);
  std::string out;
  for (size_t i = 0, len = 0; i < piece.size(); i += len) {
    if (utf8_sequence_at(piece, i, len) == Utf8Status::Complete) {
      out.append(piece, i, len);
    } else {
      out += fmt::format("<0x{:02X}>", static_cast<unsigned char>(piece[i]));
      len = 1;
    }
  }
  return out;
}

int run_tokenize(const TokenizeOptions& o) {
  auto m = Model::load(o.model, Model::Need::Tokenizer);
  auto ids = tokenize_prompt(*m, o.prompt, !o.no_bos, o.special);
  if (!o.pieces) {
    fmt::print("[{}]\n", fmt::join(ids, ", "));
    return 0;
  }
  for (int32_t id : ids) fmt::print("{:>8} -> '{}'\n", id, printable_piece(*m->tokenizer(), id));
  return 0;
}

}  // namespace

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

}  // namespace reprise::cli
