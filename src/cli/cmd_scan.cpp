// reprise scan: score every (i, j) block against the baseline, resumably.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "report/scan_report.h"
#include "route/held_out.h"
#include "scan/beam.h"
#include "scan/cluster.h"
#include "scan/runner.h"
#include "scan/store.h"
#include "util/error.h"
#include "util/strings.h"
#include "util/thread_pool.h"

namespace reprise::cli {
namespace {

struct ScanCli {
  ModelOptions model;
  scan::ScanOptions scan;
  std::string mode = "repeat";
  std::string loops = "3";
  std::string alphas = "1";
  std::string i_range, j_range;
  std::string out;
  std::string path;  // only auto:FILE, a router validated beside the top configs
  int top = 10;
  static constexpr int64_t kAll = std::numeric_limits<int64_t>::min();
  int64_t limit = kAll;   // not given: every item
  std::string misplaced;  // an option of another strategy than --strategy (see add_scan)
};

int to_int(std::string_view text, const std::string& flag) {
  const std::string s(text);
  try {
    size_t used = 0;
    int v = std::stoi(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  throw Error(fmt::format("{}: '{}' is not a whole number", flag, s));
}

scan::Range parse_range(const std::string& s, const std::string& flag) {
  auto p = split(s, ':');
  if (p.size() != 2) throw Error(fmt::format("{} takes a:b, got '{}'", flag, s));
  return {to_int(p[0], flag), to_int(p[1], flag)};
}

// The first option given that belongs to a strategy other than `strategy` (CLI11 would accept
// and ignore it), as an error message; empty when there is none.
std::string misplaced_strategy_option(const CLI::App& sub, const std::string& strategy) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> owned = {
      {"beam", {"--beam", "--depth", "--beam-score", "--surrogate", "--surrogate-min-rho"}},
      {"race", {"--race-margin", "--race-alpha", "--race-keep", "--race-first", "--race-clip"}}};
  for (const auto& [owner, names] : owned)
    for (const auto& name : names)
      if (strategy != owner && sub.count(name) > 0)
        return fmt::format("{} applies only to --strategy {} (this scan's strategy is {})", name,
                           owner, strategy);
  return "";
}

// --limit and --top: checked here (not by CLI11, whose range message prints the type's limits).
void check_counts(ScanCli& o) {
  if (o.limit != ScanCli::kAll) {
    if (o.limit < 1)
      throw Error(
          fmt::format("--limit must be >= 1 (leave it out for every item), got {}", o.limit));
    o.scan.limit = static_cast<size_t>(o.limit);
  }
  if (o.top < 1) throw Error(fmt::format("--top must be >= 1, got {}", o.top));
}

// --mode, --loops, --alphas, --i-range and --j-range into the scan's plan.
void parse_plan_lists(const ScanCli& o, scan::PlanOptions& plan) {
  plan.modes.clear();
  for (auto m : split(o.mode, ',')) plan.modes.push_back(scan::parse_mode(std::string(m)));
  plan.loops.clear();
  for (auto k : split(o.loops, ',')) plan.loops.push_back(to_int(k, "--loops"));
  plan.alphas.clear();
  for (auto a : split(o.alphas, ',')) {
    auto v = parse_alpha(a);
    if (!v)
      throw Error(fmt::format("--alphas: '{}' is not a weight in [0, {}]", a, kMaxLayerAlpha));
    plan.alphas.push_back(*v);
  }
  if (!o.i_range.empty()) plan.i_range = parse_range(o.i_range, "--i-range");
  if (!o.j_range.empty()) plan.j_range = parse_range(o.j_range, "--j-range");
}

// --path auto:FILE: the router file scored beside the top configs ("" without --path).
std::string router_file_of(const ScanCli& o) {
  const std::string router_file = route::auto_router_file(o.path);
  if (!o.path.empty() && router_file.empty())
    throw Error(fmt::format(
        "--path '{}': a scan runs its own paths; --path takes only auto:ROUTER.json (a router "
        "validated beside the top configs, with --validate N)",
        o.path));
  return router_file;
}

void print_results(const ScanCli& o, const scan::ScanTotals& totals, bool routed) {
  fmt::print("{}", report::scan_summary(o.out, o.top));
  if (o.scan.strategy == "beam") fmt::print("\n{}", scan::describe_beam(scan::Store(o.out)));
  if (routed) fmt::print("\n{}", route::describe(route::evaluate_held_out(scan::Store(o.out))));
  fmt::print(
      "this run: {} configs scored, {} already in the store; {} item evaluations; {:.1f} s\n",
      totals.configs_run, totals.configs_skipped, totals.item_evals, totals.seconds);
  for (const auto& [kind, e] : totals.layer_evals_by_kind)
    fmt::print("prefix reuse, {}: {} layer evaluations instead of {} ({:.2f}x fewer)\n", kind,
               e.first, e.second, e.first > 0 ? double(e.second) / double(e.first) : 0.0);
}

int run_scan_cli(ScanCli& o) {
  if (!o.misplaced.empty()) throw Error(o.misplaced);
  check_counts(o);
  o.scan.model = o.model.model;
  o.scan.session = o.model.session_options();
  if (o.scan.session.n_ctx == 0) o.scan.session.n_ctx = 2048;
  o.scan.store = o.out;
  parse_plan_lists(o, o.scan.plan);
  const std::string router_file = router_file_of(o);
  if (!router_file.empty())
    o.scan.routed = [router_file](const Model& m, const SessionOptions& so) {
      return std::make_unique<route::RoutedScanEntry>(m, router_file, so);
    };
  auto cluster = scan::Cluster::from_environment();
  if (o.scan.session.n_threads == 0 && cluster->local_size() > 1)  // share this machine's cores
    o.scan.session.n_threads = std::max(1, ThreadPool::default_threads() / cluster->local_size());
  scan::ScanTotals totals;
  try {
    totals = scan::run_scan(o.scan, *cluster);
  } catch (const std::exception& e) {
    if (cluster->size() == 1) throw;
    // One failed rank must not leave the others waiting for it.
    fmt::print(stderr, "reprise: error: rank {}: {}\n", cluster->rank(), e.what());
    std::fflush(stderr);
    cluster->abort(2);
  }
  if (cluster->rank() == 0) print_results(o, totals, !router_file.empty());
  return 0;
}

}  // namespace

void add_scan(CLI::App& app, Runner& run) {
  auto o = std::make_shared<ScanCli>();
  auto* sub = app.add_subcommand("scan", "score every (i, j) layer block against the baseline");
  o->model.add_to(*sub, /*with_path=*/false);
  sub->add_option("--task", o->scan.tasks, "task(s) to score, comma-separated (see eval --list)")
      ->required();
  sub->add_option("--limit", o->limit, "items per task searched (default: all)");
  sub->add_option("--mode", o->mode, "repeat, skip, loop (comma-separated)");
  sub->add_option("--loops", o->loops, "run counts for loop mode, e.g. 2,3,4");
  sub->add_option("--alphas", o->alphas,
                  "residual weights of the repeated pass, e.g. 0.25,0.5,0.75,1 (damped repeats)");
  sub->add_option("--block-min", o->scan.plan.block_min, "smallest block size j - i");
  sub->add_option("--block-max", o->scan.plan.block_max, "largest block size (0 = any)");
  sub->add_option("--i-range", o->i_range, "start layers a:b (half-open)");
  sub->add_option("--j-range", o->j_range, "end layers a:b (half-open)");
  sub->add_option("--strategy", o->scan.strategy, "dense, coarse-to-fine, race or beam");
  sub->add_option("--beam", o->scan.beam.width, "beam: best paths expanded per round (default 4)");
  sub->add_option("--depth", o->scan.beam.depth, "beam: rounds, one block added each (default 2)");
  sub->add_option("--beam-score", o->scan.beam.score,
                  "beam: candidates scored per round, the surrogate's top ones (default 8)");
  sub->add_option("--surrogate", o->scan.beam.surrogate,
                  "beam: ridge, knn or auto (the higher held-out rho each round; default)");
  sub->add_option("--surrogate-min-rho", o->scan.beam.min_rho,
                  "beam: below this held-out Spearman rho the surrogate is not trusted (0.6)");
  sub->add_option("--race-margin", o->scan.race.margin,
                  "race: drop configs confidently below the best by more than this");
  sub->add_option("--race-alpha", o->scan.race.alpha,
                  "race: chance of dropping the true best config, at most (default 0.05)");
  sub->add_option("--race-keep", o->scan.race.keep,
                  "race: the configs of highest running mean that are never dropped (default 5)");
  sub->add_option("--race-first", o->scan.race.first, "race: items per task in the first batch");
  sub->add_option("--race-clip", o->scan.race.clip,
                  "race: continuous metrics' differences clipped at +-this (default 1)");
  sub->add_option("--stride", o->scan.coarse_stride, "coarse grid stride (default N/6)");
  sub->add_option("--refine-top", o->scan.refine_top,
                  "coarse-to-fine: best configs per mode refined around (default 3)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--validate", o->scan.validate, "re-score the top N configs on held-out items");
  sub->add_option("--path", o->path,
                  "auto:ROUTER.json: also score this router (`reprise route train`) on the "
                  "held-out items, its candidates validated too (needs --validate)");
  sub->add_option("--validate-limit", o->scan.validate_limit, "held-out items per task");
  sub->add_option("--controls", o->scan.controls, "skip controls beside the top N repeat configs");
  sub->add_option("--seed", o->scan.seed, "seed for probes and bootstrap");
  sub->add_option("--top", o->top, "configs listed in the summary");
  sub->add_flag("--quiet", o->scan.quiet, "no progress bar");
  sub->add_option("-o,--out", o->out, "SQLite store (created or resumed)")->required();
  sub->callback([&run, o, sub] {
    o->misplaced = misplaced_strategy_option(*sub, o->scan.strategy);
    run = [o] { return run_scan_cli(*o); };
  });
}

}  // namespace reprise::cli
