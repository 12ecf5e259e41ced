#include "analyze/report.h"

#include <cairo.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "report/canvas.h"
#include "util/error.h"
#include "util/output_file.h"

namespace reprise::analyze {
namespace {

using report::draw_text;

// JSON has no NaN; undefined statistics (the last layer has no successor) become null.
nlohmann::json num(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
}

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Series {
  std::string key, title, unit;
  std::function<double(const LayerStats&)> get;
  double lo = -kInf, hi = kInf;  // the values it can take: its plot's axis stays inside
};

const std::vector<Series>& series() {
  static const std::vector<Series> s = {
      {"cos_in_out", "cos(h_l, h_l+1)", "1 = identity",
       [](const LayerStats& x) { return x.cos_in_out; }, -1, 1},
      {"rel_update", "relative update |Δ|/|h|", "0 = identity",
       [](const LayerStats& x) { return x.rel_update; }, 0},
      {"lens_kl", "logit lens KL to final (nats)", "",
       [](const LayerStats& x) { return x.lens_kl; }, 0},
      {"lens_top1", "logit lens top-1 agreement", "",
       [](const LayerStats& x) { return x.lens_top1; }, 0, 1},
      {"skip_kl", "KL when layer removed (nats)", "", [](const LayerStats& x) { return x.skip_kl; },
       0},
      {"series", "series dependence of l+1 on l", "0 = parallel",
       [](const LayerStats& x) { return x.series; }, 0},
      {"commute", "swap(l, l+1): stream change", "0 = commute",
       [](const LayerStats& x) { return x.commute; }, 0},
      {"commute_kl", "swap(l, l+1): output KL (nats)", "",
       [](const LayerStats& x) { return x.commute_kl; }, 0},
  };
  return s;
}

constexpr double kPanelW = 340, kPanelH = 220, kTitleH = 50;
constexpr int kCols = 3;

// One chart: points (x, y) with axes, ticks at the given x values, a line through them when
// `line` is set (depth profiles) or bare dots (scatter). The y axis stays within [y_lo, y_hi].
void chart(cairo_t* cr, double ox, double oy, const std::string& title, const std::string& note,
           const std::vector<std::pair<double, double>>& pts, bool line, const std::string& xlabel,
           double y_lo = -kInf, double y_hi = kInf) {
  const double L = ox + 50, R = ox + kPanelW - 15, T = oy + 28, B = oy + kPanelH - 38;
  cairo_set_source_rgb(cr, 0, 0, 0);
  draw_text(cr, ox + 10, oy + 16, title, 12, /*bold=*/true);
  if (!note.empty()) draw_text(cr, R, oy + 16, note, 9, /*bold=*/false, 1);
  std::vector<std::pair<double, double>> ok;
  for (auto p : pts)
    if (std::isfinite(p.second)) ok.push_back(p);
  if (ok.empty()) {
    draw_text(cr, (L + R) / 2, (T + B) / 2, "(not computed)", 10, false, 0.5);
    return;
  }
  double x0 = ok[0].first, x1 = x0, y0 = ok[0].second, y1 = y0;
  for (auto [x, y] : ok) {
    x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  }
  const Axis axis = nice_axis(y0, y1, y_lo, y_hi);
  y0 = axis.lo, y1 = axis.hi;
  if (x1 - x0 < 1e-9) x0 -= 1, x1 += 1;
  std::vector<double> xt;  // depth profiles: a tick per layer; a scatter: round numbers
  if (line) {
    for (auto p : ok) xt.push_back(p.first);
  } else {
    const Axis xa = nice_axis(x0, x1, -kInf, kInf);
    x0 = xa.lo, x1 = xa.hi;
    for (int k = 0; x0 + k * xa.step <= x1 + 1e-9 * xa.step; ++k)
      xt.push_back(std::fabs(x0 + k * xa.step) < 1e-9 * xa.step ? 0.0 : x0 + k * xa.step);
  }
  auto X = [&](double x) { return L + (x - x0) / (x1 - x0) * (R - L); };
  auto Y = [&](double y) { return B - (y - y0) / (y1 - y0) * (B - T); };
  cairo_set_line_width(cr, 1);
  cairo_move_to(cr, L, T);
  cairo_line_to(cr, L, B);
  cairo_line_to(cr, R, B);
  cairo_stroke(cr);
  for (int k = 0; y0 + k * axis.step <= y1 + 1e-9 * axis.step; ++k) {
    const double y = y0 + k * axis.step;
    // Rounding can leave -1e-17 where the tick is 0: no "-1e-17" label.
    draw_text(cr, L - 4, Y(y) + 3, fmt::format("{:.3g}", std::fabs(y) < 1e-9 * axis.step ? 0.0 : y),
              9, false, 1);
    cairo_move_to(cr, L - 2, Y(y));
    cairo_line_to(cr, L, Y(y));
    cairo_stroke(cr);
  }
  for (double x : xt) draw_text(cr, X(x), B + 12, fmt::format("{:.3g}", x), 9, false, 0.5);
  draw_text(cr, (L + R) / 2, B + 28, xlabel, 10, false, 0.5);
  cairo_set_source_rgb(cr, 0.12, 0.35, 0.75);
  if (line) {
    cairo_set_line_width(cr, 1.6);
    for (size_t k = 0; k < ok.size(); ++k) {
      if (k == 0)
        cairo_move_to(cr, X(ok[k].first), Y(ok[k].second));
      else
        cairo_line_to(cr, X(ok[k].first), Y(ok[k].second));
    }
    cairo_stroke(cr);
  }
  for (auto [x, y] : ok) {
    cairo_arc(cr, X(x), Y(y), 2.8, 0, 2 * M_PI);
    cairo_fill(cr);
  }
}

std::string title_line(const AnalysisReport& r) {
  return fmt::format("{}: per-layer diagnostics", r.model);
}
std::string probe_line(const AnalysisReport& r) {
  return fmt::format("task {}, {} sequences, {} tokens (at most {} each)", r.tasks, r.diag.n_items,
                     r.diag.n_tokens, r.max_tokens);
}

// `header`: the title and probe lines on top (the PNG/SVG); the HTML page has them as text.
std::pair<double, double> canvas_size(const AnalysisReport& r, bool header) {
  const size_t panels = series().size() + (r.validations.empty() ? 0 : 1);
  const size_t rows = (panels + kCols - 1) / kCols;
  return {kCols * kPanelW, (header ? kTitleH : 0) + rows * kPanelH};
}

void draw(cairo_t* cr, const AnalysisReport& r, bool header) {
  auto [w, h] = canvas_size(r, header);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_rectangle(cr, 0, 0, w, h);
  cairo_fill(cr);
  cairo_set_source_rgb(cr, 0, 0, 0);
  if (header) {
    draw_text(cr, 12, 22, title_line(r), 15, true);
    draw_text(cr, 12, 40, probe_line(r), 11);
  }
  const double top = header ? kTitleH : 0;
  size_t k = 0;
  for (const Series& s : series()) {
    std::vector<std::pair<double, double>> pts;
    for (const auto& l : r.diag.layers) pts.emplace_back(l.layer, s.get(l));
    chart(cr, (k % kCols) * kPanelW, top + (k / kCols) * kPanelH, s.title, s.unit, pts, true,
          "layer", s.lo, s.hi);
    ++k;
  }
  if (!r.validations.empty() && r.scan) {
    const Prediction& p = r.predictions.front();
    std::vector<std::pair<double, double>> pts;
    for (const auto& b : p.ranked)
      for (const auto& m : r.scan->deltas)
        if (m.i == b.i && m.j == b.j) pts.emplace_back(b.score, m.delta);
    const Validation& v = r.validations.front();
    chart(cr, (k % kCols) * kPanelW, top + (k / kCols) * kPanelH,
          fmt::format("scan delta vs {} score", p.method),
          fmt::format("Spearman {:.2f}", v.spearman), pts, false, "predicted score");
  }
}

std::string plots_svg(const AnalysisReport& r) {
  auto [w, h] = canvas_size(r, false);
  return report::render_svg(w, h, [&](cairo_t* cr) { draw(cr, r, false); });
}

void write_image(const AnalysisReport& r, const std::filesystem::path& out) {
  auto [w, h] = canvas_size(r, true);
  report::write_figure(out, w, h, [&](cairo_t* cr) { draw(cr, r, true); });
}

std::string fmt_num(double v) {
  return std::isfinite(v) ? fmt::format("{:.4f}", v) : "-";
}

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<')
      o += "&lt;";
    else if (c == '>')
      o += "&gt;";
    else if (c == '&')
      o += "&amp;";
    else
      o += c;
  }
  return o;
}

