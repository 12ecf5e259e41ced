// reprise scan: score every (i, j) block against the baseline, resumably.
#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "report/scan_report.h"
#include "route/held_out.h"
#include "scan/beam.h"
#include "scan/runner.h"
#include "scan/store.h"
#include "util/error.h"
#include "util/strings.h"

namespace reprise::cli {
namespace {

struct ScanCli {
  ModelOptions model;
  scan::ScanOptions scan;
  scan::PlanLists plan;  // --mode, --loops, --alphas, --i-range, --j-range as given
  std::string out;
  std::string path;  // only auto:FILE, a router validated beside the top configs
  int top = 10;
  static constexpr int64_t kAll = std::numeric_limits<int64_t>::min();
  int64_t limit = kAll;            // not given: every item
  std::string misplaced;           // an option of another strategy than --strategy (see add_scan)
  std::string race_clip = "auto";  // --race-clip: "auto" or a number
};

// The first option given from the group of a strategy other than `strategy` (CLI11 would accept
// and ignore it), as an error message; empty when there is none.
std::string misplaced_strategy_option(
    const std::vector<std::pair<const CLI::App*, std::string>>& groups,
    const std::string& strategy) {
  for (const auto& [group, owner] : groups)
    for (const CLI::Option* opt : group->get_options())
      if (strategy != owner && opt->count() > 0)
        return fmt::format("{} applies only to --strategy {} (this scan's strategy is {})",
                           opt->get_name(), owner, strategy);
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

// --race-clip auto | X (scan/race.h); X > 0 is checked with the other race options.
void parse_race_clip(ScanCli& o) {
  o.scan.race.auto_clip = o.race_clip == "auto";
  if (!o.scan.race.auto_clip && !parse_double(o.race_clip, o.scan.race.clip))
    throw Error(fmt::format("--race-clip: expected 'auto' or a number, got '{}'", o.race_clip));
}

void print_results(const ScanCli& o, const scan::ScanTotals& totals) {
  fmt::print("{}", report::scan_summary(o.out, o.top));
  if (o.scan.strategy == "beam") fmt::print("\n{}", scan::describe_beam(scan::Store(o.out)));
  if (o.scan.routed)
    fmt::print("\n{}", route::describe(route::evaluate_held_out(scan::Store(o.out))));
  fmt::print("{}", scan::describe(totals));
}

int run_scan_cli(ScanCli& o) {
  if (!o.misplaced.empty()) throw Error(o.misplaced);
  check_counts(o);
  parse_race_clip(o);
  o.scan.model = o.model.model;
  o.scan.session = o.model.session_options();
  if (o.scan.session.n_ctx == 0) o.scan.session.n_ctx = 2048;
  o.scan.store = o.out;
  scan::parse_plan_lists(o.plan, o.scan.plan);
  o.scan.routed = route::scan_routed_entry(o.path);
  if (const auto totals = scan::run_scan_in_job(o.scan))  // rank 0 prints
    print_results(o, *totals);
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
  sub->add_option("--mode", o->plan.modes, "repeat, skip, loop (comma-separated)");
  sub->add_option("--loops", o->plan.loops, "run counts for loop mode, e.g. 2,3,4");
  sub->add_option("--alphas", o->plan.alphas,
                  "residual weights of the repeated pass, e.g. 0.25,0.5,0.75,1 (damped repeats)");
  sub->add_option("--block-min", o->scan.plan.block_min, "smallest block size j - i");
  sub->add_option("--block-max", o->scan.plan.block_max, "largest block size (0 = any)");
  sub->add_option("--i-range", o->plan.i_range, "start layers a:b (half-open)");
  sub->add_option("--j-range", o->plan.j_range, "end layers a:b (half-open)");
  sub->add_option("--strategy", o->scan.strategy, "dense, coarse-to-fine, race or beam");
  // Each strategy's own options, in a group of their own (--help lists them so; given under
  // another strategy they are an error, not silently ignored).
  auto* beam = sub->add_option_group("beam", "options of --strategy beam");
  beam->add_option("--beam", o->scan.beam.width, "beam: best paths expanded per round (default 4)");
  beam->add_option("--depth", o->scan.beam.depth, "beam: rounds, one block added each (default 2)");
  beam->add_option("--beam-score", o->scan.beam.score,
                   "beam: candidates scored per round, the surrogate's top ones (default 8)");
  beam->add_option("--surrogate", o->scan.beam.surrogate,
                   "beam: ridge, knn or auto (the higher held-out rho each round; default)");
  beam->add_option("--surrogate-min-rho", o->scan.beam.min_rho,
                   "beam: below this held-out Spearman rho the surrogate is not trusted (0.6)");
  auto* race = sub->add_option_group("race", "options of --strategy race");
  race->add_option("--race-margin", o->scan.race.margin,
                   "race: drop configs confidently below the best by more than this");
  race->add_option("--race-alpha", o->scan.race.alpha,
                   "race: chance of dropping the true best config, at most (default 0.05)");
  race->add_option("--race-keep", o->scan.race.keep,
                   "race: the configs of highest running mean that are never dropped (default 5)");
  race->add_option("--race-first", o->scan.race.first, "race: items per task in the first batch");
  race->add_option("--race-clip", o->race_clip,
                   "race: continuous metrics' differences clipped at +-this, or auto (default): "
                   "per config, the largest of its first batch, at most 1");
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
  sub->callback([&run, o, beam, race] {
    o->misplaced = misplaced_strategy_option({{beam, "beam"}, {race, "race"}}, o->scan.strategy);
    run = [o] { return run_scan_cli(*o); };
  });
}

}  // namespace reprise::cli
