#include "analyze/diagnostics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/session.h"
#include "kernels/ops.h"
#include "util/error.h"
#include "util/stopwatch.h"

namespace reprise::analyze {
namespace {

// Keeps the stream after every path position of one forward pass.
class Recorder final : public ForwardObserver {
 public:
  explicit Recorder(int n_slots) : out(n_slots) {}
  void block_out(int slot, int /*layer*/, const float* x, int64_t T, int64_t d) override {
    // Prefill may arrive in several chunks; they come in token order.
    out[slot].insert(out[slot].end(), x, x + T * d);
  }
  void clear() {
    for (auto& v : out) v.clear();
  }
  std::vector<std::vector<float>> out;  // [slot][T * n_embd]
};

double dot(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

double sq_dist(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double e = static_cast<double>(a[i]) - b[i];
    s += e * e;
  }
  return s;
}

// ‖(a1 − b1) − (a2 − b2)‖²: the difference of two updates without materializing them.
double sq_dist_of_updates(const float* a1, const float* b1, const float* a2, const float* b2,
                          int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double e = (static_cast<double>(a1[i]) - b1[i]) - (static_cast<double>(a2[i]) - b2[i]);
    s += e * e;
  }
  return s;
}

double cosine(const float* a, const float* b, int64_t n) {
  const double na = std::sqrt(dot(a, a, n)), nb = std::sqrt(dot(b, b, n));
  if (na == 0 || nb == 0) return na == nb ? 1.0 : 0.0;
  return dot(a, b, n) / (na * nb);
}

// sqrt(num / den) for the ratio statistics, 0 when both parts are zero (nothing to compare).
double rms_ratio(double num, double den) {
  if (den <= 0) return num <= 0 ? 0.0 : std::numeric_limits<double>::infinity();
  return std::sqrt(num / den);
}

LayerPath skip_path(int n_layer, int l) {
  LayerPath p;
  for (int k = 0; k < n_layer; ++k)
    if (k != l) p.layers.push_back(k);
  return p;
}

LayerPath swap_path(int n_layer, int l) {
  LayerPath p = LayerPath::identity(n_layer);
  std::swap(p.layers[l], p.layers[l + 1]);
  return p;
}

struct Sums {
  double cos = 0, rel = 0, lens_kl = 0, lens_top1 = 0, skip_kl = 0;
  double series_num = 0, series_den = 0, commute_num = 0, commute_den = 0, commute_kl = 0;
};

}  // namespace

double kl_from_logits(const float* p_logits, const float* q_logits, int64_t n) {
  // Log-softmax of both; KL = Σ p (log p − log q).
  const auto size = static_cast<size_t>(n);
  const double plz = kernels::log_sum_exp({p_logits, size}),
               qlz = kernels::log_sum_exp({q_logits, size});
  double kl = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double lp = p_logits[i] - plz, lq = q_logits[i] - qlz;
    kl += std::exp(lp) * (lp - lq);
  }
  return std::max(kl, 0.0);  // rounding can leave a tiny negative for identical inputs
}

