// reprise eval: score a model (along a layer path) on tasks, keeping every per-item score.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>

#include "cli/commands.h"
#include "cli/common.h"
#include "eval/chat_family.h"
#include "eval/data_dir.h"
#include "eval/evaluator.h"
#include "eval/registry.h"
#include "eval/session_lm.h"
#include "route/scored_model.h"
#include "util/error.h"
#include "util/output_file.h"
#include "util/progress.h"
#include "util/stopwatch.h"

namespace reprise::cli {
namespace {

struct EvalOptions {
  ModelOptions model;
  std::string tasks;
  int64_t limit = -1;  // -1: not given (all items)
  uint64_t seed = 1234;
  std::string output;
  std::string log_samples;
  std::string data_dir;
  std::string chat;
  int batch_items = 16;
  bool list = false;
};

int run_eval(const EvalOptions& o) {
  if (o.list) {
    fmt::print("{}", eval::task_listing_table());
    return 0;
  }
  if (o.model.model.empty()) throw Error("eval needs -m MODEL (or --list to see the tasks)");
  if (o.tasks.empty()) throw Error("eval needs --task NAME[,NAME...] (see eval --list)");
  if (o.limit == 0 || o.limit < -1)
    throw Error(
        fmt::format("--limit {}: must be at least 1 (leave it out to run every item)", o.limit));
  if (o.batch_items < 1) throw Error("--batch-items must be at least 1");

  if (!o.output.empty()) check_output_file(o.output, /*overwrite=*/true, "-o");
  // Everything about the tasks is checked before the model loads.
  eval::TaskOptions topts;
  topts.seed = o.seed;
  if (!o.data_dir.empty()) topts.data_dir = eval::find_data_dir(o.data_dir);
  const auto tasks = eval::make_tasks(o.tasks, topts);

  auto m = o.model.load();
  eval::SessionLMOptions lopts;
  lopts.session = o.model.session_options();
  lopts.format = eval::eval_prompt_format(o.chat, m->tokenizer(), m->path());
  // --path auto:FILE routes each item (route/routed_lm.h); the router is checked at start-up.
  route::ScoredModel model(
      *m, o.model.path, [&] { return o.model.layer_path(*m); }, lopts);
  eval::SessionLM& lm = model.session_lm();

  const size_t limit = o.limit > 0 ? static_cast<size_t>(o.limit) : 0;
  const size_t total = eval::suite_items(tasks, limit);
  fmt::print(stderr, "model: {} | path: {} ({} positions) | {} task(s), {} items | ctx {}\n",
             m->path(), model.path_label(), model.path().size(), tasks.size(), total, lm.n_ctx());

  std::ofstream samples;
  if (!o.log_samples.empty()) {
    samples.open(o.log_samples, std::ios::binary);
    if (!samples) throw Error(fmt::format("--log-samples {}: cannot write file", o.log_samples));
  }
  const Stopwatch clock;
  const double start_unix =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  Progress progress(total);
  eval::SuiteOptions so;
  so.limit = limit;
  so.batch_items = static_cast<size_t>(o.batch_items);
  so.progress = [&](size_t done, const std::string& task) { progress.update(done, task); };
  so.on_task_done = [&](const eval::TaskResult& r) {
    if (!samples.is_open()) return;
    eval::write_sample_lines(
        samples, r, [&](const eval::ItemRecord& item) { return model.path_of(item.prompt); });
  };
  const auto results = eval::evaluate_suite(tasks, model.scored(), so);
  progress.finish();
  const double seconds = clock.seconds();
  if (lm.requests_truncated() > 0)
    fmt::print(stderr, "note: {} request(s) were cut from the left to fit --ctx {}\n",
               lm.requests_truncated(), lm.n_ctx());
  fmt::print(stderr, "done in {}; {} tokens computed\n", Progress::format_duration(seconds),
             lm.tokens_computed());
  if (const PackedWeights* pw = lm.session().packed_weights(); pw && !pw->describe().empty())
    fmt::print(stderr, "{}\n", pw->describe());
  for (const auto& [key, n] : model.route_counts())
    fmt::print(stderr, "route: {} request(s) along {}\n", n, key);

  fmt::print("{}", eval::summary_table(results));
  if (!o.output.empty()) {
    eval::RunSettings rs;
    rs.model_path = m->path();
    rs.model_name = m->name();
    rs.path_label = model.path_label();
    rs.path_layers = model.path_layers();
    rs.task_spec = o.tasks;
    rs.tasks = eval::resolve_task_names(o.tasks);
    rs.limit = o.limit;
    rs.seed = o.seed;
    rs.batch_items = o.batch_items;
    rs.n_ctx = lm.n_ctx();
    rs.prompt_format = lm.prompt_format();
    rs.chat_family = lopts.format.chat_family;
    rs.chat_system = lopts.format.chat_system;
    const eval::RunInfo run = eval::run_info(rs, start_unix, seconds);
    write_file_atomically(o.output,
                          eval::results_json(results, run)
                                  .dump(2, ' ', false, nlohmann::json::error_handler_t::replace) +
                              "\n");
  }
  return 0;
}

}  // namespace

void add_eval(CLI::App& app, Runner& run) {
  auto o = std::make_shared<EvalOptions>();
  auto* sub = app.add_subcommand("eval", "score a model along a layer path on evaluation tasks");
  // -m is optional here: eval --list runs without a model (run_eval asks for it otherwise).
  o->model.add_to(*sub, /*with_path=*/true, ModelOptions::ModelFlag::Optional);
  sub->add_option("--task", o->tasks, "task names, comma-separated (see --list), or a .jsonl file");
  sub->add_option("--limit", o->limit, "only the first N items of each task");
  sub->add_option("--seed", o->seed, "seed for the generated probes (default 1234)");
  sub->add_option("-o,--output", o->output, "write results (with per-item scores) as JSON");
  sub->add_option("--log-samples", o->log_samples, "write one JSON line per item");
  sub->add_option("--data-dir", o->data_dir, "where the bundled datasets are (default: found)");
  sub->add_option("--chat", o->chat,
                  "wrap prompts in a chat template: 'auto' (the model's) or a family name");
  sub->add_option("--batch-items", o->batch_items, "items sent to the model per batch (16)");
  sub->add_flag("--list", o->list, "list the built-in tasks and their metrics");
  sub->callback([&run, o] { run = [o] { return run_eval(*o); }; });
}

}  // namespace reprise::cli
