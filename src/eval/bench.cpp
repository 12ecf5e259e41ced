#include "eval/bench.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <vector>

#include "eval/stats.h"
#include "util/error.h"
#include "util/stopwatch.h"

namespace reprise::eval {
namespace {

Rate rate_of(const std::vector<double>& per_rep) {
  Rate r;
  r.n = per_rep.size();
  if (r.n == 0) return r;
  r.mean = mean(per_rep);
  r.sd = r.n > 1 ? sample_stddev(per_rep) : 0.0;
  return r;
}

// One untimed warm-up run, then `reps` timed ones, each from an empty context (the reset is not
// timed); tokens/s of each.
template <class Run>
std::vector<double> repeat(Session& session, int n_tokens, int reps, Run run) {
  std::vector<double> out;
  if (n_tokens <= 0) return out;
  session.reset();
  run();
  for (int r = 0; r < reps; ++r) {
    session.reset();
    const Stopwatch clock;
    run();
    out.push_back(n_tokens / clock.seconds());
  }
  return out;
}

}  // namespace

TokenCost token_cost(const Model& m, const LayerPath& path) {
  const Weights& w = m.weights();
  TokenCost c;
  c.weight_bytes = static_cast<double>(w.output.data.size()) +
                   static_cast<double>(w.token_embd.row_stride()) +
                   static_cast<double>(w.output_norm.size() * sizeof(float));
  // An MoE block's token reads its router and n_expert_used experts only.
  const int used = m.hparams().n_expert_used;
  for (int l : path.layers) {
    const BlockWeights& b = w.blocks[l];
    c.weight_bytes += static_cast<double>(b.token_matrix_bytes(used));
    c.matmul_flops += b.token_matmul_flops(used);
  }
  return c;
}

double prefill_attention_flops(const HParams& hp, int n_prompt, size_t positions) {
  return 4.0 * hp.n_head * hp.head_dim * (n_prompt + 1) / 2.0 * static_cast<double>(positions);
}

double measure_read_gbs(ThreadPool& pool, size_t bytes) {
  const size_t n = bytes / sizeof(uint64_t);
  std::vector<uint64_t> buf(n);
  pool.parallel_for(static_cast<int64_t>(n), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) buf[i] = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
  });
  std::atomic<uint64_t> sink{0};
  double best = 0;
  for (int pass = 0; pass < 6; ++pass) {
    const Stopwatch clock;
    pool.parallel_for(static_cast<int64_t>(n), [&](int64_t b, int64_t e) {
      // Four independent sums so the loop is bound by loads, not by the add chain.
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      int64_t i = b;
      for (; i + 4 <= e; i += 4) {
        s0 += buf[i];
        s1 += buf[i + 1];
        s2 += buf[i + 2];
        s3 += buf[i + 3];
      }
      for (; i < e; ++i) s0 += buf[i];
      sink.fetch_add(s0 + s1 + s2 + s3, std::memory_order_relaxed);
    });
    const double s = clock.seconds();
    if (pass > 0) best = std::max(best, static_cast<double>(bytes) / s / 1e9);  // pass 0 warms
  }
  if (sink.load() == 42) fmt::print(stderr, " ");  // keeps the sums observable
  return best;
}

BenchResult run_bench(const Model& m, Session& session, const BenchOptions& o) {
  if (o.n_prompt < 0 || o.n_gen < 0) throw Error("bench: token counts must be >= 0");
  if (o.reps < 1) throw Error(fmt::format("bench: repetitions must be >= 1, got {}", o.reps));
  const HParams& hp = m.hparams();
  const LayerPath& path = session.path();
  BenchResult r;
  r.cost = token_cost(m, path);
  r.attention_flops = prefill_attention_flops(hp, o.n_prompt, path.size());
  r.machine_gbs = measure_read_gbs(session.pool(), static_cast<size_t>(o.bw_mib * 1048576.0));

  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> tok(0, hp.n_vocab - 1);
  std::vector<int32_t> prompt(o.n_prompt), gen(o.n_gen);
  for (auto& t : prompt) t = tok(rng);
  for (auto& t : gen) t = tok(rng);
  r.pp = rate_of(repeat(session, o.n_prompt, o.reps, [&] { session.prefill(prompt); }));
  r.tg = rate_of(repeat(session, o.n_gen, o.reps, [&] {
    for (int32_t t : gen) session.decode(t);
  }));
  return r;
}

}  // namespace reprise::eval
