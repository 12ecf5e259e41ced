// reprise run: generate text along a layer path, streaming tokens as they come.
//
// The flags follow llama.cpp's llama-cli where they overlap (-p, -f, -n, -c, -s, --temp, --top-k,
// --top-p, --min-p, --repeat-penalty), so a command line can move between the two.
#include <fmt/format.h>

#include <cstdio>
#include <limits>
#include <random>

#include "cli/commands.h"
#include "cli/common.h"
#include "engine/generator.h"
#include "engine/sampler.h"
#include "eval/io.h"
#include "route/prefix_features.h"
#include "util/error.h"
#include "util/stopwatch.h"

namespace reprise::cli {
namespace {

struct RunOptions {
  ModelOptions model;
  std::string prompt;
  std::string prompt_file;
  std::string tokens;
  int n_predict = 64;  // -1: until end-of-sequence or the end of the context
  SamplerOptions sampler;
  int64_t seed = -1;  // -1: a random seed (printed)
  bool no_bos = false;
  bool special = false;
  bool ignore_eos = false;
};

int run_run(RunOptions o, bool prompt_given) {
  if (!o.prompt_file.empty()) o.prompt = eval::read_text_file(o.prompt_file);
  if (o.tokens.empty() && !prompt_given && o.prompt_file.empty())
    throw Error("run needs a prompt: -p TEXT (may be empty), -f FILE or --tokens");
  o.sampler.seed = o.seed >= 0 ? static_cast<uint64_t>(o.seed) : std::random_device{}();
  Sampler{o.sampler};  // rejects bad sampling options before the model loads
  const Stopwatch load_clock;
  auto m = o.model.load();
  // --path auto:FILE: the router is checked against the model before any prompt work.
  const std::string router_file = route::auto_router_file(o.model.path);
  std::unique_ptr<route::PathRouter> router;
  if (!router_file.empty()) router = route::open_router(*m, router_file, o.model.session_options());
  LayerPath path = router ? LayerPath{} : o.model.layer_path(*m);
  std::vector<int32_t> ids = o.tokens.empty() ? tokenize_prompt(*m, o.prompt, !o.no_bos, o.special)
                                              : parse_token_list(o.tokens);
  if (ids.empty())
    throw Error(
        "the prompt has no tokens (an empty prompt needs the model's BOS token; drop "
        "--no-bos)");
  if (router) {
    const auto c = router->choose(ids);
    path = c.path;
    fmt::print(stderr, "route: {} (p = {:.3f}) after layer {}\n", c.key, c.probability,
               router->file().feature_layer);
  }
  Session session(*m, path, o.model.session_options());
  if (router) session.set_prefix_cache(&router->cache());  // the prefix already run by choose()
  const double load_seconds = load_clock.seconds();
  const Tokenizer* tok = m->tokenizer();
  fmt::print(stderr, "path: {} ({} positions over {} layers); load {:.3f} s; seed {}\n",
             path.canonical(), path.size(), m->hparams().n_layer, load_seconds, o.sampler.seed);

  if (tok) {
    fmt::print("{}", o.tokens.empty() ? o.prompt : tok->decode(ids));
  } else {
    fmt::print("{}", o.tokens);
  }
  std::fflush(stdout);

  GenerateOptions go;
  go.max_tokens = o.n_predict < 0 ? session.n_ctx() : o.n_predict;
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
  // The text's last newline must reach a shared pipe (`2>&1 | cat`) before the stats line.
  fmt::print("\n");
  std::fflush(stdout);
  if (result.finish == FinishReason::Length && session.n_past() >= session.n_ctx())
    fmt::print(stderr, "generation stopped at the end of the context ({} tokens; raise --ctx)\n",
               session.n_ctx());
  fmt::print(stderr,
             "prompt: {} tokens in {:.3f} s ({:.1f} t/s); generated: {} tokens in {:.3f} s "
             "({:.1f} t/s)\n",
             ids.size(), result.prefill_seconds,
             ids.size() / std::max(result.prefill_seconds, 1e-9), result.completion_tokens,
             result.decode_seconds,
             result.completion_tokens / std::max(result.decode_seconds, 1e-9));
  return 0;
}

}  // namespace

void add_run(CLI::App& app, Runner& run) {
  auto o = std::make_shared<RunOptions>();
  auto* sub = app.add_subcommand("run", "generate text along a layer path");
  o->model.add_to(*sub);
  auto* prompt = sub->add_option("-p,--prompt", o->prompt, "text prompt (may be empty)");
  auto* file = sub->add_option("-f,--file", o->prompt_file, "read the prompt from a file");
  auto* tokens = sub->add_option("--tokens", o->tokens, "prompt as comma-separated token ids");
  prompt->excludes(file)->excludes(tokens);
  file->excludes(tokens);
  sub->add_option("-n,--n-predict", o->n_predict,
                  "tokens to generate; -1 = until end-of-sequence or the end of the context")
      ->check(CLI::Range(-1, 1 << 20));
  add_sampling_options(*sub, o->sampler);
  sub->add_option("-s,--seed", o->seed, "random seed for sampling (default -1: random, printed)")
      ->check(CLI::Range(int64_t{-1}, std::numeric_limits<int64_t>::max()));
  sub->add_flag("--no-bos", o->no_bos, "do not add the BOS token");
  sub->add_flag("--special", o->special, "parse special token texts in the prompt");
  sub->add_flag("--ignore-eos", o->ignore_eos, "keep generating past end-of-sequence");
  sub->callback([&run, o, prompt] {
    const bool prompt_given = prompt->count() > 0;
    run = [o, prompt_given] { return run_run(*o, prompt_given); };
  });
}

}  // namespace reprise::cli
