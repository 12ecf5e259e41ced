// reprise.evaluate and reprise.scan: `reprise eval -o` and `reprise scan` from Python, through the
// same eval and scan code.
#include <pybind11/stl.h>

#include <fmt/format.h>

#include <chrono>

#include "bindings.h"
#include "eval/data_dir.h"
#include "eval/evaluator.h"
#include "eval/registry.h"
#include "eval/session_lm.h"
#include "scan/plan.h"
#include "scan/runner.h"
#include "util/error.h"

namespace py = pybind11;

namespace reprise::pyapi {
namespace {

// Tasks as Python passes them: "a,b" as `--task` takes it, or a list of names.
using TaskSpec = std::variant<std::string, std::vector<std::string>>;

std::string task_spec_text(const TaskSpec& tasks) {
  if (const auto* s = std::get_if<std::string>(&tasks)) return *s;
  std::string joined;
  for (const auto& name : std::get<std::vector<std::string>>(tasks))
    joined += (joined.empty() ? "" : ",") + name;
  return joined;
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The results file `reprise eval -o` writes, as the dict json.loads gives of it.
py::object evaluate(const PyModel& pm, const TaskSpec& task_list,
                    const std::optional<std::string>& path, std::optional<int64_t> limit,
                    uint64_t seed, int batch_items, const std::optional<std::string>& data_dir) {
  if (limit && *limit < 1)
    throw Error(fmt::format("limit must be >= 1 (None for every item), got {}", *limit));
  if (batch_items < 1) throw Error("batch_items must be at least 1");
  const std::string task_spec = task_spec_text(task_list);
  const auto names = eval::resolve_task_names(task_spec);
  eval::TaskOptions topts;
  topts.seed = seed;
  if (data_dir) topts.data_dir = eval::find_data_dir(*data_dir);
  std::vector<std::unique_ptr<eval::Task>> tasks;
  for (const auto& n : names) tasks.push_back(eval::make_task(n, topts));
  LayerPath lp = pm.layer_path(path);

  std::string text;
  {
    py::gil_scoped_release release;
    eval::SessionLMOptions lopts;
    lopts.session = pm.session_options();
    eval::SessionLM lm(*pm.model, lp, lopts);
    const double start = unix_now();
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<eval::TaskResult> results;
    eval::EvalOptions eo;
    eo.limit = limit ? static_cast<size_t>(*limit) : 0;
    eo.batch_items = static_cast<size_t>(batch_items);
    for (const auto& t : tasks) results.push_back(eval::evaluate(*t, lm, eo));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    eval::RunSettings rs;
    rs.model_path = pm.model->path();
    rs.model_name = pm.model->name();
    rs.path_label = lp.canonical();
    rs.path_layers = lp.layers;
    rs.task_spec = task_spec;
    rs.tasks = names;
    rs.limit = limit.value_or(-1);
    rs.seed = seed;
    rs.batch_items = batch_items;
    rs.n_ctx = lm.n_ctx();
    rs.prompt_format = lm.prompt_format();
    text = eval::results_json(results, eval::run_info(rs, start, seconds))
               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return py::module_::import("json").attr("loads")(text);
}

py::dict scan(py::object model, const TaskSpec& tasks, const std::string& store,
              std::optional<int64_t> limit, const std::vector<std::string>& modes,
              const std::string& strategy, int block_min, int block_max, int controls, int validate,
              uint64_t seed, std::optional<int> threads, bool quiet) {
  scan::ScanOptions o;
  if (py::isinstance<PyModel>(model)) {
    const auto& pm = model.cast<const PyModel&>();
    o.model = pm.model->path();
    o.session = pm.session_options();
  } else {
    o.model = model.cast<std::string>();
  }
  if (threads) o.session.n_threads = *threads;
  if (o.session.n_ctx == 0) o.session.n_ctx = 2048;  // as `reprise scan`
  if (limit && *limit < 1)
    throw Error(fmt::format("limit must be >= 1 (None for every item), got {}", *limit));
  o.tasks = task_spec_text(tasks);
  o.limit = limit ? static_cast<size_t>(*limit) : 0;
  o.plan.modes.clear();
  for (const auto& mode : modes) o.plan.modes.push_back(scan::parse_mode(mode));
  o.strategy = strategy;
  o.plan.block_min = block_min;
  o.plan.block_max = block_max;
  o.controls = controls;
  o.validate = validate;
  o.seed = seed;
  o.store = store;
  o.quiet = quiet;
  scan::ScanTotals t;
  {
    py::gil_scoped_release release;
    t = scan::run_scan(o);
  }
  py::dict d;
  d["configs_run"] = t.configs_run;
  d["configs_skipped"] = t.configs_skipped;
  d["item_evals"] = t.item_evals;
  d["layer_evals"] = t.layer_evals;
  d["layer_evals_full"] = t.layer_evals_full;
  d["seconds"] = t.seconds;
  return d;
}

}  // namespace

void bind_eval(py::module_& m) {
  m.def("evaluate", &evaluate, py::arg("model"), py::arg("tasks"), py::arg("path") = py::none(),
        py::arg("limit") = py::none(), py::arg("seed") = 1234, py::arg("batch_items") = 16,
        py::arg("data_dir") = py::none(),
        "Score the model along a layer path on tasks (a list of names, or comma-separated as "
        "`reprise eval --task`); returns the dict `reprise eval -o` writes (lm-eval's results "
        "shape plus "
        "every item's scores under \"samples\").");
  m.def("scan", &scan, py::arg("model"), py::arg("tasks"), py::arg("store"),
        py::arg("limit") = py::none(), py::arg("modes") = std::vector<std::string>{"repeat"},
        py::arg("strategy") = "dense", py::arg("block_min") = 1, py::arg("block_max") = 0,
        py::arg("controls") = 5, py::arg("validate") = 0, py::arg("seed") = 1234,
        py::arg("threads") = py::none(), py::arg("quiet") = true,
        "Run `reprise scan` (a Model or a model path) into a store file, created or resumed; "
        "returns this run's totals. Read the results with reprise.Store(store).");
}

}  // namespace reprise::pyapi
