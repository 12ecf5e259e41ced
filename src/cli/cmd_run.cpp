// reprise run: generate text along a layer path, streaming tokens as they come.
#include <fmt/format.h>

#include <cstdio>

#include "cli/common.h"
#include "engine/generator.h"
#include "engine/sampler.h"
#include "util/error.h"

namespace reprise::cli {
namespace {

struct RunOptions {
  ModelOptions model;
  std::string prompt;
  std::string tokens;
  int n_predict = 64;
  SamplerOptions sampler;
  bool no_bos = false;
  bool special = false;
  bool ignore_eos = false;
};

int run_run(const RunOptions& o) {
  if (o.tokens.empty() && o.prompt.empty()) throw Error("run needs a prompt (-p) or --tokens");
  auto m = o.model.load();
  LayerPath path = o.model.layer_path(*m);
  Sampler{o.sampler};  // rejects bad sampling options before anything is printed
  std::vector<int32_t> ids = o.tokens.empty()
                                 ? tokenize_prompt(*m, o.prompt, !o.no_bos, o.special)
                                 : parse_token_list(o.tokens);
  if (ids.empty()) throw Error("the prompt has no tokens");
  Session session(*m, path, o.model.session_options());
  const Tokenizer* tok = m->tokenizer();
  fmt::print(stderr, "path: {} ({} positions over {} layers)\n", path.canonical(), path.size(),
             m->hparams().n_layer);

  if (tok) {
    fmt::print("{}", o.tokens.empty() ? o.prompt : tok->decode(ids));
  } else {
    fmt::print("{}", o.tokens);
  }
  std::fflush(stdout);

  GenerateOptions go;
  go.max_tokens = o.n_predict;
  go.sampler = o.sampler;
  go.ignore_eos = o.ignore_eos;
  auto result = generate(session, tok, ids, go, [&](const GenerationChunk& c) {
    if (tok) {
      fmt::print("{}", c.text);
    } else {
      for (const auto& t : c.tokens) fmt::print(" {}", t.id);
    }
    std::fflush(stdout);
    return true;
  });
  fmt::print("\n");
  fmt::print(stderr, "prompt: {} tokens in {:.3f} s ({:.1f} t/s); generated: {} tokens in {:.3f} s "
                     "({:.1f} t/s)\n",
             ids.size(), result.prefill_seconds,
             ids.size() / std::max(result.prefill_seconds, 1e-9), result.completion_tokens,
             result.decode_seconds, result.completion_tokens / std::max(result.decode_seconds, 1e-9));
  return 0;
}

void add_run(CLI::App& app, Runner& run) {
  auto o = std::make_shared<RunOptions>();
  auto* sub = app.add_subcommand("run", "generate text along a layer path");
  o->model.add_to(*sub);
  sub->add_option("-p,--prompt", o->prompt, "text prompt");
  sub->add_option("--tokens", o->tokens, "prompt as comma-separated token ids");
  sub->add_option("-n,--n-predict", o->n_predict, "tokens to generate")
      ->check(CLI::Range(0, 1 << 20));
  sub->add_option("--temp", o->sampler.temperature, "temperature; 0 = greedy (default)");
  sub->add_option("--top-k", o->sampler.top_k, "keep the k most likely tokens (0 = all)");
  sub->add_option("--top-p", o->sampler.top_p, "nucleus probability mass");
  sub->add_option("--seed", o->sampler.seed, "random seed for sampling");
  sub->add_flag("--no-bos", o->no_bos, "do not add the BOS token");
  sub->add_flag("--special", o->special, "parse special token texts in the prompt");
  sub->add_flag("--ignore-eos", o->ignore_eos, "keep generating past end-of-sequence");
  sub->callback([&run, o] { run = [o] { return run_run(*o); }; });
}

const CommandRegistration kRegistration(20, add_run);

}  // namespace
}  // namespace reprise::cli
