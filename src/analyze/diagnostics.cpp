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

namespace {

// The sums behind Diagnostics, accumulated item by item over the plain path and (with
// interventions) the skip and swap paths.
class DiagnosticsRun {
 public:
  DiagnosticsRun(const Model& model, size_t max_t, const DiagnosticsOptions& opts)
      : hp_(model.hparams()),
        N_(hp_.n_layer),
        d_(hp_.n_embd),
        V_(hp_.n_vocab),
        so_(session_options(max_t, opts.n_threads)),
        plain_(model, LayerPath::identity(N_), so_),
        plain_rec_(N_),
        interventions_(opts.interventions && N_ >= 2),
        skip_rec_(std::max(N_ - 1, 1)),
        swap_rec_(N_),
        sums_(N_),
        drift_(N_ + 1, std::vector<double>(N_ + 1, 0.0)),
        sim_(N_ + 1, std::vector<double>(N_ + 1, 0.0)),
        h_(N_ + 1),
        lens_(max_t * V_),
        final_top_(max_t) {
    plain_.set_observer(&plain_rec_);
    // The modified paths have fixed lengths (N - 1 and N), so switching between them per layer
    // keeps their KV caches instead of reallocating.
    if (interventions_) {
      skip_ = std::make_unique<Session>(model, skip_path(N_, 0), so_);
      skip_->set_observer(&skip_rec_);
      swap_ = std::make_unique<Session>(model, swap_path(N_, 0), so_);
      swap_->set_observer(&swap_rec_);
    }
  }

  void add(const ProbeItem& item) {
    Stopwatch clock;
    const int64_t T = static_cast<int64_t>(item.tokens.size());
    n_tokens_ += T;
    plain_pass(item.tokens);
    for (int l = 0; l < N_; ++l) {
      update_sizes(l, T);
      logit_lens(l, T);
    }
    drift_and_similarity(T);
    t_plain_ += clock.restart();
    if (!interventions_) return;
    for (int l = 0; l < N_; ++l) intervene(l, T);
    t_inter_ += clock.seconds();
  }

  Diagnostics result(size_t n_items);

 private:
  static SessionOptions session_options(size_t max_t, int n_threads) {
    SessionOptions so;
    so.n_ctx = static_cast<int>(max_t);
    so.n_batch = static_cast<int>(max_t);
    so.n_threads = n_threads;
    return so;
  }

  // h_0 .. h_N and the final logits (and their argmax) of one item along the plain path.
  void plain_pass(const std::vector<int32_t>& tokens) {
    const int64_t T = static_cast<int64_t>(tokens.size());
    h_[0].resize(T * d_);
    plain_.embed(tokens, h_[0].data());
    plain_.reset();
    plain_rec_.clear();
    auto logits = plain_.prefill(tokens, /*all_logits=*/true);
    final_logits_.assign(logits.begin(), logits.end());
    for (int l = 0; l < N_; ++l) h_[l + 1] = plain_rec_.out[l];
    for (int64_t t = 0; t < T; ++t)
      final_top_[t] = kernels::argmax({final_logits_.data() + t * V_, static_cast<size_t>(V_)});
  }

  // cos(h_l, h_{l+1}) and ‖Δ_l‖ / ‖h_l‖.
  void update_sizes(int l, int64_t T) {
    Sums& s = sums_[l];
    for (int64_t t = 0; t < T; ++t) {
      const float* a = &h_[l][t * d_];
      const float* b = &h_[l + 1][t * d_];
      s.cos += cosine(a, b, d_);
      const double na = std::sqrt(dot(a, a, d_));
      s.rel += na > 0 ? std::sqrt(sq_dist(a, b, d_)) / na : 0.0;
    }
  }

