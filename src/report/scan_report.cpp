#include "report/scan_report.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <optional>

#include "report/heatmap.h"
#include "scan/analysis.h"
#include "scan/store.h"
#include "util/error.h"
#include "util/output_file.h"

namespace reprise::report {
namespace {

using scan::ConfigStats;
using scan::Mode;

std::string task_label(const scan::PrimaryMetric& m) {
  return m.task + " (" + m.metric + ")";
}

std::string task_labels(const scan::PhaseStats& ps) {
  std::string s;
  for (const auto& t : ps.tasks) s += (s.empty() ? "" : ", ") + task_label(t.metric);
  return s;
}

// The HTML page's text width in CSS px: with its margins it fits a 1,280 px window, and the
// heatmaps wrap their panels to it.
constexpr double kPageWidth = 1180;

// What the colours and dots mean: the PNG's subtitle and the HTML's caption.
const char* kColourLegend =
    "colour: score of the config minus baseline, red better, blue worse, each panel on its own "
    "scale (its bar); dot: Holm p < 0.05";

// One row of panels per task (each task its own unit and colour scale).
Heatmap build_heatmap(const scan::Store& store, const scan::PhaseStats& ps,
                      const std::vector<size_t>& tasks) {
  Heatmap h;
  h.n_layer = std::stoi(store.meta("n_layer").value_or("0"));
  std::string n_items, base;
  for (size_t k : tasks) {
    n_items += (n_items.empty() ? "" : ", ") + std::to_string(ps.tasks[k].n);
    base += fmt::format("{}{} {:.4g}", base.empty() ? "" : ", ", ps.tasks[k].metric.task,
                        ps.tasks[k].score);
  }
  std::string labels;
  for (size_t k : tasks) labels += (labels.empty() ? "" : ", ") + task_label(ps.tasks[k].metric);
  h.title =
      fmt::format("{} - {} - n = {}", store.meta("model_name").value_or("model"), labels, n_items);
  h.subtitle = fmt::format("baseline {}; {}", base, kColourLegend);
  for (size_t r = 0; r < tasks.size(); ++r) {
    const size_t k = tasks[r];
    std::map<std::string, Panel> panels;
    std::vector<std::string> order;
    for (const ConfigStats& c : ps.configs) {
      std::string name;
      switch (c.config.mode) {
        case Mode::Repeat:
          name = "repeat: block i..j-1 runs twice";
          break;
        case Mode::Skip:
          name = "skip: block i..j-1 dropped";
          break;
        case Mode::Loop:
          name = fmt::format("loop: block runs {} times", c.config.k);
          break;
        default:
          continue;
      }
      if (c.config.alpha != 1.0f)  // one panel per residual weight, or cells would collide
        name += fmt::format(" (later passes x{})", format_alpha(c.config.alpha));
      if (tasks.size() > 1) name = ps.tasks[k].metric.task + ", " + name;
      if (!panels.count(name)) order.push_back(name);
      panels[name].title = name;
      panels[name].row = static_cast<int>(r);
      panels[name].unit = ps.tasks[k].metric.metric;
      const auto& d = c.tasks[k];
      panels[name].cells.push_back({c.config.i, c.config.j, d.delta, d.p_holm < scan::kAlpha});
    }
    for (const auto& n : order) h.panels.push_back(panels[n]);
  }
  return h;
}

std::vector<size_t> all_tasks(const scan::PhaseStats& ps) {
  std::vector<size_t> k(ps.tasks.size());
  for (size_t i = 0; i < k.size(); ++i) k[i] = i;
  return k;
}

std::string fmt_p(double p) {
  return p < 1e-4 ? fmt::format("{:.1e}", p) : fmt::format("{:.4f}", p);
}
std::string fmt_ci(double lo, double hi) {
  return fmt::format("[{:+.4f}, {:+.4f}]", lo, hi);
}
std::string yes_no(bool b) {
  return b ? "yes" : "no";
}

using Rows = std::vector<std::vector<std::string>>;

// What one task's tables need, built once for the text summary and the HTML page alike.
struct TaskTables {
  std::string heading;             // task, metric, baseline, n
  std::vector<std::string> notes;  // MDE, clustering, missing items, held-out set
  Rows top, controls, validation;
};

struct Tables {
  std::vector<TaskTables> tasks;
  Rows combined;                   // more than one task: the unit-free ranking
  std::vector<std::string> notes;  // about the whole scan (duplicate paths)
};

const std::vector<std::string> kTopHead = {"config", "path",   "delta",   "95% CI (unadj.)",
                                           "p",      "p Holm", "Holm 5%", "p BH"};
const std::vector<std::string> kControlHead = {"config", "skip control", "config - skip", "95% CI",
                                               "p",      "p Holm",       "verdict"};
const std::vector<std::string> kValidationHead = {"config", "search delta",     "held-out delta",
                                                  "95% CI", "p gain (1-sided)", "p gain Holm",
                                                  "verdict"};

std::vector<std::string> task_notes(const scan::PhaseStats& ps, size_t k) {
  const auto& t = ps.tasks[k];
  std::vector<std::string> notes;
  if (!std::isnan(t.mde))
    notes.push_back(fmt::format(
        "minimum detectable effect: {:.4f} {} (80% power, two-sided alpha {:.2g} / {} configs, "
        "n = {}); a smaller true gain would likely show as no significant difference",
        t.mde, t.metric.metric, scan::kAlpha, ps.configs.size(), t.n));
  if (t.clusters < t.n)
    notes.push_back(fmt::format(
        "items share units ({} units for {} items: passages, stories or twin pairs): CIs and "
        "standard errors resample whole units, which made the intervals {:.2f}x as wide as "
        "item-level ones on average",
        t.clusters, t.n, t.cluster_widening));
  if (t.missing)
    notes.push_back(
        fmt::format("{} items some config scored as NaN (e.g. an empty text) are "
                    "missing and left out of every comparison",
                    t.missing));
  return notes;
}

Tables build_tables(const scan::Store& store, const scan::PhaseStats& ps, int top_k) {
  Tables out;
  std::optional<scan::PhaseStats> vs;
  for (const auto& r : store.configs("validate"))
    if (r.key == "baseline") vs = scan::analyze_phase(store, "validate");
  nlohmann::json held = nlohmann::json::parse(store.meta("held_out").value_or("[]"));
  for (size_t k = 0; k < ps.tasks.size(); ++k) {
    const auto& tb = ps.tasks[k];
    TaskTables tt;
    tt.heading = fmt::format("{}: baseline {} = {:.4f} on {} items; {} configs{}", tb.metric.task,
                             tb.metric.metric, tb.score, tb.n, ps.configs.size(),
                             tb.metric.higher_is_better ? ""
                                                        : " (lower is better; deltas are "
                                                          "sign-adjusted)");
    tt.notes = task_notes(ps, k);
    std::vector<scan::Config> shown;
    for (const auto& c : scan::ranked_on(ps, k)) {
      if (c.config.mode == Mode::Skip) continue;
      if (static_cast<int>(shown.size()) >= top_k) break;
      shown.push_back(c.config);
      const auto& d = c.tasks[k];
      tt.top.push_back({c.config.key(), c.path, fmt::format("{:+.4f}", d.delta),
                        fmt_ci(d.ci_lo, d.ci_hi), fmt_p(d.p_value), fmt_p(d.p_holm),
                        yes_no(d.p_holm < scan::kAlpha), fmt_p(d.p_bh)});
    }
    for (const auto& c : scan::skip_controls(ps, k, shown))
      tt.controls.push_back({c.config.key(), c.skip.key(), fmt::format("{:+.4f}", c.delta),
                             fmt_ci(c.ci_lo, c.ci_hi), fmt_p(c.p_value), fmt_p(c.p_holm),
                             c.verdict});
    if (vs) {  // both phases list the store's tasks in the same order
      std::map<std::string, const ConfigStats*> search;
      for (const auto& c : ps.configs) search[c.config.key()] = &c;
      for (const auto& v : vs->configs) {
        const auto& d = v.tasks[k];
        const auto it = search.find(v.config.key());
        tt.validation.push_back(
            {v.config.key(),
             it == search.end() ? "-" : fmt::format("{:+.4f}", it->second->tasks[k].delta),
             fmt::format("{:+.4f}", d.delta), fmt_ci(d.ci_lo, d.ci_hi), fmt_p(d.p_gain),
             fmt_p(d.p_gain_holm), scan::survival_name(scan::held_out_verdict(d, vs->tasks[k].n))});
      }
      for (const auto& h : held)
        if (h.value("task", "") == tb.metric.task)
          tt.notes.push_back(fmt::format(
              "held-out set: {} items, none repeating a searched item's text or sharing its unit "
              "(checked when they were chosen; {} candidates skipped)",
              h.value("items", 0), h.value("skipped", 0)));
      if (vs->tasks[k].n < scan::kMinHeldOut)
        tt.notes.push_back(
            fmt::format("held-out n = {} is below the minimum of {} items: no "
                        "config is declared to survive",
                        vs->tasks[k].n, scan::kMinHeldOut));
      for (const auto& note : task_notes(*vs, k))
        if (note.rfind("minimum", 0) == 0) tt.notes.push_back("held-out " + note);
    }
    out.tasks.push_back(std::move(tt));
  }
  if (ps.tasks.size() > 1) {
    int shown = 0;
    for (const auto& c : scan::ranked(ps)) {
      if (c.config.mode == Mode::Skip) continue;
      if (shown++ >= top_k) break;
      std::vector<std::string> row = {c.config.key()};
      for (const auto& d : c.tasks)
        row.push_back(fmt::format("{:+.4f} ({:+.2f} SE)", d.delta, d.z));
      row.push_back(fmt::format("{:+.2f}", c.combined));
      row.push_back(yes_no(c.pareto));
      out.combined.push_back(row);
    }
  }
  for (const auto& [dropped, kept] : ps.duplicates)
    out.notes.push_back(
        fmt::format("{} runs the same layer path as {}: counted once", dropped, kept));
  return out;
}

std::vector<std::string> combined_head(const scan::PhaseStats& ps) {
  std::vector<std::string> head = {"config"};
  for (const auto& t : ps.tasks) head.push_back(t.metric.task + " delta (in baseline SEs)");
  head.push_back("combined (mean SEs)");
  head.push_back("Pareto");
  return head;
}

const char* kCombinedNote =
    "Unit-free ranking across tasks: each task's delta divided by the standard error of its "
    "baseline score, averaged over the tasks; Pareto = no other config is at least as good on "
    "every task and better on one. Per-task statistics above are the tests; this is only an "
    "ordering.";

std::string text_table(const std::vector<std::string>& head,
                       const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(head.size());
  for (size_t k = 0; k < head.size(); ++k) w[k] = head[k].size();
  for (const auto& r : rows)
    for (size_t k = 0; k < r.size(); ++k) w[k] = std::max(w[k], r[k].size());
  auto line = [&](const std::vector<std::string>& r) {
    std::string s;
    for (size_t k = 0; k < r.size(); ++k) s += fmt::format("{:<{}}  ", r[k], w[k]);
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s + "\n";
  };
  std::string out = line(head);
  for (const auto& r : rows) out += line(r);
  return out;
}

std::string html_table(const std::vector<std::string>& head,
                       const std::vector<std::vector<std::string>>& rows) {
  std::string s = "<table><tr>";
  for (const auto& h : head) s += "<th>" + h + "</th>";
  s += "</tr>";
  for (const auto& r : rows) {
    s += "<tr>";
    for (const auto& c : r) s += "<td>" + c + "</td>";
    s += "</tr>";
  }
  return s + "</table>";
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string csv(const scan::Store& store) {
  std::string out = "phase,config,path,task,item,metric,value\n";
  auto configs = store.configs();
  std::sort(configs.begin(), configs.end(), [](const auto& a, const auto& b) {
    return std::tie(a.phase, a.key) < std::tie(b.phase, b.key);
  });
  for (const auto& c : configs)
    for (const auto& s : store.scores(c.key, c.phase))
      out += fmt::format("{},{},{},{},{},{},{:.17g}\n", c.phase, c.key, csv_field(c.path),
                         csv_field(s.task), csv_field(s.item), csv_field(s.metric), s.value);
  return out;
}

// What a raced search (scan --strategy race) dropped, and at how many items per task.
std::string race_lines(const scan::Store& store) {
  const auto raw = store.meta("race");
  if (!raw) return "";
  const auto r = nlohmann::json::parse(*raw);
  const auto& clip = r.at("clip");  // "auto" or a number (stores before auto: always a number)
  std::string s = fmt::format(
      "\nracing (alpha {}, margin {}, clip {}, keep {}): {} item evaluations, {:.0f}% of a dense "
      "grid's {}; {} configs dropped, which take no part in the Holm family above:\n",
      r.at("alpha").get<double>(), r.at("margin").get<double>(),
      clip.is_string() ? clip.get<std::string>() : fmt::format("{}", clip.get<double>()),
      r.at("keep").get<size_t>(), r.at("item_evals").get<int64_t>(),
      100.0 * r.at("item_evals").get<double>() /
          std::max(1.0, r.at("dense_item_evals").get<double>()),
      r.at("dense_item_evals").get<int64_t>(), r.at("dropped").size());
  for (const auto& d : r.at("dropped"))
    s += fmt::format("  {:<20} dropped at n = {:<5} {}\n", d.at("key").get<std::string>(),
                     d.at("n").get<size_t>(), d.at("reason").get<std::string>());
  return s;
}

std::string evals_line(const scan::Store& store) {
  int64_t done = 0, full = 0;
  for (const auto& c : store.configs()) done += c.layer_evals, full += c.layer_evals_full;
  return fmt::format(
      "layer evaluations (positions x tokens): {} with prefix reuse, {} for "
      "per-config runs ({:.2f}x)",
      done, full, done ? static_cast<double>(full) / done : 0.0);
}

}  // namespace

std::string scan_summary(const std::filesystem::path& path, int top_k) {
  scan::Store store(path);
  auto ps = scan::analyze_phase(store, "search");
  auto t = build_tables(store, ps, top_k);
  std::string s = fmt::format("scan of {} configs on {}; bootstrap seed {}\n", ps.configs.size(),
                              task_labels(ps), ps.seed);
  for (const auto& tt : t.tasks) {
    s += "\n" + tt.heading + "\n";
    for (const auto& n : tt.notes) s += "  " + n + "\n";
    s += "top configs (delta = config - baseline, positive = better; Holm across all " +
         std::to_string(ps.configs.size()) + " configs):\n" + text_table(kTopHead, tt.top);
    if (!tt.controls.empty())
      s += "skip controls (paired, item by item):\n" + text_table(kControlHead, tt.controls);
    if (!tt.validation.empty())
      s += "held-out validation:\n" + text_table(kValidationHead, tt.validation);
  }
  if (!t.combined.empty())
    s += "\ncombined ranking across tasks (unit-free):\n" +
         text_table(combined_head(ps), t.combined);
  for (const auto& n : t.notes) s += n + "\n";
  return s + race_lines(store) + "\n" + evals_line(store) + "\n";
}

void write_scan_report(const std::filesystem::path& path, const std::filesystem::path& out,
                       int top_k) {
  if (!std::filesystem::exists(path))
    throw Error(fmt::format("{}: no such scan store", path.string()));
  scan::Store store(path);
  const std::string ext = out.extension().string();
  if (ext == ".csv") return write_file_atomically(out, csv(store));
  if (ext != ".html" && ext != ".png" && ext != ".svg")
    throw Error(fmt::format("{}: reports are .png, .svg, .html or .csv", out.string()));
  auto ps = scan::analyze_phase(store, "search");
  if (ext == ".png" || ext == ".svg")
    return write_heatmap(build_heatmap(store, ps, all_tasks(ps)), out);
  auto t = build_tables(store, ps, top_k);
  std::string html =
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>reprise scan</title><style>"
      "body{font-family:sans-serif;margin:2em;max-width:" +
      std::to_string(static_cast<int>(kPageWidth)) +
      "px}"
      "table{border-collapse:collapse;margin:1em 0}"
      "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}th{background:#f4f4f4}"
      "svg{max-width:100%;height:auto}</style></head><body>";
  html += fmt::format("<h1>Scan of {} on {}</h1>", store.meta("model_name").value_or("model"),
                      task_labels(ps));
  html += fmt::format(
      "<p>Every config is paired against the baseline on the same items, task by task in the "
      "task's own metric. 95% CI by paired bootstrap (10,000 resamples, seed {}; by whole units "
      "where items share one), shown unadjusted; p by exact McNemar (0/1 scores) or paired "
      "t-test; Holm (family-wise) and Benjamini-Hochberg adjust across all {} configs of the "
      "search, coarse and fine stages alike. \"Holm 5%\" marks gains that stay significant "
      "after the correction.</p>",
      ps.seed, ps.configs.size());
  for (size_t k = 0; k < t.tasks.size(); ++k) {
    const auto& tt = t.tasks[k];
    html += "<h2>" + tt.heading + "</h2>";
    // The heading above already names the task and its baseline: no title inside the figure.
    Heatmap figure = build_heatmap(store, ps, {k});
    figure.title.clear();
    figure.subtitle.clear();
    figure.max_width = kPageWidth;
    html += "<p>" + std::string(kColourLegend) + "</p>" + heatmap_svg(figure);
    for (const auto& n : tt.notes) html += "<p>" + n + "</p>";
    html += "<h3>Top configs</h3>" + html_table(kTopHead, tt.top);
    if (!tt.controls.empty())
      html +=
          "<h3>Skip controls</h3><p>Does repeating the block beat dropping it? Paired item "
          "by item (config - skip); the verdict comes from the test after Holm across the "
          "controls, not from the sign.</p>" +
          html_table(kControlHead, tt.controls);
    if (!tt.validation.empty())
      html +=
          fmt::format(
              "<h3>Held-out validation</h3><p>The top configs re-scored on items the search never "
              "saw. A config survives when its held-out gain is significant after Holm across "
              "every validated config at one-sided level {} (p gain Holm &lt; {}), on at least {} "
              "items: under the null the chance that any validated config survives is at most "
              "{}.</p>",
              scan::kAlpha / 2, scan::kAlpha / 2, scan::kMinHeldOut, scan::kAlpha / 2) +
          html_table(kValidationHead, tt.validation);
  }
  if (!t.combined.empty())
    html += std::string("<h2>Combined ranking across tasks</h2><p>") + kCombinedNote + "</p>" +
            html_table(combined_head(ps), t.combined);
  for (const auto& n : t.notes) html += "<p>" + n + "</p>";
  html += "<p>" + evals_line(store) + "</p></body></html>\n";
  write_file_atomically(out, html);
}

}  // namespace reprise::report
