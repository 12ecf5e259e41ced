// reprise.Store: a scan store read as plain records (lists of dicts, one per row), the shape
// pandas.DataFrame(records) takes, so a notebook needs nothing of reprise's own to plot it.
#include <pybind11/stl.h>

#include <fmt/format.h>

#include <filesystem>

#include "bindings.h"
#include "scan/analysis.h"
#include "scan/plan.h"
#include "scan/store.h"
#include "util/error.h"

namespace py = pybind11;

namespace reprise::pyapi {
namespace {

// The block a config key names: mode, i, j (block i..j-1), k (runs of the block), alpha.
void add_config_fields(py::dict& d, const scan::Config& c) {
  d["mode"] = scan::mode_name(c.mode);
  d["i"] = c.i;
  d["j"] = c.j;
  d["k"] = c.k;
  d["alpha"] = c.alpha;
}

class PyStore {
 public:
  explicit PyStore(const std::string& path) {
    // scan::Store would create a missing file; a reader names it instead, as `reprise report`.
    if (!std::filesystem::exists(path)) throw Error(fmt::format("{}: no such scan store", path));
    store_ = std::make_unique<scan::Store>(path);
  }

  std::string path() const { return store_->path(); }
  std::map<std::string, std::string> meta() const { return store_->all_meta(); }

  py::list configs(const std::string& phase) const {
    py::list out;
    for (const auto& c : store_->configs(phase)) {
      py::dict d;
      d["config"] = c.key;
      d["path"] = c.path;
      d["phase"] = c.phase;
      add_config_fields(d, scan::Config::from_key(c.key));
      d["layer_evals"] = c.layer_evals;
      d["layer_evals_full"] = c.layer_evals_full;
      d["seconds"] = c.seconds;
      out.append(d);
    }
    return out;
  }

  // Every score, one record per (config, task, item, metric): the columns of `reprise report
  // -o scores.csv`. A missing score (an item the metric could not score) is NaN.
  py::list scores(const std::string& phase, const std::optional<std::string>& config) const {
    py::list out;
    for (const auto& c : store_->configs(phase)) {
      if (config && c.key != *config) continue;
      for (const auto& s : store_->scores(c.key, c.phase)) {
        py::dict d;
        d["phase"] = c.phase;
        d["config"] = c.key;
        d["path"] = c.path;
        d["task"] = s.task;
        d["item"] = s.item;
        d["metric"] = s.metric;
        d["value"] = s.value;
        out.append(d);
      }
    }
    return out;
  }

  // Each config against the phase's baseline, one record per (config, task): the numbers of
  // `reprise report` (docs/evaluation.md, "Scan statistics").
  py::list statistics(const std::string& phase) const {
    const scan::PhaseStats ps = analyze(phase);
    py::list out;
    for (const auto& cs : ps.configs)
      for (size_t t = 0; t < ps.tasks.size(); ++t) {
        const scan::TaskBaseline& b = ps.tasks[t];
        const scan::TaskDelta& td = cs.tasks[t];
        py::dict d;
        d["config"] = cs.config.key();
        d["path"] = cs.path;
        add_config_fields(d, cs.config);
        d["task"] = b.metric.task;
        d["metric"] = b.metric.metric;
        d["n"] = b.n;
        d["baseline"] = b.score;
        d["score"] = td.score;
        d["delta"] = td.delta;
        d["ci_lo"] = td.ci_lo;
        d["ci_hi"] = td.ci_hi;
        d["se"] = td.se;
        d["p_value"] = td.p_value;
        d["p_holm"] = td.p_holm;
        d["p_bh"] = td.p_bh;
        d["p_gain"] = td.p_gain;
        d["p_gain_holm"] = td.p_gain_holm;
        d["z"] = td.z;
        d["combined"] = cs.combined;
        d["pareto"] = cs.pareto;
        out.append(d);
      }
    return out;
  }

  // The phase's baseline per task: its score, the items compared and the minimum detectable
  // effect.
  py::list baselines(const std::string& phase) const {
    const scan::PhaseStats ps = analyze(phase);
    py::list out;
    for (const auto& b : ps.tasks) {
      py::dict d;
      d["task"] = b.metric.task;
      d["metric"] = b.metric.metric;
      d["binary"] = b.metric.binary;
      d["higher_is_better"] = b.metric.higher_is_better;
      d["n"] = b.n;
      d["clusters"] = b.clusters;
      d["missing"] = b.missing;
      d["score"] = b.score;
      d["se"] = b.se;
      d["mde"] = b.mde;
      out.append(d);
    }
    return out;
  }

 private:
  // The bootstrap behind the statistics takes a while: other Python threads run meanwhile.
  scan::PhaseStats analyze(const std::string& phase) const {
    py::gil_scoped_release release;
    return scan::analyze_phase(*store_, phase);
  }

  std::unique_ptr<scan::Store> store_;
};

}  // namespace

void bind_store(py::module_& m) {
  py::class_<PyStore>(m, "Store",
                      "A scan store (`reprise scan -o FILE`) read as plain records: lists of "
                      "dicts that pandas.DataFrame(...) takes as they are.")
      .def(py::init<const std::string&>(), py::arg("path"),
           "Open a store; raises reprise.Error naming the file when there is none.")
      .def_property_readonly("path", &PyStore::path)
      .def_property_readonly("meta", &PyStore::meta,
                             "What the scan recorded of itself: model, tasks, options (strings).")
      .def("configs", &PyStore::configs, py::arg("phase") = "",
           "One record per scored config: config key, path, phase, mode, i, j, k, alpha, layer "
           "evaluations, seconds. phase='' lists every phase.")
      .def("scores", &PyStore::scores, py::arg("phase") = "", py::arg("config") = py::none(),
           "One record per score: phase, config, path, task, item, metric, value (NaN when "
           "missing); the rows of `reprise report -o scores.csv`.")
      .def("statistics", &PyStore::statistics, py::arg("phase") = "search",
           "One record per (config, task) against the phase's baseline: delta (positive = "
           "better), 95% CI, p-values (raw, Holm, BH), z, as `reprise report` computes them.")
      .def("baselines", &PyStore::baselines, py::arg("phase") = "search",
           "One record per task: the baseline's metric, items, score and minimum detectable "
           "effect.");
}

}  // namespace reprise::pyapi
