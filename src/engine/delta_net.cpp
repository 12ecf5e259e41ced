#include "engine/delta_net.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/ops.h"

namespace reprise {
namespace {

float sigmoid(float x) {
  return 1.0f / (1.0f + std::exp(-x));
}
float silu(float x) {
  return x / (1.0f + std::exp(-x));
}
// llama.cpp's softplus: linear above 20, where log(1 + e^x) rounds to x anyway.
float softplus(float x) {
  return x > 20.0f ? x : std::log1p(std::exp(x));
}

// x[0..n) /= sqrt(sum x^2 + eps): llama.cpp's L2 norm of q and k (an RMS norm with eps / n,
// scaled by 1 / sqrt(n)).
void l2_normalize(float* x, int n, float eps) {
  double ss = 0;
  for (int i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float inv = static_cast<float>(1.0 / std::sqrt(ss + eps));
  for (int i = 0; i < n; ++i) x[i] *= inv;
}

float dot(const float* a, const float* b, int n) {
  float s = 0;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

RecurrentState::RecurrentState(const HParams& hp, const LayerPath& path) {
  const DeltaNetShape& s = hp.delta;
  conv_.resize(static_cast<size_t>(path.size()));
  ssm_.resize(static_cast<size_t>(path.size()));
  for (int p = 0; p < path.size(); ++p) {
    if (!hp.is_recurrent(path.layers[static_cast<size_t>(p)])) continue;
    conv_[static_cast<size_t>(p)].assign(static_cast<size_t>(s.conv_kernel - 1) * s.conv_dim(), 0);
    ssm_[static_cast<size_t>(p)].assign(
        static_cast<size_t>(s.n_v_heads) * s.head_v_dim * s.head_k_dim, 0);
  }
}

void RecurrentState::clear() {
  for (auto* states : {&conv_, &ssm_})
    for (auto& v : *states) std::fill(v.begin(), v.end(), 0.0f);
}

uint64_t RecurrentState::bytes() const {
  uint64_t n = 0;
  for (const auto* states : {&conv_, &ssm_})
    for (const auto& v : *states) n += v.size() * sizeof(float);
  return n;
}

DeltaNetScratch::DeltaNetScratch(const HParams& hp, int n_batch) {
  const DeltaNetShape& s = hp.delta;
  const size_t B = static_cast<size_t>(n_batch);
  conv_in.resize((B + s.conv_kernel - 1) * s.conv_dim());
  qkv.resize(B * s.conv_dim());
  z.resize(B * s.value_dim());
  beta.resize(B * s.n_v_heads);
  g.resize(B * s.n_v_heads);
  o.resize(B * s.value_dim());
  if (hp.attn_out_gate) {
    qg.resize(B * 2 * hp.q_dim());
    gate.resize(B * hp.q_dim());
  }
}

uint64_t DeltaNetScratch::bytes() const {
  uint64_t n = 0;
  for (const auto* v : {&conv_in, &qkv, &z, &beta, &g, &o, &qg, &gate})
    n += v->capacity() * sizeof(float);
  return n;
}

void delta_net_forward(const HParams& hp, const DeltaNetWeights& w, const float* h, int64_t T,
                       float* conv_state, float* ssm_state, DeltaNetScratch& s, float* out,
                       ThreadPool& pool, bool batch_invariant) {
  const DeltaNetShape& sh = hp.delta;
  const int C = sh.conv_dim(), K = sh.conv_kernel, dk = sh.head_k_dim, dv = sh.head_v_dim;
  const int Hk = sh.n_k_heads, Hv = sh.n_v_heads, key_dim = sh.key_dim(), vd = sh.value_dim();

  // Projections; the conv input is the state's K - 1 rows followed by this chunk's rows.
  const size_t state_vals = static_cast<size_t>(K - 1) * C;
  std::memcpy(s.conv_in.data(), conv_state, state_vals * sizeof(float));
  kernels::matmul(w.w_qkv, h, T, s.conv_in.data() + state_vals, pool, batch_invariant);
  kernels::matmul(w.w_z, h, T, s.z.data(), pool, batch_invariant);
  kernels::matmul(w.w_beta, h, T, s.beta.data(), pool, batch_invariant);
  kernels::matmul(w.w_alpha, h, T, s.g.data(), pool, batch_invariant);
  for (int64_t t = 0; t < T; ++t)
    for (int hv = 0; hv < Hv; ++hv) {
      float& b = s.beta[t * Hv + hv];
      b = sigmoid(b);
      float& g = s.g[t * Hv + hv];
      g = softplus(g + w.dt_bias[hv]) * w.a[hv];
    }

  // Causal conv over each channel, then SiLU; the last K - 1 inputs become the new state.
  pool.parallel_for(T, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      float* y = &s.qkv[t * C];
      for (int c = 0; c < C; ++c) {
        const float* taps = &w.conv[static_cast<size_t>(c) * K];
        float acc = 0;
        for (int k = 0; k < K; ++k) acc += s.conv_in[(t + k) * C + c] * taps[k];
        y[c] = silu(acc);
      }
      for (int hk = 0; hk < 2 * Hk; ++hk) l2_normalize(y + hk * dk, dk, hp.rms_eps);  // q, then k
    }
  });
  std::memcpy(conv_state, s.conv_in.data() + T * C, state_vals * sizeof(float));

  // The recurrence, token by token, each value head on its own (reading the key head its file's
  // order gives it: DeltaNetShape::key_head).
  const float scale = 1.0f / std::sqrt(static_cast<float>(dk));
  pool.parallel_for(Hv, [&](int64_t h0, int64_t h1) {
    std::vector<float> delta(static_cast<size_t>(dv));
    for (int64_t hv = h0; hv < h1; ++hv) {
      float* S = ssm_state + hv * dv * dk;  // row j = S[:, j]
      const int hk = sh.key_head(static_cast<int>(hv));
      for (int64_t t = 0; t < T; ++t) {
        const float* row = &s.qkv[t * C];
        const float* q = row + hk * dk;
        const float* k = row + key_dim + hk * dk;
        const float* v = row + 2 * key_dim + hv * dv;
        const float decay = std::exp(s.g[t * Hv + hv]), beta = s.beta[t * Hv + hv];
        for (int i = 0; i < dv * dk; ++i) S[i] *= decay;
        for (int j = 0; j < dv; ++j) delta[j] = (v[j] - dot(S + j * dk, k, dk)) * beta;
        for (int j = 0; j < dv; ++j) {
          float* Sj = S + j * dk;
          for (int i = 0; i < dk; ++i) Sj[i] += k[i] * delta[j];
        }
        float* o = &s.o[t * vd + hv * dv];
        for (int j = 0; j < dv; ++j) o[j] = dot(S + j * dk, q, dk) * scale;
      }
    }
  });

  // Gated RMSNorm of each output head, then the output projection.
  kernels::rmsnorm(s.o.data(), w.norm.data(), T * Hv, dv, hp.rms_eps, s.o.data());
  for (int64_t i = 0; i < T * vd; ++i) s.o[i] *= silu(s.z[i]);
  kernels::matmul(w.w_out, s.o.data(), T, out, pool, batch_invariant);
}

void split_query_gate(const float* qg, int64_t T, int n_head, int head_dim, float* q, float* gate) {
  const size_t bytes = static_cast<size_t>(head_dim) * sizeof(float);
  for (int64_t r = 0; r < T * n_head; ++r) {
    std::memcpy(q + r * head_dim, qg + r * 2 * head_dim, bytes);
    std::memcpy(gate + r * head_dim, qg + (r * 2 + 1) * head_dim, bytes);
  }
}

void apply_sigmoid_gate(float* x, const float* gate, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= sigmoid(gate[i]);
}

}  // namespace reprise
