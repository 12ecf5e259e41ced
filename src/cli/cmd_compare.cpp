// reprise compare: paired statistics between two eval runs on the same items.
#include <fmt/format.h>

#include <fstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "eval/compare.h"
#include "util/error.h"

namespace reprise::cli {
namespace {

struct CompareOptions {
  std::string a, b;
  std::string output;
  eval::CompareOptions stats;
};

int run_compare(const CompareOptions& o) {
  if (o.stats.bootstrap.resamples < 1) throw Error("--resamples must be at least 1");
  if (!(o.stats.alpha > 0 && o.stats.alpha < 1)) throw Error("--alpha must be in (0, 1)");
  const eval::RunItems a = eval::load_run(o.a);
  const eval::RunItems b = eval::load_run(o.b);
  const eval::Comparison c = eval::compare_runs(a, b, o.stats);
  fmt::print("A: {} (path {})\nB: {} (path {})\n", a.source, a.label, b.source, b.label);
  fmt::print(
      "differences are B - A; paired bootstrap CI ({} resamples, seed {}); Holm across "
      "tasks per metric\n\n",
      o.stats.bootstrap.resamples, o.stats.bootstrap.seed);
  fmt::print("{}\n", eval::comparison_table(c));
  for (const auto& v : c.verdicts) fmt::print("{}\n", v);
  if (!o.output.empty()) {
    std::ofstream f(o.output, std::ios::binary);
    if (!f) throw Error(fmt::format("-o {}: cannot write file", o.output));
    f << eval::comparison_json(c, a, b, o.stats).dump(2) << "\n";
  }
  return 0;
}

}  // namespace

void add_compare(CLI::App& app, Runner& run) {
  auto o = std::make_shared<CompareOptions>();
  auto* sub = app.add_subcommand(
      "compare", "paired comparison of two eval runs (results JSON or --log-samples files)");
  sub->add_option("A", o->a, "the baseline run")->required();
  sub->add_option("B", o->b, "the run compared with it")->required();
  sub->add_option("-o,--output", o->output, "write the comparison as JSON");
  sub->add_option("--seed", o->stats.bootstrap.seed, "bootstrap seed (default 1234)");
  sub->add_option("--resamples", o->stats.bootstrap.resamples,
                  "bootstrap resamples (default 10000)");
  sub->add_option("--alpha", o->stats.alpha,
                  "significance level for the verdicts, on Holm-adjusted p (default 0.05)");
  sub->callback([&run, o] { run = [o] { return run_compare(*o); }; });
}

}  // namespace reprise::cli
