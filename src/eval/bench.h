// Speed of a model along a layer path, as llama-bench's pp/tg tests measure it, next to the
// machine's memory read bandwidth measured in the same run (`reprise bench`).
//
// pp<P>: one prefill of P random tokens into an empty context (logits of the last token only).
// tg<N>: N single-token decode steps from an empty context. Each is repeated `reps` times after
// one untimed warm-up run; figures are mean +- sample sd of the per-repetition tokens/s.
#pragma once

#include <cstddef>

#include "engine/layer_path.h"
#include "engine/session.h"
#include "model/model.h"
#include "util/thread_pool.h"

namespace reprise::eval {

struct BenchOptions {
  int n_prompt = 512;    // tokens of the pp test; 0 = no pp test
  int n_gen = 128;       // tokens of the tg test; 0 = no tg test
  int reps = 5;          // timed repetitions of each test (>= 1)
  double bw_mib = 1024;  // buffer of the bandwidth probe, MiB (much larger than the caches)
};

// What one token costs along `path`, counted from the weights (not measured).
struct TokenCost {
  // Bytes of weights one decode step reads: every matrix of every path position (a repeated
  // layer is read again: the model is far larger than the caches), the norms, the output head
  // and one embedding row.
  double weight_bytes = 0;
  double matmul_flops = 0;  // the path's linear layers: 2 per weight (multiply and add)
};
TokenCost token_cost(const Model& m, const LayerPath& path);

// FLOPs per token of attention in a `n_prompt`-token prefill along `positions` path positions:
// q.k and p.v (2 FLOPs each per head dimension) over (P + 1) / 2 keys on average per head.
double prefill_attention_flops(const HParams& hp, int n_prompt, size_t positions);

// This machine's read bandwidth in GB/s (1e9 bytes) with the pool's threads: each thread sums
// its share of a `bytes` buffer; the best of five timed passes after a warm-up.
double measure_read_gbs(ThreadPool& pool, size_t bytes);

struct Rate {
  double mean = 0, sd = 0;  // tokens/s over the repetitions; sd = 0 for one repetition
  size_t n = 0;             // repetitions; 0 = the test was not run
};

struct BenchResult {
  Rate pp, tg;
  TokenCost cost;
  double attention_flops = 0;  // per prefill token, prefill_attention_flops()
  double machine_gbs = 0;      // measure_read_gbs()
  double achieved_gbs() const { return cost.weight_bytes * tg.mean / 1e9; }  // tg's weight reads
  double pp_gflops() const { return (cost.matmul_flops + attention_flops) * pp.mean / 1e9; }
};

// Runs the pp and tg tests in `session` (reset before each run; its context must hold
// max(n_prompt, n_gen) + 1 tokens) with random tokens from a fixed seed, and the bandwidth
// probe in its thread pool. Throws Error for options out of range.
BenchResult run_bench(const Model& m, Session& session, const BenchOptions& o);

}  // namespace reprise::eval
