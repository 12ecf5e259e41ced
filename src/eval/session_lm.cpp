#include "eval/session_lm.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/common_prefix.h"
#include "kernels/ops.h"
#include "model/tokenizer.h"
#include "util/error.h"

namespace reprise::eval {
namespace {

// Logit rows computed per prefill call: bounds the logits buffer to kRows x n_vocab floats.
constexpr size_t kRows = 256;

const Tokenizer& require_tokenizer(const Model& m) {
  if (!m.tokenizer())
    throw Error(fmt::format("{}: the model has no vocabulary; evaluation needs one", m.path()));
  return *m.tokenizer();
}

int32_t argmax(std::span<const float> logits) {
  return static_cast<int32_t>(kernels::argmax(logits));
}

// Request indices ordered so that requests with a common token prefix are adjacent.
template <typename Key>
std::vector<size_t> prefix_order(const std::vector<Key>& keys) {
  std::vector<size_t> order(keys.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return keys[a] < keys[b]; });
  return order;
}

// Requests are many short prefills over the same weights: pack them once
// (engine/packed_weights.h).
SessionOptions with_packing(SessionOptions o) {
  o.pack_weights = true;
  return o;
}

}  // namespace

SessionLM::SessionLM(const Model& model, LayerPath path, const SessionLMOptions& opts)
    : model_(model),
      session_(model, std::move(path), with_packing(opts.session)),
      rt_(require_tokenizer(model), opts.format) {
  // A request's log-likelihood must not depend on how its tokens were split into prefills (the
  // context reused from the last request, then the continuation's few rows).
  session_.set_batch_invariant(true);
}

const Tokenizer& SessionLM::tokenizer() const {
  return rt_.tokenizer();
}

std::string SessionLM::description() const {
  return fmt::format("{}, path {}", model_.path(), session_.path().canonical());
}

void SessionLM::forward(std::span<const int32_t> tokens, size_t first_row, const RowFn& row) {
  if (tokens.size() > static_cast<size_t>(session_.n_ctx()))
    throw Error(fmt::format("{} tokens do not fit --ctx {}", tokens.size(), session_.n_ctx()));
  const size_t keep = std::min(common_prefix(cached_, tokens), first_row);
  const int n_vocab = model_.hparams().n_vocab;
  try {
    session_.truncate(static_cast<int>(keep));
    cached_.resize(keep);
    if (keep < first_row) session_.prefill(tokens.subspan(keep, first_row - keep));
    cached_.assign(tokens.begin(), tokens.begin() + first_row);
    for (size_t pos = first_row; pos < tokens.size(); pos += kRows) {
      const size_t m = std::min(kRows, tokens.size() - pos);
      auto logits = session_.prefill(tokens.subspan(pos, m), /*all_logits=*/true);
      cached_.insert(cached_.end(), tokens.begin() + pos, tokens.begin() + pos + m);
      std::vector<double> lse(m);
      session_.pool().parallel_for(static_cast<int64_t>(m), [&](int64_t j0, int64_t j1) {
        for (int64_t j = j0; j < j1; ++j)
          lse[j] = kernels::log_sum_exp(logits.subspan(j * n_vocab, n_vocab));
      });
      for (size_t j = 0; j < m; ++j) row(pos + j, logits.subspan(j * n_vocab, n_vocab), lse[j]);
    }
  } catch (...) {
    session_.reset();
    cached_.clear();
    throw;
  }
  n_computed_ += static_cast<int64_t>(tokens.size() - keep);
}

std::vector<int32_t> SessionLM::fit_left(std::vector<int32_t> tokens, size_t n, size_t min_tail) {
  if (tokens.size() <= n) return tokens;
  if (n < min_tail + 1)
    throw Error(fmt::format("a request of {} tokens does not fit --ctx {}", tokens.size(),
                            session_.n_ctx()));
  ++n_truncated_;
  const size_t drop = tokens.size() - n;
  tokens.erase(tokens.begin() + 1, tokens.begin() + 1 + static_cast<std::ptrdiff_t>(drop));
  return tokens;
}

std::vector<LoglikelihoodResult> SessionLM::loglikelihood(
    std::span<const LoglikelihoodRequest> requests) {
  const size_t n_ctx = static_cast<size_t>(session_.n_ctx());
  // Each request becomes the tokens to feed (context + continuation minus its last token, which
  // is only predicted) and the continuation.
  std::vector<std::vector<int32_t>> fed(requests.size()), cont(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    std::vector<int32_t> ctx;
    if (!r.continuation_tokens.empty()) {
      ctx = r.context_tokens;
      cont[i] = r.continuation_tokens;
      if (ctx.empty()) throw Error("a loglikelihood request in token form needs context tokens");
      check_token_ids(ctx, model_.hparams().n_vocab);
      check_token_ids(cont[i], model_.hparams().n_vocab);
    } else {
      auto p = rt_.pair(r.context, r.continuation);
      ctx = std::move(p.context);
      cont[i] = std::move(p.continuation);
    }
    ctx.insert(ctx.end(), cont[i].begin(), cont[i].end() - 1);
    fed[i] = fit_left(std::move(ctx), n_ctx, cont[i].size());
  }
  std::vector<LoglikelihoodResult> out(requests.size());
  for (size_t i : prefix_order(fed)) {
    const size_t first = fed[i].size() - cont[i].size();  // the row predicting cont[0]
    LoglikelihoodResult& res = out[i];
    res.is_greedy = true;
    res.n_tokens = static_cast<int>(cont[i].size());
    forward(fed[i], first, [&](size_t pos, std::span<const float> logits, double lse) {
      const int32_t want = cont[i][pos - first];
      res.logprob += logits[want] - lse;
      res.is_greedy = res.is_greedy && argmax(logits) == want;
    });
    request_done();
  }
  return out;
}