  // Logit lens: the model's own final norm and output head applied to h_{l+1}. A diagnostic
  // only (no prediction reads it), and with a large vocabulary it costs N output heads per
  // token, so it is timed apart from the plain pass.
  void logit_lens(int l, int64_t T) {
    Sums& s = sums_[l];
    const Stopwatch lens_clock;
    plain_.logits_from_residual({h_[l + 1].data(), static_cast<size_t>(T * d_)},
                                {lens_.data(), static_cast<size_t>(T * V_)});
    std::vector<double> kl(T), top1(T);
    plain_.pool().parallel_for(T, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const float* q = &lens_[t * V_];
        kl[t] = kl_from_logits(&final_logits_[t * V_], q, V_);
        top1[t] = kernels::argmax({q, static_cast<size_t>(V_)}) == final_top_[t] ? 1.0 : 0.0;
      }
    });
    for (int64_t t = 0; t < T; ++t) s.lens_kl += kl[t], s.lens_top1 += top1[t];
    t_lens_ += lens_clock.seconds();
  }

  void drift_and_similarity(int64_t T) {
    for (int i = 0; i <= N_; ++i) {
      for (int j = i + 1; j <= N_; ++j) {
        for (int64_t t = 0; t < T; ++t) {
          const float* a = &h_[i][t * d_];
          const float* b = &h_[j][t * d_];
          const double nb = std::sqrt(dot(b, b, d_));
          drift_[i][j] += nb > 0 ? std::sqrt(sq_dist(a, b, d_)) / nb : 0.0;
          sim_[i][j] += cosine(a, b, d_);
        }
      }
    }
  }

  // Layer l removed (skip), and layers l, l + 1 swapped (series, commute).
  void intervene(int l, int64_t T) {
    Sums& s = sums_[l];
    // Layer l removed: the rest of the path continues from h_l (slot l of the skip path runs
    // layer l + 1). For the last layer nothing runs and the head reads h_{N-1} directly.
    skip_->set_path(skip_path(N_, l));
    skip_rec_.clear();
    auto sk = skip_->prefill_from_residual(l, h_[l], /*all_logits=*/true);
    for (int64_t t = 0; t < T; ++t)
      s.skip_kl += kl_from_logits(&final_logits_[t * V_], &sk[t * V_], V_);
    if (l + 1 >= N_) return;
    // Series: Δ_{l+1}(h_l + Δ_l) = h_{l+2} − h_{l+1};  Δ_{l+1}(h_l) = skip slot l − h_l.
    const auto& alone = skip_rec_.out[l];
    for (int64_t t = 0; t < T; ++t) {
      const int64_t o = t * d_;
      s.series_num += sq_dist_of_updates(&h_[l + 2][o], &h_[l + 1][o], &alone[o], &h_[l][o], d_);
      s.series_den += sq_dist(&h_[l + 2][o], &h_[l + 1][o], d_);
    }
    // Swap: l + 1 then l, from h_l; compare the stream after the pair and the output.
    swap_->set_path(swap_path(N_, l));
    swap_rec_.clear();
    auto sw = swap_->prefill_from_residual(l, h_[l], /*all_logits=*/true);
    const auto& swapped = swap_rec_.out[l + 1];
    for (int64_t t = 0; t < T; ++t) {
      const int64_t o = t * d_;
      s.commute_num += sq_dist(&swapped[o], &h_[l + 2][o], d_);
      s.commute_den += sq_dist(&h_[l + 2][o], &h_[l][o], d_);
      s.commute_kl += kl_from_logits(&final_logits_[t * V_], &sw[t * V_], V_);
    }
  }

  const HParams& hp_;
  const int N_;
  const int64_t d_, V_;
  const SessionOptions so_;
  Session plain_;
  Recorder plain_rec_;
  const bool interventions_;
  std::unique_ptr<Session> skip_, swap_;
  Recorder skip_rec_, swap_rec_;
  std::vector<Sums> sums_;
  std::vector<std::vector<double>> drift_, sim_;
  std::vector<std::vector<float>> h_;  // [N + 1][T * d]
  std::vector<float> final_logits_, lens_;
  std::vector<int64_t> final_top_;
  int64_t n_tokens_ = 0;
  double t_plain_ = 0, t_inter_ = 0, t_lens_ = 0;
};

Diagnostics DiagnosticsRun::result(size_t n_items) {
  Diagnostics out;
  out.n_layer = N_;
  out.n_items = n_items;
  out.n_tokens = n_tokens_;
  const double nt = static_cast<double>(n_tokens_);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (int l = 0; l < N_; ++l) {
    const Sums& s = sums_[l];
    LayerStats st;
    st.layer = l;
    st.cos_in_out = s.cos / nt;
    st.rel_update = s.rel / nt;
    st.lens_kl = s.lens_kl / nt;
    st.lens_top1 = s.lens_top1 / nt;
    const bool pair = interventions_ && l + 1 < N_;
    st.skip_kl = interventions_ ? s.skip_kl / nt : nan;
    st.series = pair ? rms_ratio(s.series_num, s.series_den) : nan;
    st.commute = pair ? rms_ratio(s.commute_num, s.commute_den) : nan;
    st.commute_kl = pair ? s.commute_kl / nt : nan;
    out.layers.push_back(st);
  }
  for (int i = 0; i <= N_; ++i) {
    sim_[i][i] = 1.0;
    for (int j = i + 1; j <= N_; ++j) {
      drift_[i][j] /= nt;
      sim_[i][j] /= nt;
      sim_[j][i] = sim_[i][j];
    }
  }
  out.drift = std::move(drift_);
  out.sim = std::move(sim_);
  out.seconds_plain = t_plain_ - t_lens_;
  out.seconds_lens = t_lens_;
  out.seconds_interventions = t_inter_;
  return out;
}

}  // namespace

Diagnostics run_diagnostics(const Model& model, const std::vector<ProbeItem>& items,
                            const DiagnosticsOptions& opts) {
  if (items.empty()) throw Error("analyze: no probe items");
  size_t max_t = 0;
  for (const auto& it : items) {
    if (it.tokens.empty())
      throw Error(fmt::format("analyze: probe item '{}' has no tokens", it.id));
    max_t = std::max(max_t, it.tokens.size());
  }
  DiagnosticsRun run(model, max_t, opts);
  size_t done = 0;
  for (const auto& item : items) {
    run.add(item);
    if (opts.progress) opts.progress(++done);
  }
  return run.result(items.size());
}

}  // namespace reprise::analyze
