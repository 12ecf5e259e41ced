#include "serve/prompt_scoring.h"

#include <algorithm>
#include <numeric>

#include "kernels/ops.h"

namespace reprise::serve {
namespace {
// Logit rows per prefill call, as `reprise eval` computes them: bounds the logits buffer to
// kRows x n_vocab floats.
constexpr size_t kRows = 256;
}  // namespace

std::vector<ScoredToken> score_prompt(Session& session, std::span<const int32_t> prompt,
                                      int top_k) {
  std::vector<ScoredToken> out(prompt.size());
  for (size_t i = 0; i < prompt.size(); ++i) out[i].id = prompt[i];
  if (prompt.size() < 2) return out;
  const size_t n_vocab = static_cast<size_t>(session.model().hparams().n_vocab);
  const size_t k = std::min(static_cast<size_t>(std::max(top_k, 0)), n_vocab);
  const std::span<const int32_t> fed = prompt.first(prompt.size() - 1);
  std::vector<int32_t> order(k > 0 ? n_vocab : 0);
  // Scored as `reprise eval` scores (eval::SessionLM): batch-invariant prefills, so a prompt of
  // fewer than kernels::kGemmMinTokens tokens runs the same kernels as a longer one.
  struct Restore {
    Session& s;
    bool was;
    ~Restore() { s.set_batch_invariant(was); }
  } restore{session, session.batch_invariant()};
  session.set_batch_invariant(true);
  for (size_t pos = 0; pos < fed.size(); pos += kRows) {
    const size_t m = std::min(kRows, fed.size() - pos);
    const std::span<const float> logits = session.prefill(fed.subspan(pos, m), /*all_logits=*/true);
    for (size_t j = 0; j < m; ++j) {
      const std::span<const float> row = logits.subspan(j * n_vocab, n_vocab);
      const double lse = kernels::log_sum_exp(row);
      ScoredToken& t = out[pos + j + 1];
      t.logprob = row[t.id] - lse;
      if (k == 0) continue;
      std::iota(order.begin(), order.end(), 0);
      // Ties go to the lower id, so the order is reproducible.
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
        return row[a] != row[b] ? row[a] > row[b] : a < b;
      });
      for (size_t r = 0; r < k; ++r) t.top.emplace_back(order[r], row[order[r]] - lse);
    }
  }
  return out;
}

}  // namespace reprise::serve
