// reprise bench: prompt-processing and generation speed, as llama-bench's pp/tg tests measure
// them, next to the machine's memory read bandwidth measured in the same run.
//
// pp<P>: one prefill of P random tokens into an empty context (logits of the last token only).
// tg<N>: N single-token decode steps from an empty context. Each is repeated -r times after one
// untimed warm-up run; figures are mean +- sample sd of the per-repetition tokens/s.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>

#include "cli/common.h"
#include "kernels/dispatch.h"
#include "util/error.h"

namespace reprise::cli {
namespace {

struct BenchOptions {
  ModelOptions model;
  int n_prompt = 512;
  int n_gen = 128;
  int reps = 5;
  bool json = false;
  std::string isa;
  double bw_mib = 1024;  // bandwidth test buffer
};

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Stat {
  double mean = 0, sd = 0;
};

Stat stat(const std::vector<double>& v) {
  Stat s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(ss / static_cast<double>(v.size() - 1));
  }
  return s;
}

// Read bandwidth of this machine with the pool's threads: each thread sums its half of a buffer
// much larger than the caches; the best of several passes is the bound decode is held against.
double measure_read_gbs(ThreadPool& pool, size_t bytes) {
  const size_t n = bytes / sizeof(uint64_t);
  std::vector<uint64_t> buf(n);
  pool.parallel_for(static_cast<int64_t>(n), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) buf[i] = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
  });
  std::atomic<uint64_t> sink{0};
  double best = 0;
  for (int pass = 0; pass < 6; ++pass) {
    const auto t0 = Clock::now();
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
    const double s = seconds_since(t0);
    if (pass > 0) best = std::max(best, static_cast<double>(bytes) / s / 1e9);  // pass 0 warms
  }
  if (sink.load() == 42) fmt::print(stderr, " ");  // keeps the sums observable
  return best;
}