std::string validation_line(const Validation& v) {
  std::string hits;
  for (const auto& h : v.hits)
    hits += fmt::format("  hit@{} {} (chance {:.2f})", h.k, h.hit ? "yes" : "no", h.chance);
  return fmt::format(
      "{}: Spearman {:.3f} (permutation p = {:.2g}, n = {}); measured best ({}, {}) "
      "delta {:+.4f};{}",
      v.method, v.spearman, v.spearman_p, v.n, v.best.i, v.best.j, v.best.delta, hits);
}

}  // namespace

Axis nice_axis(double lo, double hi, double floor, double ceil) {
  if (hi - lo < 1e-9) {  // a flat series: a unit-wide window around it
    const double half = std::max(0.5, 0.1 * std::fabs(lo));
    lo -= half, hi += half;
  }
  const double raw = (hi - lo) / 4, mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * mag;
  for (double m : {1.0, 2.0, 2.5, 5.0})
    if (m * mag >= raw * (1 - 1e-9)) {
      step = m * mag;
      break;
    }
  Axis a;
  a.step = step;
  a.lo = std::max(floor, std::floor(lo / step + 1e-9) * step);
  a.hi = std::min(ceil, std::ceil(hi / step - 1e-9) * step);
  if (a.hi <= a.lo) a.hi = a.lo + step;  // data outside its bounds: still a valid axis
  return a;
}