Diagnostics run_diagnostics(const Model& model, const std::vector<ProbeItem>& items,
                            const DiagnosticsOptions& opts) {
  const HParams& hp = model.hparams();
  const int N = hp.n_layer;
  const int64_t d = hp.n_embd, V = hp.n_vocab;
  if (items.empty()) throw Error("analyze: no probe items");
  size_t max_t = 0;
  for (const auto& it : items) {
    if (it.tokens.empty())
      throw Error(fmt::format("analyze: probe item '{}' has no tokens", it.id));
    max_t = std::max(max_t, it.tokens.size());
  }

  SessionOptions so;
  so.n_ctx = static_cast<int>(max_t);
  so.n_batch = static_cast<int>(max_t);
  so.n_threads = opts.n_threads;
  Session plain(model, LayerPath::identity(N), so);
  Recorder plain_rec(N);
  plain.set_observer(&plain_rec);
  // The modified paths have fixed lengths (N - 1 and N), so switching between them per layer
  // keeps their KV caches instead of reallocating.
  const bool interventions = opts.interventions && N >= 2;
  std::unique_ptr<Session> skip, swap;
  Recorder skip_rec(std::max(N - 1, 1)), swap_rec(N);
  if (interventions) {
    skip = std::make_unique<Session>(model, skip_path(N, 0), so);
    skip->set_observer(&skip_rec);
    swap = std::make_unique<Session>(model, swap_path(N, 0), so);
    swap->set_observer(&swap_rec);
  }

  const Weights& w = model.weights();
  std::vector<Sums> sums(N);
  std::vector<std::vector<double>> drift(N + 1, std::vector<double>(N + 1, 0.0));
  std::vector<std::vector<double>> sim(N + 1, std::vector<double>(N + 1, 0.0));
  std::vector<std::vector<float>> h(N + 1);  // [N + 1][T * d]
  std::vector<float> final_logits, normed(max_t * d), lens(max_t * V);
  std::vector<int64_t> final_top(max_t);
  int64_t n_tokens = 0;
  double t_plain = 0, t_inter = 0, t_lens = 0;
  size_t done = 0;

  for (const auto& item : items) {
    Stopwatch clock;
    const int64_t T = static_cast<int64_t>(item.tokens.size());
    n_tokens += T;
    h[0].resize(T * d);
    for (int64_t t = 0; t < T; ++t)
      kernels::embedding_row(w.token_embd, item.tokens[t], &h[0][t * d]);
    plain.reset();
    plain_rec.clear();
    auto logits = plain.prefill(item.tokens, /*all_logits=*/true);
    final_logits.assign(logits.begin(), logits.end());
    for (int l = 0; l < N; ++l) h[l + 1] = plain_rec.out[l];
    for (int64_t t = 0; t < T; ++t)
      final_top[t] = kernels::argmax({final_logits.data() + t * V, static_cast<size_t>(V)});

    for (int l = 0; l < N; ++l) {
      Sums& s = sums[l];
      for (int64_t t = 0; t < T; ++t) {
        const float* a = &h[l][t * d];
        const float* b = &h[l + 1][t * d];
        s.cos += cosine(a, b, d);
        const double na = std::sqrt(dot(a, a, d));
        s.rel += na > 0 ? std::sqrt(sq_dist(a, b, d)) / na : 0.0;
      }
      // Logit lens: the model's own final norm and output head applied to h_{l+1}. A diagnostic
      // only (no prediction reads it), and with a large vocabulary it costs N output heads per
      // token, so it is timed apart from the plain pass.
      const Stopwatch lens_clock;
      kernels::rmsnorm(h[l + 1].data(), w.output_norm.data(), T, d, hp.rms_eps, normed.data());
      kernels::matmul(w.output, normed.data(), T, lens.data(), plain.pool());
      std::vector<double> kl(T), top1(T);
      plain.pool().parallel_for(T, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const float* q = &lens[t * V];
          kl[t] = kl_from_logits(&final_logits[t * V], q, V);
          top1[t] = kernels::argmax({q, static_cast<size_t>(V)}) == final_top[t] ? 1.0 : 0.0;
        }
      });
      for (int64_t t = 0; t < T; ++t) s.lens_kl += kl[t], s.lens_top1 += top1[t];
      t_lens += lens_clock.seconds();
    }
    for (int i = 0; i <= N; ++i) {
      for (int j = i + 1; j <= N; ++j) {
        for (int64_t t = 0; t < T; ++t) {
          const float* a = &h[i][t * d];
          const float* b = &h[j][t * d];
          const double nb = std::sqrt(dot(b, b, d));
          drift[i][j] += nb > 0 ? std::sqrt(sq_dist(a, b, d)) / nb : 0.0;
          sim[i][j] += cosine(a, b, d);
        }
      }
    }
    t_plain += clock.restart();
    if (!interventions) {
      if (opts.progress) opts.progress(++done);
      continue;
    }

    for (int l = 0; l < N; ++l) {
      Sums& s = sums[l];
      // Layer l removed: the rest of the path continues from h_l (slot l of the skip path runs
      // layer l + 1). For the last layer nothing runs and the head reads h_{N-1} directly.
      skip->set_path(skip_path(N, l));
      skip_rec.clear();
      auto sk = skip->prefill_from_residual(l, h[l], /*all_logits=*/true);
      for (int64_t t = 0; t < T; ++t)
        s.skip_kl += kl_from_logits(&final_logits[t * V], &sk[t * V], V);
      if (l + 1 >= N) continue;
      // Series: Δ_{l+1}(h_l + Δ_l) = h_{l+2} − h_{l+1};  Δ_{l+1}(h_l) = skip slot l − h_l.
      const auto& alone = skip_rec.out[l];
      for (int64_t t = 0; t < T; ++t) {
        const int64_t o = t * d;
        s.series_num += sq_dist_of_updates(&h[l + 2][o], &h[l + 1][o], &alone[o], &h[l][o], d);
        s.series_den += sq_dist(&h[l + 2][o], &h[l + 1][o], d);
      }
      // Swap: l + 1 then l, from h_l; compare the stream after the pair and the output.
      swap->set_path(swap_path(N, l));
      swap_rec.clear();
      auto sw = swap->prefill_from_residual(l, h[l], /*all_logits=*/true);
      const auto& swapped = swap_rec.out[l + 1];
      for (int64_t t = 0; t < T; ++t) {
        const int64_t o = t * d;
        s.commute_num += sq_dist(&swapped[o], &h[l + 2][o], d);
        s.commute_den += sq_dist(&h[l + 2][o], &h[l][o], d);
        s.commute_kl += kl_from_logits(&final_logits[t * V], &sw[t * V], V);
      }
    }
    t_inter += clock.seconds();
    if (opts.progress) opts.progress(++done);
  }

  Diagnostics out;
  out.n_layer = N;
  out.n_items = items.size();
  out.n_tokens = n_tokens;
  const double nt = static_cast<double>(n_tokens);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (int l = 0; l < N; ++l) {
    const Sums& s = sums[l];
    LayerStats st;
    st.layer = l;
    st.cos_in_out = s.cos / nt;
    st.rel_update = s.rel / nt;
    st.lens_kl = s.lens_kl / nt;
    st.lens_top1 = s.lens_top1 / nt;
    const bool pair = interventions && l + 1 < N;
    st.skip_kl = interventions ? s.skip_kl / nt : nan;
    st.series = pair ? rms_ratio(s.series_num, s.series_den) : nan;
    st.commute = pair ? rms_ratio(s.commute_num, s.commute_den) : nan;
    st.commute_kl = pair ? s.commute_kl / nt : nan;
    out.layers.push_back(st);
  }
  for (int i = 0; i <= N; ++i) {
    sim[i][i] = 1.0;
    for (int j = i + 1; j <= N; ++j) {
      drift[i][j] /= nt;
      sim[i][j] /= nt;
      sim[j][i] = sim[i][j];
    }
  }
  out.drift = std::move(drift);
  out.sim = std::move(sim);
  out.seconds_plain = t_plain - t_lens;
  out.seconds_lens = t_lens;
  out.seconds_interventions = t_inter;
  return out;
}

}  // namespace reprise::analyze