int run_bench(const BenchOptions& o) {
  if (!o.isa.empty()) {
    auto isa = kernels::isa_from_name(o.isa);
    if (!isa) throw Error(fmt::format("--isa {}: expected scalar, avx2, avxvnni, avx512 or amx", o.isa));
    kernels::set_isa(*isa);
  }
  auto m = o.model.load();
  const HParams& hp = m->hparams();
  LayerPath path = o.model.layer_path(*m);
  SessionOptions so = o.model.session_options();
  if (so.n_ctx == 0) so.n_ctx = std::max(o.n_prompt, o.n_gen) + 1;
  Session session(*m, path, so);
  const Weights& w = m->weights();

  // Bytes of weights one decode step reads: every matrix of every path position (a repeated
  // layer is read again: the model is far larger than the caches), the norms, the output head
  // and one embedding row.
  double bytes_per_token = static_cast<double>(w.output.data.size()) +
                           static_cast<double>(w.token_embd.row_stride()) +
                           static_cast<double>(w.output_norm.size() * sizeof(float));
  double flops_per_token = 0;  // prefill, matmuls only: 2 per weight
  for (int l : path.layers) {
    const BlockWeights& b = w.blocks[l];
    bytes_per_token += static_cast<double>(b.matrix_bytes());
    for (const TensorView* t : {&b.wq, &b.wk, &b.wv, &b.wo, &b.w_gate, &b.w_up, &b.w_down})
      flops_per_token += 2.0 * static_cast<double>(t->elements());
  }
  // Attention of a P-token prompt: q.k and p.v over (P + 1) / 2 keys on average per head.
  const double attn_flops_per_token =
      4.0 * hp.n_head * hp.head_dim * (o.n_prompt + 1) / 2.0 * path.size();

  ThreadPool& pool = session.pool();
  const double machine_gbs = measure_read_gbs(pool, static_cast<size_t>(o.bw_mib * 1048576.0));

  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> tok(0, hp.n_vocab - 1);
  std::vector<int32_t> prompt(o.n_prompt), gen(o.n_gen);
  for (auto& t : prompt) t = tok(rng);
  for (auto& t : gen) t = tok(rng);

  auto run_pp = [&] {
    session.reset();
    const auto t0 = Clock::now();
    session.prefill(prompt);
    return o.n_prompt / seconds_since(t0);
  };
  auto run_tg = [&] {
    session.reset();
    const auto t0 = Clock::now();
    for (int32_t t : gen) session.decode(t);
    return o.n_gen / seconds_since(t0);
  };
  std::vector<double> pp, tg;
  if (o.n_prompt > 0) {
    run_pp();
    for (int r = 0; r < o.reps; ++r) pp.push_back(run_pp());
  }
  if (o.n_gen > 0) {
    run_tg();
    for (int r = 0; r < o.reps; ++r) tg.push_back(run_tg());
  }
  const Stat spp = stat(pp), stg = stat(tg);
  const double achieved = bytes_per_token * stg.mean / 1e9;
  const double gflops = (flops_per_token + attn_flops_per_token) * spp.mean / 1e9;
  const std::string isa(kernels::isa_name(kernels::active_isa()));

  if (o.json) {
    nlohmann::json j = {
        {"pp", {{"mean", spp.mean}, {"sd", spp.sd}}},
        {"tg", {{"mean", stg.mean}, {"sd", stg.sd}}},
        {"bytes_per_token", bytes_per_token},
        {"achieved_gbs", achieved},
        {"machine_gbs", machine_gbs},
        {"tg_bandwidth_ratio", machine_gbs > 0 ? achieved / machine_gbs : 0.0},
        {"pp_gflops", gflops},
        {"isa", isa},
        {"threads", pool.size()},
        {"n_prompt", o.n_prompt},
        {"n_gen", o.n_gen},
        {"reps", o.reps},
        {"path", path.canonical()},
        {"kv_type", std::string(kv_type_name(so.kv_type))},
        {"model", m->path()},
    };
    fmt::print("{}\n", j.dump());
    return 0;
  }
  fmt::print("model:      {} ({} layers, path {}, {} positions)\n", m->path(), hp.n_layer,
             path.canonical(), path.size());
  fmt::print("isa:        {} (cpu: {}), {} threads, kv cache {}\n", isa, kernels::cpu_features(),
             pool.size(), kv_type_name(so.kv_type));
  fmt::print("bandwidth:  {:.2f} GB/s read, measured now with {} threads\n", machine_gbs,
             pool.size());
  if (!pp.empty())
    fmt::print("pp{:<4}      {:8.2f} ± {:.2f} t/s   {:.1f} GFLOPS\n", o.n_prompt, spp.mean, spp.sd,
               gflops);
  if (!tg.empty())
    fmt::print(
        "tg{:<4}      {:8.2f} ± {:.2f} t/s   {:.1f} MB of weights per token, {:.2f} GB/s = "
        "{:.0f}% of the measured bandwidth\n",
        o.n_gen, stg.mean, stg.sd, bytes_per_token / 1e6, achieved,
        100 * achieved / std::max(machine_gbs, 1e-9));
  return 0;
}

void add_bench(CLI::App& app, Runner& run) {
  auto o = std::make_shared<BenchOptions>();
  auto* sub = app.add_subcommand("bench",
                                 "prompt processing and generation speed (llama-bench's "
                                 "pp/tg) against the measured memory bandwidth");
  o->model.add_to(*sub);
  sub->add_option("-p,--n-prompt", o->n_prompt, "prompt tokens for the pp test (default: 512)")
      ->check(CLI::Range(0, 1 << 20));
  sub->add_option("-n,--n-gen", o->n_gen, "tokens for the tg test (default: 128)")
      ->check(CLI::Range(0, 1 << 20));
  sub->add_option("-r,--repetitions", o->reps, "repetitions of each test (default: 5)")
      ->check(CLI::Range(1, 1000));
  sub->add_option("--isa", o->isa, "force the kernels: scalar, avx2, avxvnni, avx512, amx");
  sub->add_option("--bw-mib", o->bw_mib, "buffer size of the bandwidth test in MiB (default: 1024)")
      ->check(CLI::Range(16.0, 65536.0));
  sub->add_flag("--json", o->json, "print one JSON object");
  sub->callback([&run, o] { run = [o] { return run_bench(*o); }; });
}

const CommandRegistration kRegistration(65, add_bench);

}  // namespace
}  // namespace reprise::cli
