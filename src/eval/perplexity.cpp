#include "eval/perplexity.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "kernels/ops.h"
#include "util/error.h"

namespace reprise::eval {
namespace {

constexpr int64_t kRows = 256;  // logit rows per prefill call (bounds memory to kRows x n_vocab)

// Accumulates per-token negative log-likelihoods.
struct NllSum {
  double sum = 0, sum_sq = 0;
  int64_t n = 0;
  void add(double nll) {
    sum += nll;
    sum_sq += nll * nll;
    ++n;
  }
  double ppl() const { return n ? std::exp(sum / n) : 0.0; }
};

// Runs `seq` from an empty session and adds -log p(seq[t + 1]) for t in [first, seq.size() - 1).
void score_sequence(Session& s, std::span<const int32_t> seq, int64_t first, NllSum& acc) {
  const int64_t n = static_cast<int64_t>(seq.size());
  const int n_vocab = s.model().hparams().n_vocab;
  s.reset();
  if (first > 0) s.prefill(seq.first(first));
  for (int64_t pos = first; pos < n - 1; pos += kRows) {
    const int64_t m = std::min(kRows, n - 1 - pos);
    auto logits = s.prefill(seq.subspan(pos, m), /*all_logits=*/true);
    for (int64_t j = 0; j < m; ++j) {
      std::span<const float> row = logits.subspan(j * n_vocab, n_vocab);
      acc.add(-(row[seq[pos + j + 1]] - kernels::log_sum_exp(row)));
    }
  }
}

}  // namespace

PerplexityResult perplexity(Session& session, std::span<const int32_t> tokens,
                            const PerplexityOptions& opts,
                            const std::function<void(int, int, double)>& progress) {
  const int64_t n_ctx = opts.n_ctx, N = static_cast<int64_t>(tokens.size());
  if (n_ctx < 4) throw Error(fmt::format("-c {}: the context must be at least 4 tokens", n_ctx));
  if (n_ctx > session.n_ctx())
    throw Error(fmt::format("-c {} exceeds the session's context ({})", n_ctx, session.n_ctx()));
  if (opts.stride < 0 || opts.stride > n_ctx)
    throw Error(fmt::format("--stride {} is out of range (1 to -c {})", opts.stride, n_ctx));
  if (opts.max_chunks < 0) throw Error("--chunks must be >= 0");

  PerplexityResult r;
  NllSum acc;
  std::vector<int32_t> chunk;
  if (opts.stride == 0) {
    if (N < 2 * n_ctx)
      throw Error(
          fmt::format("the text has {} tokens; -c {} needs at least {}", N, n_ctx, 2 * n_ctx));
    int n_chunks = static_cast<int>(N / n_ctx);
    if (opts.max_chunks > 0) n_chunks = std::min(n_chunks, opts.max_chunks);
    const int64_t first = n_ctx / 2;
    for (int c = 0; c < n_chunks; ++c) {
      chunk.assign(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx);
      if (opts.bos >= 0) chunk[0] = opts.bos;
      score_sequence(session, chunk, first, acc);
      r.running_ppl.push_back(acc.ppl());
      if (progress) progress(c + 1, n_chunks, acc.ppl());
    }
    r.n_chunks = n_chunks;
  } else {
    if (N < 2) throw Error(fmt::format("the text has {} tokens; nothing to score", N));
    // Window starts 0, stride, 2 stride, ... until a window reaches the end.
    const int64_t stride = opts.stride;
    int n_windows = static_cast<int>(N <= n_ctx ? 1 : (N - n_ctx + stride - 1) / stride + 1);
    if (opts.max_chunks > 0) n_windows = std::min(n_windows, opts.max_chunks);
    int64_t scored_to = 1;  // tokens before this one are scored (token 0 never is)
    for (int w = 0; w < n_windows; ++w) {
      const int64_t begin = w * stride, end = std::min(begin + n_ctx, N);
      const int64_t from = std::max(scored_to, begin + 1);  // first token this window scores
      score_sequence(session, tokens.subspan(begin, end - begin), from - 1 - begin, acc);
      scored_to = end;
      r.running_ppl.push_back(acc.ppl());
      if (progress) progress(w + 1, n_windows, acc.ppl());
    }
    r.n_chunks = n_windows;
  }
  session.reset();
  r.n_scored = acc.n;
  if (acc.n == 0) throw Error("no tokens were scored");
  r.mean_nll = acc.sum / acc.n;
  r.ppl = std::exp(r.mean_nll);
  const double var = acc.sum_sq / acc.n - r.mean_nll * r.mean_nll;
  r.ppl_stderr = acc.n > 1 && var > 0 ? r.ppl * std::sqrt(var / (acc.n - 1)) : 0.0;
  return r;
}

}  // namespace reprise::eval
