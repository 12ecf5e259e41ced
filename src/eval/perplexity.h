// Perplexity of a token stream, two ways.
//
// Chunked (the default) follows llama.cpp's llama-perplexity: the tokens are cut into
// floor(N / n_ctx) chunks of n_ctx tokens (a partial tail is dropped); each chunk is evaluated on
// its own with its first token replaced by BOS (when the model adds BOS), and only the tokens in
// its second half are scored, each predicted from at least n_ctx / 2 tokens of the chunk:
// positions first+1 .. n_ctx-1 with first = n_ctx / 2. PPL = exp(mean NLL) over every scored
// token of every chunk.
//
// Strided (stride > 0) is the sliding window of Hugging Face's perplexity guide: windows of
// n_ctx tokens start every `stride` tokens, and each window scores only the tokens the previous
// one did not reach, so every token after the first is scored exactly once with up to
// n_ctx - stride tokens of guaranteed history. Windows are not given a BOS.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "engine/session.h"

namespace reprise::eval {

struct PerplexityOptions {
  int n_ctx = 512;
  int stride = 0;      // 0: llama.cpp's chunks; else the sliding window
  int max_chunks = 0;  // 0: all; else only the first chunks (windows)
  int32_t bos = -1;    // chunked mode writes it over each chunk's first token when >= 0
};

struct PerplexityResult {
  double ppl = 0;
  double ppl_stderr = 0;  // ppl * stderr of the mean NLL (the delta method, as llama.cpp reports)
  double mean_nll = 0;
  int64_t n_scored = 0;
  int n_chunks = 0;
  std::vector<double> running_ppl;  // after each chunk (window)
};

// `session` must have n_ctx >= opts.n_ctx; its sequence is reset. Throws Error when the tokens
// are too few (chunked mode needs 2 n_ctx, as llama.cpp does) or the options are out of range.
// `progress(chunk, n_chunks, running_ppl)` is called after each chunk.
PerplexityResult perplexity(Session& session, std::span<const int32_t> tokens,
                            const PerplexityOptions& opts,
                            const std::function<void(int, int, double)>& progress = {});

}  // namespace reprise::eval
