#include "eval/compare.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "eval/io.h"
#include "util/error.h"

namespace reprise::eval {
namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

MetricKind parse_kind(const ojson& v, const std::string& at) {
  if (v == "binary") return MetricKind::Binary;
  if (v == "continuous") return MetricKind::Continuous;
  throw Error(fmt::format("{}: unknown metric kind {}", at, v.dump()));
}

double metric_value(const ojson& v, const std::string& at) {
  if (v.is_null()) return kNaN;
  if (!v.is_number()) throw Error(fmt::format("{}: metric value {} is not a number", at, v.dump()));
  return v.get<double>();
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s.empty() ? "none" : s;
}

// Adds one item (from either file format) to its task, checking it agrees with earlier items.
void add_item(RunItems& run, const std::string& task, const ojson& item,
              const std::vector<MetricInfo>& metrics, const std::string& at) {
  if (!item.is_object()) throw Error(fmt::format("{}: an item must be a JSON object", at));
  auto get_str = [&](const char* key) {
    if (!item.contains(key) || !item[key].is_string())
      throw Error(fmt::format("{}: needs \"{}\" (a string)", at, key));
    return item[key].get<std::string>();
  };
  auto [it, fresh] = run.tasks.try_emplace(task);
  RunTask& t = it->second;
  if (fresh) {
    run.task_order.push_back(task);
    t.metrics = metrics;
  } else {
    bool same = t.metrics.size() == metrics.size();
    for (size_t k = 0; same && k < metrics.size(); ++k)
      same = t.metrics[k].id() == metrics[k].id() && t.metrics[k].kind == metrics[k].kind;
    if (!same)
      throw Error(fmt::format("{}: the metrics differ from earlier items of {}", at, task));
  }
  if (!item.contains("metrics") || !item["metrics"].is_object())
    throw Error(fmt::format("{}: needs \"metrics\" (an object)", at));
  std::vector<double> values;
  for (const auto& m : metrics) {
    if (!item["metrics"].contains(m.name))
      throw Error(fmt::format("{}: metric '{}' is missing", at, m.name));
    values.push_back(metric_value(item["metrics"][m.name], at));
  }
  t.ids.push_back(get_str("id"));
  t.hashes.push_back(get_str("doc_hash"));
  t.values.push_back(std::move(values));
}

std::vector<MetricInfo> metrics_from(const ojson& kinds, const ojson& better,
                                     const std::string& at) {
  if (!kinds.is_object() || kinds.empty())
    throw Error(fmt::format("{}: needs \"metric_kinds\" (an object)", at));
  std::vector<MetricInfo> out;
  for (const auto& [name, kind] : kinds.items()) {
    MetricInfo m{name, parse_kind(kind, at), true};
    if (better.is_object() && better.contains(name) && better[name].is_boolean())
      m.higher_is_better = better[name].get<bool>();
    out.push_back(m);
  }
  return out;
}

void load_results(RunItems& run, const ojson& doc) {
  const std::string& file = run.source;
  const ojson& samples = doc["samples"];
  if (!samples.is_object()) throw Error(fmt::format("{}: \"samples\" must be an object", file));
  for (const auto& [task, items] : samples.items()) {
    const std::string at = fmt::format("{}: task {}", file, task);
    const ojson kinds =
        doc.contains("metric_kinds") ? doc["metric_kinds"].value(task, ojson()) : ojson();
    const ojson better =
        doc.contains("higher_is_better") ? doc["higher_is_better"].value(task, ojson()) : ojson();
    const auto metrics = metrics_from(kinds, better, at);
    if (!items.is_array()) throw Error(fmt::format("{}: samples must be a list", at));
    for (size_t k = 0; k < items.size(); ++k)
      add_item(run, task, items[k], metrics, fmt::format("{} item {}", at, k));
    if (items.empty()) {
      run.tasks[task].metrics = metrics;
      run.task_order.push_back(task);
    }
  }
  const ojson config = doc.value("config", ojson());
  if (config.is_object() && config.contains("path") && config["path"].is_string())
    run.label = config["path"].get<std::string>();
  if (config.is_object() && config.contains("prompt_format") && config["prompt_format"].is_string())
    run.prompt_format = config["prompt_format"].get<std::string>();
  else if (config.is_object() && config.value("chat_template", ojson()).is_string() &&
           !config["chat_template"].get<std::string>().empty())
    run.prompt_format = "chat:" + config["chat_template"].get<std::string>();
}

// A samples log has one line per item and filter (lm-eval's layout): the lines of an item are
// merged into one item whose metrics are keyed by MetricInfo::id. Lines written before that
// layout carry a "metrics" object of all the item's values instead.
void load_samples(RunItems& run, const fs::path& file) {
  struct Pending {
    std::string task, at;
    ojson item, kinds, better;
  };
  std::vector<Pending> items;
  std::map<std::pair<std::string, std::string>, size_t> index;
  std::set<std::string> formats;
  std::map<std::string, int> paths;  // items per "path"
  for_each_jsonl_ordered(file, [&](const ojson& j, int n) {
    const std::string at = fmt::format("{}:{}", file.string(), n);
    if (!j.is_object() || !j.contains("task") || !j["task"].is_string())
      throw Error(fmt::format("{}: needs \"task\" (a string)", at));
    if (!j.contains("id") || !j["id"].is_string())
      throw Error(fmt::format("{}: needs \"id\" (a string)", at));
    const std::string task = j["task"].get<std::string>(), id = j["id"].get<std::string>();
    ojson values = ojson::object();
    if (j.contains("metrics") && j["metrics"].is_object()) {
      values = j["metrics"];
    } else if (j.contains("metrics") && j["metrics"].is_array()) {
      const std::string filter = j.value("filter", std::string("none"));
      for (const auto& name : j["metrics"]) {
        if (!name.is_string() || !j.contains(name.get<std::string>()))
          throw Error(fmt::format("{}: metric {} has no value", at, name.dump()));
        const std::string key =
            filter == "none" ? name.get<std::string>() : name.get<std::string>() + "," + filter;
        values[key] = j[name.get<std::string>()];
      }
    } else {
      throw Error(fmt::format("{}: needs \"metrics\"", at));
    }
    auto [it, fresh] = index.try_emplace({task, id}, items.size());
    if (fresh) {
      ojson item = {{"id", id}, {"doc_hash", j.value("doc_hash", ojson())}, {"metrics", values}};
      items.push_back({task, at, item, j.value("metric_kinds", ojson::object()),
                       j.value("higher_is_better", ojson::object())});
    } else {
      Pending& p = items[it->second];
      if (p.item["doc_hash"] != j.value("doc_hash", ojson()))
        throw Error(fmt::format("{}: item '{}' has another doc_hash than on line {}", at, id,
                                p.at.substr(p.at.rfind(':') + 1)));
      const ojson kinds = j.value("metric_kinds", ojson::object());
      const ojson better = j.value("higher_is_better", ojson::object());
      for (const auto& [k, v] : values.items()) p.item["metrics"][k] = v;
      for (const auto& [k, v] : kinds.items()) p.kinds[k] = v;
      for (const auto& [k, v] : better.items()) p.better[k] = v;
    }
    if (fresh && j.contains("path") && j["path"].is_string()) ++paths[j["path"].get<std::string>()];
    formats.insert(j.value("prompt_format", std::string("plain")));
  });
  if (formats.size() > 1)
    throw Error(fmt::format("{}: lines of different prompt formats ({})", file.string(),
                            join(std::vector<std::string>(formats.begin(), formats.end()))));
  if (!formats.empty()) run.prompt_format = *formats.begin();
  // A routed run (eval --path auto:FILE) logs each item's chosen path: the label counts them.
  if (paths.size() == 1) run.label = paths.begin()->first;
  if (paths.size() > 1) {
    std::vector<std::string> parts;
    for (const auto& [path, n] : paths) parts.push_back(fmt::format("{} x{}", path, n));
    run.label = join(parts);
  }
  for (const auto& p : items)
    add_item(run, p.task, p.item, metrics_from(p.kinds, p.better, p.at), p.at);
}

std::string signed_fixed(double v) {
  return fmt::format("{:+.4f}", v);
}

std::string p_text(double p) {
  if (std::isnan(p)) return "n/a";
  if (p < 1e-4) return fmt::format("{:.1e}", p);
  return fmt::format("{:.4f}", p);
}

}  // namespace

