#include "report/scan_report.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>

#include "report/heatmap.h"
#include "scan/analysis.h"
#include "scan/store.h"
#include "util/error.h"

namespace reprise::report {
namespace {

using scan::ConfigStats;
using scan::Mode;

std::string task_label(const scan::Store& store) {
  std::string s;
  for (const auto& m : scan::primary_metrics(store))
    s += (s.empty() ? "" : ", ") + m.task + " (" + m.metric + ")";
  return s;
}

Heatmap build_heatmap(const scan::Store& store, const scan::PhaseStats& ps) {
  Heatmap h;
  h.n_layer = std::stoi(store.meta("n_layer").value_or("0"));
  h.title = fmt::format("{} - {} - n = {}", store.meta("model_name").value_or("model"),
                        task_label(store), ps.n);
  h.subtitle = fmt::format("baseline score {:.4g}; colour: score of the config minus baseline "
                           "(red better, blue worse)",
                           ps.baseline_score);
  std::map<std::string, Panel> panels;
  std::vector<std::string> order;
  for (const ConfigStats& c : ps.configs) {
    std::string name;
    switch (c.config.mode) {
      case Mode::Repeat: name = "repeat: block i..j-1 runs twice"; break;
      case Mode::Skip: name = "skip: block i..j-1 dropped"; break;
      case Mode::Loop: name = fmt::format("loop: block runs {} times", c.config.k); break;
      default: continue;
    }
    if (!panels.count(name)) order.push_back(name);
    panels[name].title = name;
    panels[name].cells.push_back({c.config.i, c.config.j, c.delta, c.p_bh < 0.05});
  }
  for (const auto& n : order) h.panels.push_back(panels[n]);
  return h;
}

std::string fmt_p(double p) { return p < 1e-4 ? fmt::format("{:.1e}", p) : fmt::format("{:.4f}", p); }

struct Tables {
  std::vector<std::vector<std::string>> top, controls, validation;
};

Tables build_tables(const scan::Store& store, const scan::PhaseStats& ps, int top_k) {
  Tables t;
  std::map<std::string, const ConfigStats*> by_key;
  for (const auto& c : ps.configs) by_key[c.config.key()] = &c;
  int shown = 0;
  for (const auto& c : scan::ranked(ps)) {
    if (c.config.mode == Mode::Skip) continue;
    if (shown++ >= top_k) break;
    t.top.push_back({c.config.key(), c.path, fmt::format("{:+.4f}", c.delta),
                     fmt::format("[{:+.4f}, {:+.4f}]", c.ci_lo, c.ci_hi), fmt_p(c.p_value),
                     fmt_p(c.p_holm), fmt_p(c.p_bh)});
    scan::Config skip{Mode::Skip, c.config.i, c.config.j, 0};
    if (auto it = by_key.find(skip.key()); it != by_key.end())
      t.controls.push_back({c.config.key(), fmt::format("{:+.4f}", c.delta), skip.key(),
                            fmt::format("{:+.4f}", it->second->delta),
                            fmt::format("[{:+.4f}, {:+.4f}]", it->second->ci_lo, it->second->ci_hi),
                            c.delta > it->second->delta ? "repeat beats skip" : "skip as good"});
  }
  bool has_validation = false;
  for (const auto& r : store.configs("validate")) has_validation |= r.key == "baseline";
  if (has_validation) {
    auto vs = scan::analyze_phase(store, "validate");
    for (const auto& v : vs.configs) {
      const ConfigStats* s = by_key.count(v.config.key()) ? by_key[v.config.key()] : nullptr;
      const bool survives = v.delta > 0 && v.ci_lo > 0;
      t.validation.push_back({v.config.key(), s ? fmt::format("{:+.4f}", s->delta) : "-",
                              fmt::format("{:+.4f}", v.delta),
                              fmt::format("[{:+.4f}, {:+.4f}]", v.ci_lo, v.ci_hi), fmt_p(v.p_value),
                              survives ? "survives" : "does not survive"});
    }
  }
  return t;
}

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

const std::vector<std::string> kTopHead = {"config", "path", "delta", "95% CI", "p", "p Holm",
                                           "p BH"};
const std::vector<std::string> kControlHead = {"repeat", "delta", "skip control", "delta",
                                               "95% CI", "verdict"};
const std::vector<std::string> kValidationHead = {"config", "search delta", "held-out delta",
                                                  "95% CI", "p", "verdict"};

void write_text_file(const std::filesystem::path& out, const std::string& content) {
  auto tmp = out;
  tmp += ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << content;
    f.flush();
    if (!f) {
      std::filesystem::remove(tmp);
      throw Error(fmt::format("{}: cannot write", out.string()));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, out, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    throw Error(fmt::format("{}: cannot write: {}", out.string(), ec.message()));
  }
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

std::string evals_line(const scan::Store& store) {
  int64_t done = 0, full = 0;
  for (const auto& c : store.configs()) done += c.layer_evals, full += c.layer_evals_full;
  return fmt::format("layer evaluations (positions x tokens): {} with prefix reuse, {} for "
                     "per-config runs ({:.2f}x)",
                     done, full, done ? static_cast<double>(full) / done : 0.0);
}

}  // namespace

std::string scan_summary(const std::filesystem::path& path, int top_k) {
  scan::Store store(path);
  auto ps = scan::analyze_phase(store, "search");
  auto t = build_tables(store, ps, top_k);
  std::string s = fmt::format("baseline {} = {:.4f} on {} items; {} configs\n", task_label(store),
                              ps.baseline_score, ps.n, ps.configs.size());
  s += "\ntop configs (delta = config - baseline, positive = better):\n" + text_table(kTopHead, t.top);
  if (!t.controls.empty()) s += "\nskip controls:\n" + text_table(kControlHead, t.controls);
  if (!t.validation.empty())
    s += "\nheld-out validation:\n" + text_table(kValidationHead, t.validation);
  return s + "\n" + evals_line(store) + "\n";
}

void write_scan_report(const std::filesystem::path& path, const std::filesystem::path& out,
                       int top_k) {
  if (!std::filesystem::exists(path)) throw Error(fmt::format("{}: no such scan store", path.string()));
  scan::Store store(path);
  const std::string ext = out.extension().string();
  if (ext == ".csv") return write_text_file(out, csv(store));
  auto ps = scan::analyze_phase(store, "search");
  Heatmap h = build_heatmap(store, ps);
  if (ext == ".png" || ext == ".svg") return write_heatmap(h, out);
  if (ext != ".html")
    throw Error(fmt::format("{}: reports are .png, .svg, .html or .csv", out.string()));
  auto t = build_tables(store, ps, top_k);
  std::string html =
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>reprise scan</title><style>"
      "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
      "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}th{background:#f4f4f4}"
      "</style></head><body>";
  html += "<h1>" + h.title + "</h1><p>" + h.subtitle + "</p>" + heatmap_svg(h);
  html += "<h2>Top configs</h2><p>Paired against the baseline on the same items; 95% CI by "
          "paired bootstrap (10,000 resamples); p by exact McNemar (0/1 scores) or paired "
          "t-test; Holm and Benjamini-Hochberg adjust across all configs of the scan.</p>" +
          html_table(kTopHead, t.top);
  if (!t.controls.empty())
    html += "<h2>Skip controls</h2><p>Does repeating the block beat dropping it?</p>" +
            html_table(kControlHead, t.controls);
  if (!t.validation.empty())
    html += "<h2>Held-out validation</h2><p>The top configs re-scored on items the search never "
            "saw; a gain survives when its held-out 95% CI lies above 0.</p>" +
            html_table(kValidationHead, t.validation);
  html += "<p>" + evals_line(store) + "</p></body></html>\n";
  write_text_file(out, html);
}

}  // namespace reprise::report
