// reprise bench: prompt-processing and generation speed (llama-bench's pp/tg) beside the
// measured memory bandwidth; the measuring is eval/bench.h's.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "eval/bench.h"
#include "kernels/dispatch.h"
#include "util/error.h"

namespace reprise::cli {
namespace {

struct BenchOptions {
  ModelOptions model;
  eval::BenchOptions bench;
  bool json = false;
  bool kernels = false;
  std::string isa;
};

int run_bench(const BenchOptions& o) {
  if (!o.isa.empty()) {
    auto isa = kernels::isa_from_name(o.isa);
    if (!isa)
      throw Error(fmt::format("--isa {}: expected scalar, avx2, avxvnni, avx512 or amx", o.isa));
    kernels::set_isa(*isa);
  }
  if (o.kernels) {
    fmt::print("{}", kernels::kernel_table_markdown(kernels::active_isa()));
    return 0;
  }
  if (o.model.model.empty())
    throw Error("bench needs -m MODEL (or --kernels to list the kernels each tensor type runs)");
  auto m = o.model.load();
  const HParams& hp = m->hparams();
  LayerPath path = o.model.layer_path(*m);
  SessionOptions so = o.model.session_options();
  if (so.n_ctx == 0) so.n_ctx = std::max(o.bench.n_prompt, o.bench.n_gen) + 1;
  Session session(*m, path, so);
  const eval::BenchResult r = eval::run_bench(*m, session, o.bench);
  const ThreadPool& pool = session.pool();
  const double achieved = r.achieved_gbs(), gflops = r.pp_gflops();
  const std::string isa(kernels::isa_name(kernels::active_isa()));

  if (o.json) {
    nlohmann::json j = {
        {"pp", {{"mean", r.pp.mean}, {"sd", r.pp.sd}}},
        {"tg", {{"mean", r.tg.mean}, {"sd", r.tg.sd}}},
        {"bytes_per_token", r.cost.weight_bytes},
        {"achieved_gbs", achieved},
        {"machine_gbs", r.machine_gbs},
        {"tg_bandwidth_ratio", r.machine_gbs > 0 ? achieved / r.machine_gbs : 0.0},
        {"pp_gflops", gflops},
        {"isa", isa},
        {"threads", pool.size()},
        {"n_prompt", o.bench.n_prompt},
        {"n_gen", o.bench.n_gen},
        {"reps", o.bench.reps},
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
  fmt::print("bandwidth:  {:.2f} GB/s read, measured now with {} threads\n", r.machine_gbs,
             pool.size());
  if (r.pp.n > 0)
    fmt::print("pp{:<4}      {:8.2f} ± {:.2f} t/s   {:.1f} GFLOPS\n", o.bench.n_prompt, r.pp.mean,
               r.pp.sd, gflops);
  if (r.tg.n > 0)
    fmt::print(
        "tg{:<4}      {:8.2f} ± {:.2f} t/s   {:.1f} MB of weights per token, {:.2f} GB/s = "
        "{:.0f}% of the measured bandwidth\n",
        o.bench.n_gen, r.tg.mean, r.tg.sd, r.cost.weight_bytes / 1e6, achieved,
        100 * achieved / std::max(r.machine_gbs, 1e-9));
  return 0;
}

}  // namespace

void add_bench(CLI::App& app, Runner& run) {
  auto o = std::make_shared<BenchOptions>();
  auto* sub = app.add_subcommand("bench",
                                 "prompt processing and generation speed (llama-bench's "
                                 "pp/tg) against the measured memory bandwidth");
  o->model.add_to(*sub, /*with_path=*/true, ModelOptions::ModelFlag::Optional);
  sub->add_option("-p,--n-prompt", o->bench.n_prompt,
                  "prompt tokens for the pp test (default: 512)")
      ->check(CLI::Range(0, 1 << 20));
  sub->add_option("-n,--n-gen", o->bench.n_gen, "tokens for the tg test (default: 128)")
      ->check(CLI::Range(0, 1 << 20));
  sub->add_option("-r,--repetitions", o->bench.reps, "repetitions of each test (default: 5)")
      ->check(CLI::Range(1, 1000));
  sub->add_option("--isa", o->isa, "force the kernels: scalar, avx2, avxvnni, avx512, amx");
  sub->add_option("--bw-mib", o->bench.bw_mib,
                  "buffer size of the bandwidth test in MiB (default: 1024)")
      ->check(CLI::Range(16.0, 65536.0));
  sub->add_flag("--json", o->json, "print one JSON object");
  sub->add_flag("--kernels", o->kernels,
                "list which kernel (ISA, integer or float arithmetic) each tensor type runs for "
                "decode and prefill under the active ISA (or --isa), and exit");
  sub->callback([&run, o] { run = [o] { return run_bench(*o); }; });
}

}  // namespace reprise::cli