RunItems load_run(const fs::path& file) {
  RunItems run;
  run.source = file.string();
  run.label = file.filename().string();
  const std::string text = read_text_file(file);
  ojson doc;
  bool whole = true;
  try {
    doc = ojson::parse(text);
  } catch (const ojson::exception&) {
    whole = false;  // several lines: a samples log
  }
  if (whole && doc.is_object() && doc.contains("samples")) {
    load_results(run, doc);
  } else if (whole && doc.is_object() && doc.contains("results")) {
    throw Error(
        fmt::format("{}: the results have no per-item \"samples\"; write them with "
                    "eval -o, or pass the --log-samples file",
                    file.string()));
  } else {
    load_samples(run, file);
  }
  if (run.tasks.empty()) throw Error(fmt::format("{}: no items", file.string()));
  for (const auto& [task, t] : run.tasks) {
    std::set<std::string> seen;
    for (const auto& id : t.ids)
      if (!seen.insert(id).second)
        throw Error(fmt::format("{}: task {} has item '{}' twice", file.string(), task, id));
  }
  return run;
}

namespace {

// Both runs used one prompt format and the same tasks, or the comparison means nothing.
void check_comparable(const RunItems& a, const RunItems& b) {
  if (a.prompt_format != b.prompt_format)
    throw Error(fmt::format(
        "cannot compare runs of different prompt formats: A ({}) is {}, B ({}) is {}; run both "
        "with the same --chat setting",
        a.source, a.prompt_format, b.source, b.prompt_format));
  std::vector<std::string> ta(a.task_order), tb(b.task_order);
  std::sort(ta.begin(), ta.end());
  std::sort(tb.begin(), tb.end());
  if (ta != tb)
    throw Error(
        fmt::format("cannot compare runs of different tasks: A ({}) has {}; B ({}) has "
                    "{}",
                    a.source, join(ta), b.source, join(tb)));
}

// Where each of x's items stands in y, after checking that the two hold the same items (by id
// and content hash) and the same metrics.
std::vector<size_t> pair_items(const std::string& task, const RunTask& x, const RunTask& y) {
  std::map<std::string, size_t> where_b;
  for (size_t i = 0; i < y.ids.size(); ++i) where_b[y.ids[i]] = i;
  std::vector<size_t> pairs;
  for (size_t i = 0; i < x.ids.size(); ++i) {
    auto it = where_b.find(x.ids[i]);
    if (it == where_b.end())
      throw Error(
          fmt::format("cannot compare task {}: item '{}' is in A ({} items) but not in "
                      "B ({} items)",
                      task, x.ids[i], x.ids.size(), y.ids.size()));
    if (x.hashes[i] != y.hashes[it->second])
      throw Error(
          fmt::format("cannot compare task {}: item '{}' differs between the runs "
                      "(another prompt or gold answer)",
                      task, x.ids[i]));
    pairs.push_back(it->second);
  }
  if (x.ids.size() != y.ids.size())
    throw Error(fmt::format("cannot compare task {}: B has {} items, A has {}", task, y.ids.size(),
                            x.ids.size()));
  bool same_metrics = x.metrics.size() == y.metrics.size();
  for (size_t m = 0; same_metrics && m < x.metrics.size(); ++m)
    same_metrics = x.metrics[m].id() == y.metrics[m].id() && x.metrics[m].kind == y.metrics[m].kind;
  if (!same_metrics) throw Error(fmt::format("cannot compare task {}: the metrics differ", task));
  return pairs;
}

// Metric m of one task: means, the paired bootstrap CI of B - A, and McNemar's exact test for a
// 0/1 metric or the paired t test otherwise, over the items both runs define.
MetricComparison compare_metric(const std::string& task, const RunTask& x, const RunTask& y,
                                const std::vector<size_t>& pairs, size_t m,
                                const CompareOptions& opts) {
  std::vector<double> va, vb;
  for (size_t i = 0; i < x.ids.size(); ++i) {
    const double u = x.values[i][m], v = y.values[pairs[i]][m];
    if (std::isnan(u) || std::isnan(v)) continue;  // undefined on this item in either run
    va.push_back(u);
    vb.push_back(v);
  }
  MetricComparison row;
  row.task = task;
  row.metric = x.metrics[m];
  row.n = va.size();
  row.mean_a = mean(va);
  row.mean_b = mean(vb);
  row.diff = row.mean_b - row.mean_a;
  row.ci = paired_bootstrap_ci(va, vb, opts.bootstrap);
  if (row.metric.kind == MetricKind::Binary) {
    const McNemarResult r = mcnemar_exact(va, vb);
    row.test = "mcnemar";
    row.a_only = r.a_only;
    row.b_only = r.b_only;
    row.statistic = static_cast<double>(r.b_only);
    row.p = r.p_value;
  } else {
    const TTestResult r = paired_t_test(va, vb);
    row.test = "paired_t";
    row.statistic = r.t;
    row.p = r.p_value;
  }
  return row;
}

// Holm across tasks, separately for each metric name; NaN p values stay NaN.
void holm_per_metric(std::vector<MetricComparison>& rows) {
  std::map<std::string, std::vector<size_t>> by_metric;
  for (size_t r = 0; r < rows.size(); ++r)
    if (!std::isnan(rows[r].p)) by_metric[rows[r].metric.name].push_back(r);
  for (const auto& [name, which] : by_metric) {
    std::vector<double> p;
    for (size_t r : which) p.push_back(rows[r].p);
    const auto adj = holm_adjust(p);
    for (size_t k = 0; k < which.size(); ++k) rows[which[k]].p_holm = adj[k];
  }
  for (auto& row : rows)
    if (std::isnan(row.p)) row.p_holm = kNaN;
}

}  // namespace