nlohmann::json to_json(const AnalysisReport& r) {
  nlohmann::json j;
  j["model"] = r.model;
  j["tasks"] = r.tasks;
  j["limit"] = r.limit;
  j["max_tokens"] = r.max_tokens;
  j["n_layer"] = r.diag.n_layer;
  j["n_items"] = r.diag.n_items;
  j["n_tokens"] = r.diag.n_tokens;
  auto& layers = j["layers"] = nlohmann::json::array();
  for (const auto& l : r.diag.layers) {
    nlohmann::json o = {{"layer", l.layer}};
    for (const Series& s : series()) o[s.key] = num(s.get(l));
    layers.push_back(o);
  }
  j["drift"] = r.diag.drift;
  j["similarity"] = r.diag.sim;
  auto& preds = j["predictions"] = nlohmann::json::array();
  for (const auto& p : r.predictions) {
    nlohmann::json ranked = nlohmann::json::array();
    for (const auto& b : p.ranked) ranked.push_back({{"i", b.i}, {"j", b.j}, {"score", b.score}});
    preds.push_back({{"method", p.method}, {"ranked", ranked}});
  }
  j["seconds"] = {{"probe", r.seconds_probe},
                  {"prediction", r.seconds_prediction},
                  {"logit_lens", r.diag.seconds_lens},
                  {"interventions", r.diag.seconds_interventions},
                  {"total", r.seconds_total}};
  if (r.scan) {
    nlohmann::json v = {{"scan", r.scan_path},
                        {"scan_model", r.scan->model_name},
                        {"scan_tasks", r.scan->tasks},
                        {"scan_limit", r.scan->limit},
                        {"scan_seconds", r.scan->seconds},
                        {"prediction_over_scan_time",
                         r.scan->seconds > 0 ? r.seconds_prediction / r.scan->seconds : 0.0}};
    nlohmann::json measured = nlohmann::json::array();
    for (const auto& m : r.scan->deltas)
      measured.push_back({{"i", m.i}, {"j", m.j}, {"delta", m.delta}});
    v["measured"] = measured;
    auto& ms = v["methods"] = nlohmann::json::array();
    for (const auto& x : r.validations) {
      nlohmann::json hits = nlohmann::json::array();
      for (const auto& h : x.hits)
        hits.push_back({{"k", h.k}, {"hit", h.hit}, {"chance", h.chance}});
      ms.push_back({{"method", x.method},
                    {"n", x.n},
                    {"spearman", num(x.spearman)},
                    {"spearman_p", x.spearman_p},
                    {"best", {{"i", x.best.i}, {"j", x.best.j}, {"delta", x.best.delta}}},
                    {"radius", x.radius},
                    {"hits", hits}});
    }
    j["validation"] = v;
  }
  return j;
}

