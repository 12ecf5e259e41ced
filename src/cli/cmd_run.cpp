// reprise run: generate text along a layer path, streaming tokens as they come.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>

#include "cli/common.h"
#include "engine/sampler.h"
#include "model/utf8_stream.h"
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

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int run_run(const RunOptions& o) {
  if (o.tokens.empty() && o.prompt.empty()) throw Error("run needs a prompt (-p) or --tokens");
  auto m = o.model.load();
  LayerPath path = o.model.layer_path(*m);
  Sampler sampler(o.sampler);
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

  auto t0 = Clock::now();
  auto logits = session.prefill(ids);
  const double prefill_s = seconds_since(t0);

  Utf8Stream stream;
  int generated = 0;
  auto t1 = Clock::now();
  const int32_t eos = tok ? tok->vocab().eos : -1, eot = tok ? tok->vocab().eot : -1;
  for (; generated < o.n_predict; ++generated) {
    const int32_t next = sampler.sample(logits);
    if (!o.ignore_eos && (next == eos || next == eot)) break;
    if (tok)
      fmt::print("{}", stream.push(tok->token_to_piece(next)));
    else
      fmt::print(" {}", next);
    std::fflush(stdout);
    if (generated + 1 == o.n_predict || session.n_past() >= session.n_ctx()) {
      ++generated;
      break;
    }
    logits = session.decode(next);
  }
  fmt::print("{}\n", stream.flush());
  const double gen_s = seconds_since(t1);
  fmt::print(stderr, "prompt: {} tokens in {:.3f} s ({:.1f} t/s); generated: {} tokens in {:.3f} s "
                     "({:.1f} t/s)\n",
             ids.size(), prefill_s, ids.size() / std::max(prefill_s, 1e-9), generated, gen_s,
             generated / std::max(gen_s, 1e-9));
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