Comparison compare_runs(const RunItems& a, const RunItems& b, const CompareOptions& opts) {
  check_comparable(a, b);
  Comparison out;
  for (const auto& task : a.task_order) {
    const RunTask& x = a.tasks.at(task);
    const RunTask& y = b.tasks.at(task);
    const std::vector<size_t> pairs = pair_items(task, x, y);
    for (size_t m = 0; m < x.metrics.size(); ++m)
      out.rows.push_back(compare_metric(task, x, y, pairs, m, opts));
  }
  holm_per_metric(out.rows);
  std::set<std::string> done;
  for (const auto& row : out.rows)
    if (done.insert(row.task).second)
      out.verdicts.push_back(verdict(row, opts.alpha, opts.bootstrap.level));
  return out;
}

std::string verdict(const MetricComparison& row, double alpha, double level) {
  const std::string test = row.test == "mcnemar" ? "McNemar" : "paired t";
  if (row.n == 0)
    return fmt::format("{}: no item has a {} score in both runs", row.task, row.metric.name);
  const std::string figures =
      fmt::format("{} ({:.0f}% CI {} to {}; {} p = {}, Holm p = {}; n = {})",
                  signed_fixed(row.diff), level * 100, signed_fixed(row.ci.lo),
                  signed_fixed(row.ci.hi), test, p_text(row.p), p_text(row.p_holm), row.n);
  if (row.p_holm < alpha) {
    const bool b_better = (row.diff > 0) == row.metric.higher_is_better;
    return fmt::format("{}: {} is better than {} on {}: {}", row.task, b_better ? "B" : "A",
                       b_better ? "A" : "B", row.metric.name, figures);
  }
  if (row.diff == 0 && row.ci.lo == 0 && row.ci.hi == 0)
    return fmt::format("{}: no difference on {}: {}", row.task, row.metric.name, figures);
  return fmt::format("{}: no significant difference on {}: {}", row.task, row.metric.name, figures);
}