std::string summary(const AnalysisReport& r, int top) {
  std::string s = fmt::format("{}: {} sequences, {} tokens, {} layers\n", r.model, r.diag.n_items,
                              r.diag.n_tokens, r.diag.n_layer);
  s += fmt::format("{:>5} {:>8} {:>8} {:>8} {:>6} {:>8} {:>8} {:>8} {:>9}\n", "layer", "cos",
                   "rel_upd", "lens_kl", "top1", "skip_kl", "series", "commute", "swap_kl");
  for (const auto& l : r.diag.layers)
    s += fmt::format("{:>5} {:>8} {:>8} {:>8} {:>6.3f} {:>8} {:>8} {:>8} {:>9}\n", l.layer,
                     fmt_num(l.cos_in_out), fmt_num(l.rel_update), fmt_num(l.lens_kl), l.lens_top1,
                     fmt_num(l.skip_kl), fmt_num(l.series), fmt_num(l.commute),
                     fmt_num(l.commute_kl));
  for (const auto& p : r.predictions) {
    s += fmt::format("predicted blocks ({}):", p.method);
    for (size_t k = 0; k < p.ranked.size() && k < static_cast<size_t>(top); ++k)
      s += fmt::format(" ({},{})", p.ranked[k].i, p.ranked[k].j);
    s += "\n";
  }
  if (r.scan) {
    for (const auto& v : r.validations) s += validation_line(v) + "\n";
    s += fmt::format(
        "time: prediction {:.3f} s vs scan {:.3f} s ({:.2f}%); all diagnostics {:.3f} s\n",
        r.seconds_prediction, r.scan->seconds,
        r.scan->seconds > 0 ? 100 * r.seconds_prediction / r.scan->seconds : 0.0, r.seconds_total);
  } else {
    s += fmt::format("time: prediction {:.3f} s; all diagnostics {:.3f} s\n", r.seconds_prediction,
                     r.seconds_total);
  }
  return s;
}

void write_report(const AnalysisReport& r, const std::filesystem::path& out) {
  const std::string ext = out.extension().string();
  if (ext == ".png" || ext == ".svg") return write_image(r, out);
  std::string body;
  if (ext == ".json") {
    body = to_json(r).dump(2) + "\n";
  } else if (ext == ".html") {
    body =
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>reprise analyze</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "svg{max-width:100%;height:auto}pre{white-space:pre-wrap}</style></head><body>\n";
    // The title and probe once, as text; the figure below has no header of its own.
    body += fmt::format("<h1>{}</h1>\n<p>{}</p>\n", html_escape(title_line(r)),
                        html_escape(probe_line(r)));
    const std::string svg = plots_svg(r);
    body += svg.substr(std::min(svg.find("<svg"), svg.size())) + "\n<table><tr><th>layer</th>";
    for (const Series& s : series()) body += "<th>" + html_escape(s.key) + "</th>";
    body += "</tr>\n";
    for (const auto& l : r.diag.layers) {
      body += fmt::format("<tr><td>{}</td>", l.layer);
      for (const Series& s : series()) body += "<td>" + fmt_num(s.get(l)) + "</td>";
      body += "</tr>\n";
    }
    body += "</table>\n";
    for (const auto& p : r.predictions) {
      body += fmt::format(
          "<h2>Predicted blocks: {}</h2>\n<table><tr><th>rank</th><th>i</th>"
          "<th>j</th><th>score</th><th>scan delta</th></tr>\n",
          p.method);
      for (size_t k = 0; k < p.ranked.size(); ++k) {
        const auto& b = p.ranked[k];
        std::string meas = "-";
        if (r.scan)
          for (const auto& m : r.scan->deltas)
            if (m.i == b.i && m.j == b.j) meas = fmt::format("{:+.4f}", m.delta);
        body +=
            fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.4f}</td><td>{}</td></tr>\n",
                        k + 1, b.i, b.j, b.score, meas);
      }
      body += "</table>\n";
    }
    if (r.scan) {
      body += "<h2>Against the scan</h2>\n<ul>\n";
      for (const auto& v : r.validations)
        body += "<li>" + html_escape(validation_line(v)) + "</li>\n";
      body += "</ul>\n";
    }
    body += "<pre>" + html_escape(summary(r)) + "</pre>\n</body></html>\n";
  } else {
    throw Error(fmt::format("{}: analyze writes .json, .png, .svg or .html", out.string()));
  }
  write_file_atomically(out, body);
}

}  // namespace reprise::analyze