std::vector<RollingResult> SessionLM::loglikelihood_rolling(
    std::span<const RollingRequest> requests) {
  const size_t window = static_cast<size_t>(session_.n_ctx());
  if (window < 2) throw Error("--ctx must be at least 2 to score passages");
  const size_t stride = window / 2;  // later windows keep at least half a context of history
  std::vector<RollingResult> out(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    std::vector<int32_t> tokens = requests[i].tokens;
    if (tokens.empty()) tokens = rt_.passage(requests[i].text);
    check_token_ids(tokens, model_.hparams().n_vocab);
    // Tokens (done, end] are predicted from tokens[begin, end), so each is scored exactly once.
    for (size_t done = 0; done + 1 < tokens.size();) {
      const size_t end = std::min(tokens.size() - 1, done == 0 ? window : done + stride);
      const size_t begin = end > window ? end - window : 0;
      std::span<const int32_t> fed(tokens.data() + begin, end - begin);
      forward(fed, done - begin, [&](size_t pos, std::span<const float> logits, double lse) {
        out[i].logprob += logits[tokens[begin + pos + 1]] - lse;
        ++out[i].n_tokens;
      });
      done = end;
    }
    request_done();
  }
  return out;
}

std::vector<GenerateResult> SessionLM::generate_until(std::span<const GenerateRequest> requests) {
  const size_t n_ctx = static_cast<size_t>(session_.n_ctx());
  const Vocab& vocab = tokenizer().vocab();
  std::vector<std::vector<int32_t>> ctx(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    if (r.max_tokens < 1) throw Error("generation needs max_tokens >= 1");
    ctx[i] = r.context_tokens.empty() ? rt_.context(r.context) : r.context_tokens;
    if (ctx[i].empty()) ctx[i].push_back(rt_.start_token());
    check_token_ids(ctx[i], model_.hparams().n_vocab);
    // Leave room for the answer, but never less than half the context for the prompt.
    const size_t room = std::min<size_t>(r.max_tokens, n_ctx / 2);
    ctx[i] = fit_left(std::move(ctx[i]), n_ctx - room, 1);
  }
  std::vector<GenerateResult> out(requests.size());
  for (size_t i : prefix_order(ctx)) {
    const auto& r = requests[i];
    std::vector<float> logits;
    forward(ctx[i], ctx[i].size() - 1,
            [&](size_t, std::span<const float> l, double) { logits.assign(l.begin(), l.end()); });
    const size_t budget = std::min<size_t>(r.max_tokens, n_ctx - ctx[i].size());
    GenerateResult& res = out[i];
    for (size_t n = 0; n < budget; ++n) {
      const int32_t next = argmax(logits);
      if (next == vocab.eos || next == vocab.eot) break;
      ++res.n_tokens;
      const size_t before = res.text.size();
      res.text += tokenizer().token_to_piece(next);
      size_t cut = std::string::npos;
      for (const auto& s : r.stop) {
        if (s.empty()) continue;
        const size_t from = before >= s.size() ? before - s.size() + 1 : 0;
        cut = std::min(cut, res.text.find(s, from));
      }
      if (cut != std::string::npos) {
        res.text.resize(cut);
        break;
      }
      if (n + 1 == budget) break;
      try {
        auto l = session_.decode(next);
        logits.assign(l.begin(), l.end());
      } catch (...) {
        session_.reset();
        cached_.clear();
        throw;
      }
      // Not added to cached_: decode() rounds unlike a prefill, so a later request does not
      // reuse these positions (forward() truncates them away).
      ++n_computed_;
    }
    request_done();
  }
  return out;
}

std::vector<CandidateResult> SessionLM::candidate_probs(
    std::span<const CandidateRequest> requests) {
  const size_t n_ctx = static_cast<size_t>(session_.n_ctx());
  std::vector<std::vector<int32_t>> ctx(requests.size());
  std::vector<CandidateResult> out(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    if (!r.candidate_tokens.empty()) {
      ctx[i] = r.context_tokens;
      out[i].tokens = r.candidate_tokens;
      if (ctx[i].empty()) throw Error("a candidate request in token form needs context tokens");
    } else {
      auto c = rt_.candidates(r.context, r.candidates);
      ctx[i] = std::move(c.context);
      out[i].tokens = std::move(c.tokens);
    }
    check_token_ids(ctx[i], model_.hparams().n_vocab);
    check_token_ids(out[i].tokens, model_.hparams().n_vocab);
    ctx[i] = fit_left(std::move(ctx[i]), n_ctx, 1);
  }
  for (size_t i : prefix_order(ctx)) {
    forward(ctx[i], ctx[i].size() - 1, [&](size_t, std::span<const float> logits, double) {
      std::vector<double> l;
      for (int32_t t : out[i].tokens) l.push_back(logits[t]);
      const double mx = *std::max_element(l.begin(), l.end());
      double sum = 0;
      for (double& v : l) sum += (v = std::exp(v - mx));
      for (double& v : l) v /= sum;
      out[i].probs = std::move(l);
    });
    request_done();
  }
  return out;
}

}  // namespace reprise::eval