std::string comparison_table(const Comparison& c) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"task", "metric", "n", "A", "B", "B-A", "95% CI", "test", "p", "p_holm"});
  for (const auto& r : c.rows)
    rows.push_back({r.task, r.metric.name, std::to_string(r.n), fmt::format("{:.4f}", r.mean_a),
                    fmt::format("{:.4f}", r.mean_b), signed_fixed(r.diff),
                    fmt::format("[{}, {}]", signed_fixed(r.ci.lo), signed_fixed(r.ci.hi)),
                    r.test == "mcnemar"       ? fmt::format("mcnemar {}/{}", r.a_only, r.b_only)
                    : std::isnan(r.statistic) ? std::string("t n/a")
                                              : fmt::format("t {:.3f}", r.statistic),
                    p_text(r.p), p_text(r.p_holm)});
  std::vector<size_t> w(rows[0].size(), 0);
  for (const auto& row : rows)
    for (size_t k = 0; k < row.size(); ++k) w[k] = std::max(w[k], row[k].size());
  std::string out;
  for (size_t r = 0; r < rows.size(); ++r) {
    out += "|";
    for (size_t k = 0; k < rows[r].size(); ++k)
      out += k < 2 ? fmt::format(" {:<{}} |", rows[r][k], w[k])
                   : fmt::format(" {:>{}} |", rows[r][k], w[k]);
    out += "\n";
    if (r == 0) {
      out += "|";
      for (size_t k = 0; k < w.size(); ++k)
        out +=
            k < 2 ? fmt::format("{:-<{}}|", "", w[k] + 2) : fmt::format("{:-<{}}:|", "", w[k] + 1);
      out += "\n";
    }
  }
  return out;
}

