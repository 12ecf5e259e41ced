#include "report/heatmap.h"

#include <cairo.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "report/canvas.h"
#include "util/error.h"

namespace reprise::report {
namespace {

// Pixels. A panel is its grid (kMargin for the row labels) and, right of it, its colour bar
// with value labels and a caption (kBarBlock).
constexpr double kCell = 22, kMargin = 60, kPanelGap = 30, kHeader = 56, kBarBlock = 96, kBarW = 12;

struct Rgb {
  double r, g, b;
};

// Blue (worse) - white (0) - red (better), symmetric around 0.
Rgb diverging(double t) {
  t = std::clamp(t, -1.0, 1.0);
  if (t >= 0) return {1.0, 1.0 - 0.8 * t, 1.0 - 0.85 * t};
  return {1.0 + 0.85 * t, 1.0 + 0.6 * t, 1.0};
}

// Each panel has its own symmetric scale: skipping layers usually costs far more than
// repeating them gains, and one shared scale would wash the repeat panel out.
double scale_of(const Panel& p) {
  double m = 0;
  for (const auto& c : p.cells) m = std::max(m, std::fabs(c.delta));
  return m > 0 ? m : 1.0;
}

// Small grids get big cells so that their numbers fit.
double cell_size(int n) {
  return n <= 16 ? 44 : kCell;
}

double panel_width(int n) {
  return kMargin + cell_size(n) * n + kBarBlock;
}

// Height of one row of panels: the panel title, the grid, its axis labels.
double row_height(int n) {
  return 24 + cell_size(n) * n + 50;
}

bool has_header(const Heatmap& h) {
  return !h.title.empty() || !h.subtitle.empty();
}

void draw(cairo_t* cr, const Heatmap& h, const HeatmapLayout& lay) {
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_set_source_rgb(cr, 0, 0, 0);
  if (has_header(h)) {
    draw_text(cr, 16, 24, h.title, 15, /*bold=*/true);
    draw_text(cr, 16, 44, h.subtitle, 11);
  }
  const int n = h.n_layer;
  const double cell_px = cell_size(n);
  for (size_t k = 0; k < h.panels.size(); ++k) {
    const Panel& p = h.panels[k];
    const PanelBox& b = lay.panels[k];
    const double gx = b.grid_x, gy = b.grid_y;
    cairo_set_source_rgb(cr, 0, 0, 0);
    draw_text(cr, gx, gy - 10, p.title, 12, /*bold=*/true);
    // Grid background: cells that are not configs stay light grey.
    for (int i = 0; i < n; ++i)
      for (int j = 1; j <= n; ++j) {
        cairo_rectangle(cr, gx + (j - 1) * cell_px, gy + i * cell_px, cell_px - 1, cell_px - 1);
        cairo_set_source_rgb(cr, 0.94, 0.94, 0.94);
        cairo_fill(cr);
      }
    for (const auto& c : p.cells) {
      Rgb col = diverging(c.delta / b.scale);
      const double cx = gx + (c.j - 1) * cell_px, cy = gy + c.i * cell_px;
      cairo_rectangle(cr, cx, cy, cell_px - 1, cell_px - 1);
      cairo_set_source_rgb(cr, col.r, col.g, col.b);
      cairo_fill(cr);
      cairo_set_source_rgb(cr, 0, 0, 0);
      if (n <= 16) {  // small grids carry their numbers
        draw_text(cr, cx + cell_px / 2, cy + cell_px / 2 + 2, fmt::format("{:+.2f}", c.delta), 8,
                  false, 0.5);
        if (c.significant) {
          cairo_arc(cr, cx + 5, cy + 5, 2.2, 0, 2 * M_PI);
          cairo_fill(cr);
        }
      } else if (c.significant) {
        cairo_arc(cr, cx + cell_px / 2 - 0.5, cy + cell_px / 2 - 0.5, 3, 0, 2 * M_PI);
        cairo_fill(cr);
      }
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    const int step = std::max(1, n / 12);
    for (int j = 1; j <= n; j += step)
      draw_text(cr, gx + (j - 1) * cell_px + cell_px / 2, gy + n * cell_px + 14, std::to_string(j),
                9, false, 0.5);
    for (int i = 0; i < n; i += step)
      draw_text(cr, gx - 6, gy + i * cell_px + cell_px / 2 + 3, std::to_string(i), 9,
                /*bold=*/false, 1.0);
    draw_text(cr, gx + n * cell_px / 2, gy + n * cell_px + 30, "end layer j (block is i..j-1)", 10,
              false, 0.5);
    cairo_save(cr);
    cairo_translate(cr, gx - 34, gy + n * cell_px / 2);
    cairo_rotate(cr, -M_PI / 2);
    draw_text(cr, 0, 0, "start layer i", 10, /*bold=*/false, 0.5);
    cairo_restore(cr);
    // The panel's colour bar: +scale at the top, 0 in the middle, -scale at the bottom.
    constexpr int kSteps = 100;
    for (int s = 0; s < kSteps; ++s) {
      Rgb col = diverging(1.0 - 2.0 * (s + 0.5) / kSteps);
      cairo_rectangle(cr, b.bar_x, b.bar_y + b.bar_h * s / kSteps, kBarW, b.bar_h / kSteps + 0.5);
      cairo_set_source_rgb(cr, col.r, col.g, col.b);
      cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    const double lx = b.bar_x + kBarW + 4;
    draw_text(cr, lx, b.bar_y + 8, fmt::format("{:+.3g}", b.scale), 9);
    draw_text(cr, lx, b.bar_y + b.bar_h / 2 + 3, "0", 9);
    draw_text(cr, lx, b.bar_y + b.bar_h, fmt::format("{:+.3g}", -b.scale), 9);
    cairo_save(cr);
    cairo_translate(cr, b.bar_x + kBarBlock - 24, b.bar_y + b.bar_h / 2);
    cairo_rotate(cr, -M_PI / 2);
    draw_text(cr, 0, 0, p.unit.empty() ? "delta" : "delta " + p.unit, 10, /*bold=*/false, 0.5);
    cairo_restore(cr);
  }
}

}  // namespace

HeatmapLayout heatmap_layout(const Heatmap& h) {
  HeatmapLayout lay;
  const int n = h.n_layer;
  const double grid = cell_size(n) * n, top = has_header(h) ? kHeader : 8;
  double x0 = 0, right = 0;
  int row = 0, line = -1;  // line: panels drawn side by side
  for (const auto& p : h.panels) {
    if (line < 0 || p.row != row || (h.max_width > 0 && x0 + panel_width(n) > h.max_width))
      ++line, x0 = 0, row = p.row;
    PanelBox b;
    b.grid_x = x0 + kMargin;
    b.grid_y = top + 24 + line * row_height(n);
    b.grid_size = grid;
    b.bar_x = b.grid_x + grid + 14;
    b.bar_y = b.grid_y;
    b.bar_h = std::max(grid, 80.0);
    b.scale = scale_of(p);
    // The panel's title may be wider than its grid and bar.
    right = std::max(
        {right, b.grid_x + grid + kBarBlock, b.grid_x + text_width(p.title, 12, /*bold=*/true)});
    lay.panels.push_back(b);
    x0 += panel_width(n) + kPanelGap;
  }
  if (has_header(h))
    right = std::max({right, 16 + text_width(h.title, 15, /*bold=*/true),
                      16 + text_width(h.subtitle, 11, /*bold=*/false)});
  lay.width = std::ceil(right + 16);
  lay.height = std::ceil(top + std::max(1, line + 1) * row_height(n) + std::max(0.0, 80.0 - grid));
  return lay;
}

std::string heatmap_svg(const Heatmap& h) {
  const HeatmapLayout lay = heatmap_layout(h);
  const std::string out = render_svg(lay.width, lay.height, [&](cairo_t* cr) { draw(cr, h, lay); });
  // Inline in HTML: the XML declaration has no place there.
  return out.substr(std::min(out.find("<svg"), out.size()));
}

void write_heatmap(const Heatmap& h, const std::filesystem::path& out) {
  const std::string ext = out.extension().string();
  if (ext != ".png" && ext != ".svg")
    throw Error(fmt::format("{}: heatmaps are .png or .svg", out.string()));
  const HeatmapLayout lay = heatmap_layout(h);
  write_figure(out, lay.width, lay.height, [&](cairo_t* cr) { draw(cr, h, lay); });
}

}  // namespace reprise::report
