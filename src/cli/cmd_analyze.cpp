// reprise analyze: per-layer diagnostics over a task's texts, a circuit prediction from them,
// and (with --against) the prediction checked against a real scan store.
#include <fmt/format.h>

#include <filesystem>

#include "analyze/predict.h"
#include "analyze/probe.h"
#include "analyze/report.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "scan/runner.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/stopwatch.h"

namespace reprise::cli {
namespace {

struct AnalyzeCli {
  ModelOptions model;
  analyze::ProbeOptions probe;
  std::vector<std::string> outs;
  std::string against;
  bool no_interventions = false;
  int top = 5;
};

int run_analyze(const AnalyzeCli& o) {
  for (const auto& out : o.outs) {
    const auto ext = std::filesystem::path(out).extension().string();
    if (ext != ".json" && ext != ".png" && ext != ".svg" && ext != ".html")
      throw Error(fmt::format("-o {}: analyze writes .json, .png, .svg or .html", out));
  }
  auto m = o.model.load();
  analyze::AnalysisReport r;
  if (!o.against.empty()) {  // before the diagnostics: a scan of another model is refused at once
    r.scan = analyze::load_scan(o.against, m->hparams().n_layer, scan::model_fingerprint(*m));
    r.scan_path = o.against;
  }
  const Stopwatch total_clock;
  r.model = std::filesystem::path(m->path()).filename().string();
  r.tasks = o.probe.tasks;
  r.limit = o.probe.limit;
  r.max_tokens = o.probe.max_tokens;
  Stopwatch clock;
  const auto items = analyze::probe_items(*m, o.probe);
  r.seconds_probe = clock.seconds();
  analyze::DiagnosticsOptions dopts;
  dopts.n_threads = o.model.threads;
  dopts.interventions = !o.no_interventions;
  Progress progress(items.size(), "sequences");
  dopts.progress = [&](size_t done) { progress.update(done, o.probe.tasks); };
  r.diag = analyze::run_diagnostics(*m, items, dopts);
  progress.finish();
  clock.restart();
  r.predictions.push_back(analyze::predict_drift(r.diag));
  r.predictions.push_back(analyze::predict_stability(r.diag));
  // What a scan is replaced by: the plain pass with its statistics, and the ranking.
  r.seconds_prediction = r.diag.seconds_plain + clock.seconds();
  if (r.scan) {
    for (const auto& p : r.predictions)
      r.validations.push_back(analyze::validate(p, r.scan->deltas));
  }
  r.seconds_total = total_clock.seconds();
  fmt::print("{}", analyze::summary(r, o.top));
  for (const auto& out : o.outs) {
    analyze::write_report(r, out);
    fmt::print(stderr, "wrote {}\n", out);
  }
  return 0;
}

}  // namespace

void add_analyze(CLI::App& app, Runner& run) {
  auto o = std::make_shared<AnalyzeCli>();
  auto* sub = app.add_subcommand(
      "analyze",
      "per-layer diagnostics and a circuit prediction (optionally checked against a scan)");
  o->model.add_to(*sub, /*with_path=*/false);
  sub->add_option("--task", o->probe.tasks, "task(s) whose texts are the probe (see eval --list)")
      ->required();
  sub->add_option("--limit", o->probe.limit, "first N items per task (default: all)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--max-tokens", o->probe.max_tokens, "tokens per probe sequence (default 128)")
      ->check(CLI::Range(2, 1 << 20));
  sub->add_option("--seed", o->probe.task_options.seed, "seed for probe tasks");
  sub->add_option("--against", o->against, "scan store (.db) to check the prediction against");
  sub->add_flag("--no-interventions", o->no_interventions,
                "only the plain-pass statistics (no skip/swap runs)");
  sub->add_option("--top", o->top, "predicted blocks listed");
  sub->add_option("-o,--out", o->outs, "analysis.json | .png | .svg | .html (repeatable)");
  sub->callback([&run, o] { run = [o] { return run_analyze(*o); }; });
}

}  // namespace reprise::cli
