#include "route/train.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "eval/registry.h"
#include "eval/request_tokens.h"
#include "route/prefix_features.h"
#include "scan/analysis.h"
#include "scan/plan.h"
#include "scan/runner.h"
#include "util/error.h"

namespace reprise::route {
namespace {

using ItemKey = std::pair<std::string, std::string>;  // (task, item)

// `d` with only the config columns `keep` (in that order); items and features unchanged.
RouterData only_configs(const RouterData& d, const std::vector<size_t>& keep) {
  RouterData out;
  for (size_t c : keep) {
    out.config_keys.push_back(d.config_keys[c]);
    out.config_paths.push_back(d.config_paths[c]);
    out.departs.push_back(d.departs[c]);
  }
  out.item_task = d.item_task;
  out.item_id = d.item_id;
  for (const auto& row : d.score) {
    out.score.emplace_back();
    for (size_t c : keep) out.score.back().push_back(row[c]);
  }
  out.features = d.features;
  return out;
}

}  // namespace

RouterData scores_from_store(const scan::Store& store, int n_layer, const std::string& phase) {
  const auto metrics = scan::primary_metrics(store);
  std::map<std::string, const scan::PrimaryMetric*> metric_of;
  for (const auto& m : metrics) metric_of[m.task] = &m;
  std::vector<scan::ConfigRecord> configs = store.configs(phase);
  std::stable_partition(configs.begin(), configs.end(),
                        [](const scan::ConfigRecord& c) { return c.key == "baseline"; });
  if (configs.empty() || configs[0].key != "baseline")
    throw Error(fmt::format("{}: the {} phase has no baseline scores{}", store.path(), phase,
                            phase == "validate" ? " (run the scan with --validate N)" : ""));
  const LayerPath plain = LayerPath::identity(n_layer);
  RouterData d;
  std::map<ItemKey, std::vector<double>> by_item;
  std::set<std::string> seen_paths;
  for (const auto& c : configs) {
    if (!seen_paths.insert(c.path).second) continue;  // one path, one candidate
    const size_t col = d.config_keys.size();
    d.config_keys.push_back(c.key);
    d.config_paths.push_back(c.path);
    const LayerPath p = parse_layer_path(c.path, n_layer);
    int b = 0;
    while (b < p.size() && b < plain.size() && p.layers[b] == plain.layers[b]) ++b;
    d.departs.push_back(b);
    for (const scan::ItemScore& s : store.scores(c.key, phase)) {
      auto m = metric_of.find(s.task);
      if (m == metric_of.end() || s.metric != m->second->metric) continue;
      auto& row = by_item[{s.task, s.item}];
      row.resize(col + 1, std::nan(""));
      row[col] = m->second->higher_is_better ? s.value : -s.value;
    }
  }
  const size_t n_configs = d.config_keys.size();
  for (auto& [key, row] : by_item) {
    row.resize(n_configs, std::nan(""));
    if (std::any_of(row.begin(), row.end(), [](double v) { return std::isnan(v); })) continue;
    d.item_task.push_back(key.first);
    d.item_id.push_back(key.second);
    d.score.push_back(row);
  }
  return d;
}

namespace {

// The router's input for stored items: the tasks rebuilt as the scan built them (its seed), each
// stored item found in them and its first request's prompt run to the feature layer.
class StoredItemFeatures {
 public:
  StoredItemFeatures(const scan::Store& store, const Model& model, int feature_layer,
                     const SessionOptions& session)
      : store_(store), model_(model), rt_(*model.tokenizer()), pf_(model, feature_layer, session) {
    eval::TaskOptions to;
    to.seed = scan::scan_seed(store);
    for (const auto& def : nlohmann::json::parse(store.meta("tasks").value_or("[]"))) {
      if (!def.contains("task")) continue;
      const std::string name = def.at("task");
      auto t = eval::make_task(name, to);
      for (size_t i = 0; i < t->size(); ++i) index_[{name, t->item_id(i)}] = i;
      tasks_[name] = std::move(t);
    }
  }

  // Fills d.features, one row per item of `d`. Throws Error naming the store for an item the
  // rebuilt tasks do not have.
  void fill(RouterData& d) {
    d.features = Matrix(d.score.size(), static_cast<size_t>(model_.hparams().n_embd));
    for (size_t i = 0; i < d.score.size(); ++i) {
      auto it = index_.find({d.item_task[i], d.item_id[i]});
      if (it == index_.end())
        throw Error(fmt::format("{}: item '{}' of task '{}' is not in the task", store_.path(),
                                d.item_id[i], d.item_task[i]));
      const auto reqs = tasks_.at(d.item_task[i])->requests(it->second);
      const auto x = pf_.features(request_prompt(reqs.at(0), rt_));
      std::copy(x.begin(), x.end(), d.features.row(i));
    }
  }

