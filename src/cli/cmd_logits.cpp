// reprise logits: raw logits as JSON, for comparisons with other runtimes.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/error.h"

namespace reprise::cli {
namespace {

struct LogitsOptions {
  ModelOptions model;
  std::string tokens;
  std::string prompt;
  bool all_positions = false;
  bool no_bos = false;
};

void print_row(std::span<const float> row) {
  fmt::print("[");
  for (size_t i = 0; i < row.size(); ++i) {
    if (i) fmt::print(",");
    fmt::print("{}", row[i]);
  }
  fmt::print("]");
}

int run_logits(const LogitsOptions& o) {
  if (o.tokens.empty() == o.prompt.empty()) throw Error("logits needs exactly one of --tokens, -p");
  auto m = o.model.load();
  LayerPath path = o.model.layer_path(*m);
  std::vector<int32_t> ids = o.tokens.empty()
                                 ? tokenize_prompt(*m, o.prompt, !o.no_bos, /*special=*/false)
                                 : parse_token_list(o.tokens);
  Session s(*m, path, o.model.session_options());
  auto logits = s.prefill(ids, o.all_positions);
  const size_t n_vocab = m->hparams().n_vocab;
  fmt::print("{{\"tokens\":[{}],\"path\":[{}],\"logits\":[", fmt::join(ids, ","),
             fmt::join(path.layers, ","));
  for (size_t r = 0; r < logits.size() / n_vocab; ++r) {
    if (r) fmt::print(",");
    print_row(logits.subspan(r * n_vocab, n_vocab));
  }
  fmt::print("]}}\n");
  return 0;
}

}  // namespace

void add_logits(CLI::App& app, Runner& run) {
  auto o = std::make_shared<LogitsOptions>();
  auto* sub = app.add_subcommand("logits", "print the logits of a prompt as JSON");
  o->model.add_to(*sub);
  sub->add_option("--tokens", o->tokens, "comma-separated token ids");
  sub->add_option("-p,--prompt", o->prompt, "text prompt");
  sub->add_flag("--all-positions", o->all_positions, "logits for every prompt position");
  sub->add_flag("--no-bos", o->no_bos, "do not add the BOS token to -p");
  sub->callback([&run, o] { run = [o] { return run_logits(*o); }; });
}

}  // namespace reprise::cli
