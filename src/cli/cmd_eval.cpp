// reprise eval: score a model (along a layer path) on tasks, keeping every per-item score.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>

#include "cli/common.h"
#include "eval/data_dir.h"
#include "eval/evaluator.h"
#include "eval/registry.h"
#include "eval/session_lm.h"
#include "model/chat_template.h"
#include "route/routed_lm.h"
#include "util/error.h"
#include "util/output_file.h"
#include "util/stopwatch.h"
#include "util/progress.h"
#include "util/version.h"

namespace reprise::cli {
namespace {

struct EvalOptions {
  // The model options by hand (not ModelOptions::add_to): -m must stay optional for --list.
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

void print_listing() {
  const auto tasks = eval::task_listing();
  size_t w = 0;
  for (const auto& t : tasks) w = std::max(w, t.name.size());
  fmt::print("{:<{}}  {:<24}  {:<40}  {}\n", "task", w, "kind", "metrics", "description");
  for (const auto& t : tasks) {
    std::string metrics;
    for (const auto& m : t.metrics)
      metrics += fmt::format("{}{} ({})", metrics.empty() ? "" : ", ", m.id(),
                             eval::metric_kind_name(m.kind));
    fmt::print("{:<{}}  {:<24}  {:<40}  {}\n", t.name, w, t.output_type, metrics, t.description);
  }
  fmt::print("\nA path ending in .jsonl is a task file of your own (docs/evaluation.md).\n");
}

std::string chat_family(const EvalOptions& o, const Model& m) {
  if (o.chat.empty()) return "";
  if (o.chat != "auto") return o.chat;  // format_chat checks the name
  const Tokenizer* tok = m.tokenizer();
  const std::string& jinja = tok ? tok->vocab().chat_template : std::string();
  auto family = detect_chat_template(jinja);
  if (!family)
    throw Error(
        fmt::format("--chat auto: {} has no chat template reprise recognises; name a "
                    "family (chatml, llama3, llama2, mistral, gemma)",
                    m.path()));
  return *family;
}

std::string iso_time_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

int run_eval(const EvalOptions& o) {
  if (o.list) {
    print_listing();
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
  const auto names = eval::resolve_task_names(o.tasks);
  eval::TaskOptions topts;
  topts.seed = o.seed;
  if (!o.data_dir.empty()) topts.data_dir = eval::find_data_dir(o.data_dir);
  std::vector<std::unique_ptr<eval::Task>> tasks;
  for (const auto& n : names) tasks.push_back(eval::make_task(n, topts));

  auto m = o.model.load();
  eval::SessionLMOptions lopts;
  lopts.session = o.model.session_options();
  lopts.format.chat_family = chat_family(o, *m);
  // --chat auto renders what the model's template renders, default system turn included.
  if (o.chat == "auto" && m->tokenizer())
    lopts.format.chat_system =
        default_system_message(m->tokenizer()->vocab().chat_template).value_or("");
  // --path auto:FILE routes each item (route/routed_lm.h); the router is checked at start-up.
  const std::string router_file = route::auto_router_file(o.model.path);
  std::unique_ptr<route::PathRouter> router;
  std::unique_ptr<route::RoutedLM> routed;
  if (!router_file.empty()) {
    router =
        std::make_unique<route::PathRouter>(*m, route::load_router(router_file), lopts.session);
    routed = std::make_unique<route::RoutedLM>(*m, *router, lopts);
  }
  std::unique_ptr<eval::SessionLM> plain;
  if (!routed) plain = std::make_unique<eval::SessionLM>(*m, o.model.layer_path(*m), lopts);
  eval::SessionLM& lm = routed ? routed->inner() : *plain;
  eval::LanguageModel& scored = routed ? static_cast<eval::LanguageModel&>(*routed) : lm;
  const LayerPath path = lm.session().path();  // with a router: its first candidate, the plain path
  const std::string path_label = routed ? o.model.path : path.canonical();

  const size_t limit = o.limit > 0 ? static_cast<size_t>(o.limit) : 0;
  size_t total = 0;
  for (const auto& t : tasks) total += limit ? std::min(limit, t->size()) : t->size();
  fmt::print(stderr, "model: {} | path: {} ({} positions) | {} task(s), {} items | ctx {}\n",
             m->path(), path_label, path.size(), tasks.size(), total, lm.n_ctx());

  std::ofstream samples;
  if (!o.log_samples.empty()) {
    samples.open(o.log_samples, std::ios::binary);
    if (!samples) throw Error(fmt::format("--log-samples {}: cannot write file", o.log_samples));
  }
  const Stopwatch clock;
  const double start_unix =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  Progress progress(total);
  std::vector<eval::TaskResult> results;
  size_t before = 0;
  for (const auto& t : tasks) {
    eval::EvalOptions eo;
    eo.limit = limit;
    eo.batch_items = static_cast<size_t>(o.batch_items);
    const std::string label = t->info().name;
    eo.progress = [&](size_t done) { progress.update(before + done, label); };
    results.push_back(eval::evaluate(*t, scored, eo));
    before += results.back().items.size();
    if (samples.is_open()) {
      const auto& items = results.back().items;
      for (size_t k = 0; k < items.size(); ++k)
        for (const auto& line : eval::sample_lines(
                 results.back(), items[k], k,
                 routed ? "auto:" + routed->chosen(items[k].prompt) : path.canonical()))
          samples << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
      samples.flush();
    }
  }
  progress.finish();
  const double seconds = clock.seconds();
  if (lm.requests_truncated() > 0)
    fmt::print(stderr, "note: {} request(s) were cut from the left to fit --ctx {}\n",
               lm.requests_truncated(), lm.n_ctx());
  fmt::print(stderr, "done in {}; {} tokens computed\n", Progress::format_duration(seconds),
             lm.tokens_computed());
  if (routed)
    for (const auto& [key, n] : routed->counts())
      fmt::print(stderr, "route: {} request(s) along {}\n", n, key);

  fmt::print("{}", eval::summary_table(results));
  if (!o.output.empty()) {
    // lm-eval's "config" fields first, then reprise's own.
    const nlohmann::json limit_json = o.limit > 0 ? nlohmann::json(o.limit) : nlohmann::json();
    eval::RunInfo run;
    run.config = {{"model", "reprise"},
                  {"model_args", fmt::format("model={},path={}", m->path(), path_label)},
                  {"batch_size", o.batch_items},
                  {"batch_sizes", nlohmann::json::array()},
                  {"device", "cpu"},
                  {"use_cache", nullptr},
                  {"limit", limit_json},
                  {"bootstrap_iters", 0},
                  {"gen_kwargs", nullptr},
                  {"random_seed", o.seed},
                  {"model_path", m->path()},
                  {"path", path_label},
                  {"path_layers", routed ? nlohmann::json() : nlohmann::json(path.layers)},
                  {"tasks", names},
                  {"seed", o.seed},
                  {"n_ctx", lm.n_ctx()},
                  {"prompt_format", lm.prompt_format()},
                  {"chat_system", lopts.format.chat_system},
                  {"reprise_version", version()},
                  {"date_iso", iso_time_now()}};
    run.model_name = m->name();
    run.date = start_unix;
    run.seconds = seconds;
    run.chat_template = lopts.format.chat_family;
    run.groups = eval::lm_eval_groups(o.tasks);
    write_file_atomically(
        o.output, eval::results_json(results, run)
                          .dump(2, ' ', false, nlohmann::json::error_handler_t::replace) +
                      "\n");
  }
  return 0;
}

void add_eval(CLI::App& app, Runner& run) {
  auto o = std::make_shared<EvalOptions>();
  auto* sub = app.add_subcommand("eval", "score a model along a layer path on evaluation tasks");
  sub->add_option("-m,--model", o->model.model, "GGUF file or Hugging Face safetensors directory");
  sub->add_option("--path", o->model.path, kLayerPathHelp);
  sub->add_option("-t,--threads", o->model.threads, "threads (default: all cores)")
      ->check(CLI::Range(0, 1024));
  sub->add_option("--ctx", o->model.ctx, "context size in tokens (default: min(training, 4096))")
      ->check(CLI::Range(0, 1 << 20));
  sub->add_option("--kv-type", o->model.kv_type,
                  "KV cache element type: f32 or f16 (default: f32)");
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

const CommandRegistration kRegistration(60, add_eval);

}  // namespace
}  // namespace reprise::cli
