// reprise perplexity: llama-perplexity's chunked perplexity of a text file (or a sliding window).
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "eval/io.h"
#include "eval/perplexity.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/stopwatch.h"

namespace reprise::cli {
namespace {

struct PerplexityOptions {
  ModelOptions model;
  std::string file;
  int ctx = 512;
  int stride = 0;
  int chunks = 0;
  int batch = 512;
  bool json = false;
};

int run_perplexity(const PerplexityOptions& o) {
  if (o.ctx < 4) throw Error(fmt::format("-c {}: the context must be at least 4 tokens", o.ctx));
  if (o.stride < 0 || o.stride > o.ctx)
    throw Error(fmt::format("--stride {}: must be between 1 and -c ({})", o.stride, o.ctx));
  std::string text = eval::read_text_file(o.file);
  // llama.cpp drops one trailing newline of a prompt file; so do we, to tokenize the same text.
  if (!text.empty() && text.back() == '\n') text.pop_back();

  auto m = o.model.load();
  warn_if_beyond_training_context(*m, o.ctx, "-c");
  const LayerPath path = o.model.layer_path(*m);
  if (!m->tokenizer())
    throw Error(
        fmt::format("{}: the model has no vocabulary to tokenize the text with", m->path()));
  const Vocab& vocab = m->tokenizer()->vocab();
  EncodeOptions enc;
  enc.add_bos = false;
  std::vector<int32_t> tokens;
  if (vocab.add_bos && vocab.bos >= 0) tokens.push_back(vocab.bos);
  auto ids = m->tokenizer()->encode(text, enc);
  tokens.insert(tokens.end(), ids.begin(), ids.end());

  if (o.stride == 0 && tokens.size() < 2 * static_cast<size_t>(o.ctx))
    throw Error(fmt::format("{}: the text has {} tokens; -c {} needs at least {}", o.file,
                            tokens.size(), o.ctx, 2 * o.ctx));

  SessionOptions so = o.model.session_options();
  so.n_ctx = o.ctx;
  so.n_batch = std::min(o.batch, o.ctx);
  so.pack_weights = true;  // every window is a prefill over the same weights
  Session session(*m, path, so);
  eval::PerplexityOptions po;
  po.n_ctx = o.ctx;
  po.stride = o.stride;
  po.max_chunks = o.chunks;
  po.bos = vocab.add_bos ? vocab.bos : -1;
  fmt::print(stderr, "model: {} | path: {} | {} tokens | -c {} | {}\n", m->path(), path.canonical(),
             tokens.size(), o.ctx,
             o.stride ? fmt::format("sliding window, stride {}", o.stride)
                      : std::string("chunks, second half scored (llama-perplexity)"));
  const Stopwatch clock;
  std::unique_ptr<Progress> bar;
  const auto r = eval::perplexity(session, tokens, po, [&](int c, int n, double ppl) {
    if (!bar) bar = std::make_unique<Progress>(n, o.stride ? "windows" : "chunks");
    bar->update(c, fmt::format("ppl {:.4f}", ppl));
  });
  if (bar) bar->finish();
  const double seconds = clock.seconds();
  if (const PackedWeights* pw = session.packed_weights(); pw && !pw->describe().empty())
    fmt::print(stderr, "{}\n", pw->describe());
  if (o.json) {
    nlohmann::ordered_json j = {
        {"model", m->path()},   {"path", path.canonical()},   {"file", o.file},
        {"n_ctx", o.ctx},       {"stride", o.stride},         {"tokens", tokens.size()},
        {"chunks", r.n_chunks}, {"scored", r.n_scored},       {"mean_nll", r.mean_nll},
        {"ppl", r.ppl},         {"ppl_stderr", r.ppl_stderr}, {"running_ppl", r.running_ppl},
        {"seconds", seconds}};
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  std::string running;
  for (size_t k = 0; k < r.running_ppl.size(); ++k)
    running += fmt::format("[{}]{:.4f},", k + 1, r.running_ppl[k]);
  fmt::print("{}\n", running);
  fmt::print("Final estimate: PPL = {:.4f} +/- {:.5f}\n", r.ppl, r.ppl_stderr);
  fmt::print(stderr, "{} tokens scored in {} {} of {} ({:.1f} s)\n", r.n_scored, r.n_chunks,
             o.stride ? "windows" : "chunks", o.ctx, seconds);
  return 0;
}

}  // namespace

void add_perplexity(CLI::App& app, Runner& run) {
  auto o = std::make_shared<PerplexityOptions>();
  auto* sub = app.add_subcommand("perplexity",
                                 "perplexity of a text file (llama-perplexity's "
                                 "definition, or a sliding window)");
  sub->add_option("-m,--model", o->model.model, "GGUF file or Hugging Face safetensors directory")
      ->required();
  sub->add_option("-f,--file", o->file, "text file")->required();
  sub->add_option("-c,--ctx-size", o->ctx, "tokens per chunk / window (default 512)");
  sub->add_option("--stride", o->stride,
                  "sliding window: start a window every S tokens and score only new tokens "
                  "(default: llama.cpp's chunks)");
  sub->add_option("--chunks", o->chunks, "only the first N chunks (windows)")
      ->check(CLI::Range(0, 1 << 30));
  sub->add_option("--path", o->model.path, kLayerPathHelp);
  sub->add_option("-t,--threads", o->model.threads, "threads (default: all cores)")
      ->check(CLI::Range(0, 1024));
  sub->add_option("--kv-type", o->model.kv_type,
                  "KV cache element type: f32 or f16 (default: f32)");
  sub->add_option("-b,--batch-size", o->batch, "tokens per forward chunk (default 512)")
      ->check(CLI::Range(1, 1 << 20));
  sub->add_flag("--json", o->json, "print the result as JSON");
  sub->callback([&run, o] { run = [o] { return run_perplexity(*o); }; });
}

}  // namespace reprise::cli