 private:
  const scan::Store& store_;
  const Model& model_;
  std::map<std::string, std::unique_ptr<eval::Task>> tasks_;
  std::map<ItemKey, size_t> index_;
  eval::RequestTokenizer rt_;
  PrefixFeatures pf_;
};

// The trained router on the validate phase's items (`held`, the configs of `data`): its table
// against the plain path and each task's best single path (chosen on the search items), and the
// verdict extended with it.
void judge_held_out(RouterData held, const RouterData& data, StoredItemFeatures& features,
                    uint64_t seed, TrainResult& r) {
  std::vector<size_t> cols;
  std::vector<std::string> keys;
  for (size_t c : r.candidates) {
    keys.push_back(data.config_keys[c]);
    cols.push_back(static_cast<size_t>(
        std::find(held.config_keys.begin(), held.config_keys.end(), keys.back()) -
        held.config_keys.begin()));
  }
  held = only_configs(held, cols);
  features.fill(held);
  std::vector<size_t> routed;
  for (size_t i = 0; i < held.score.size(); ++i)
    routed.push_back(r.model.predict(held.features.row(i)));
  std::map<std::string, size_t> best;  // chosen on the search items, as the table there shows
  for (const auto& t : r.tasks)
    best[t.task] =
        static_cast<size_t>(std::find(keys.begin(), keys.end(), t.best_single_key) - keys.begin());
  r.held_out = compare_paths(held.item_task, held.score, routed, keys, best, seed);
  bool beats = !r.held_out.empty();
  for (const auto& t : r.held_out) beats = beats && t.vs_best_lo > 0;
  r.verdict += beats ? "; on held-out items it beats the best single path (95% CI above 0)"
                     : "; on held-out items it does not beat the best single path";
}

// The router file's report: one row per task and item set (search out-of-fold, held-out).
nlohmann::json report_rows(const TrainResult& r) {
  nlohmann::json rows = nlohmann::json::array();
  auto add_rows = [&](const std::vector<TaskComparison>& table, const char* items) {
    for (const auto& t : table)
      rows.push_back({{"task", t.task},
                      {"items", items},
                      {"n", t.n},
                      {"plain", t.plain},
                      {"best_single", t.best_single},
                      {"best_single_key", t.best_single_key},
                      {"router", t.router},
                      {"oracle", t.oracle},
                      {"router_minus_best_ci", {t.vs_best_lo, t.vs_best_hi}},
                      {"router_minus_plain_ci", {t.vs_plain_lo, t.vs_plain_hi}},
                      {"p_router_vs_best", t.p_vs_best},
                      {"p_router_vs_plain", t.p_vs_plain}});
  };
  add_rows(r.tasks, "search, out-of-fold");
  add_rows(r.held_out, "held-out");
  return rows;
}

}  // namespace

TrainReport train_router(const scan::Store& store, const Model& model, const TrainOptions& opts,
                         const SessionOptions& session) {
  const std::string sha = scan::model_fingerprint(model);
  if (auto stored = store.meta("model_sha256"); stored && *stored != sha)
    throw Error(fmt::format("{}: the scan was made with another model (checksum {}, -m has {})",
                            store.path(), stored->substr(0, 12), sha.substr(0, 12)));
  if (!model.tokenizer()) throw Error(fmt::format("{}: the model has no vocabulary", model.path()));
  const int n_layer = model.hparams().n_layer;
  RouterData data = scores_from_store(store, n_layer);
  RouterData held;
  TrainOptions o = opts;
  if (o.seed == 0) o.seed = scan::scan_seed(store);
  if (o.held_out) {
    // Only configs the validate phase scored can be judged on its items.
    held = scores_from_store(store, n_layer, "validate");
    std::vector<size_t> keep;
    for (size_t c = 0; c < data.config_keys.size(); ++c)
      if (std::find(held.config_keys.begin(), held.config_keys.end(), data.config_keys[c]) !=
          held.config_keys.end())
        keep.push_back(c);
    data = only_configs(data, keep);
  }
  TrainResult r = choose_candidates(data, o);
  StoredItemFeatures features(store, model, r.feature_layer, session);
  features.fill(data);
  fit_router(data, o, r);
  if (o.held_out) judge_held_out(std::move(held), data, features, o.seed, r);

  TrainReport out;
  RouterFile& f = out.file;
  f.model_sha256 = sha;
  f.feature_layer = r.feature_layer;
  for (size_t c : r.candidates) {
    f.candidate_keys.push_back(data.config_keys[c]);
    f.candidate_paths.push_back(data.config_paths[c]);
  }
  f.model = r.model;
  f.cv_accuracy = r.cv_accuracy;
  f.chance = r.chance;
  f.report = {{"verdict", r.verdict}, {"rows", report_rows(r)}};
  out.text = describe(data, r);
  return out;
}

}  // namespace reprise::route