ojson comparison_json(const Comparison& c, const RunItems& a, const RunItems& b,
                      const CompareOptions& opts) {
  auto num = [](double v) { return std::isfinite(v) ? ojson(v) : ojson(nullptr); };
  ojson rows = ojson::array();
  for (const auto& r : c.rows) {
    ojson row = {{"task", r.task},
                 {"metric", r.metric.name},
                 {"kind", metric_kind_name(r.metric.kind)},
                 {"higher_is_better", r.metric.higher_is_better},
                 {"n", r.n},
                 {"mean_a", num(r.mean_a)},
                 {"mean_b", num(r.mean_b)},
                 {"diff", num(r.diff)},
                 {"ci", {num(r.ci.lo), num(r.ci.hi)}},
                 {"test", r.test},
                 {"statistic", num(r.statistic)},
                 {"p", num(r.p)},
                 {"p_holm", num(r.p_holm)}};
    if (r.test == "mcnemar") {
      row["a_only"] = r.a_only;
      row["b_only"] = r.b_only;
    }
    rows.push_back(row);
  }
  return {{"a", {{"source", a.source}, {"label", a.label}}},
          {"b", {{"source", b.source}, {"label", b.label}}},
          {"bootstrap",
           {{"resamples", opts.bootstrap.resamples},
            {"level", opts.bootstrap.level},
            {"seed", opts.bootstrap.seed}}},
          {"alpha", opts.alpha},
          {"rows", rows},
          {"verdicts", c.verdicts}};
}

}  // namespace reprise::eval
