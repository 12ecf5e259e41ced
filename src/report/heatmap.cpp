#include "report/heatmap.h"

#include <cairo-svg.h>
#include <cairo.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "util/error.h"

namespace reprise::report {
namespace {

constexpr double kCell = 22, kMargin = 60, kPanelGap = 50, kTitle = 56, kBar = 130;

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

void text(cairo_t* cr, double x, double y, const std::string& s, double size, bool bold = false,
          double align = 0.0) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  cairo_move_to(cr, x - align * e.width, y);
  cairo_show_text(cr, s.c_str());
}

// Small grids get big cells so that their numbers fit.
double cell_size(int n) { return n <= 16 ? 44 : kCell; }

double panel_width(int n) { return kMargin + cell_size(n) * n + 10; }

// Height of one row of panels: title lines, the grid, its axis labels.
double row_height(int n) {
  return 30 + cell_size(n) * n + 60;
}

void draw(cairo_t* cr, const Heatmap& h, double width, double height) {
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_set_source_rgb(cr, 0, 0, 0);
  text(cr, 16, 24, h.title, 15, true);
  text(cr, 16, 44, h.subtitle, 11);
  const int n = h.n_layer;
  const double cell_px = cell_size(n);
  double x0 = 0;
  int row = h.panels.empty() ? 0 : h.panels[0].row;
  for (const auto& p : h.panels) {
    if (p.row != row) x0 = 0, row = p.row;
    const double scale = scale_of(p);
    const double gx = x0 + kMargin, gy = kTitle + 30 + p.row * row_height(n);
    cairo_set_source_rgb(cr, 0, 0, 0);
    text(cr, gx, gy - 22, p.title, 12, true);
    text(cr, gx, gy - 8, fmt::format("colour scale +/-{:.3g}", scale), 9);
    // Grid background: cells that are not configs stay light grey.
    for (int i = 0; i < n; ++i)
      for (int j = 1; j <= n; ++j) {
        cairo_rectangle(cr, gx + (j - 1) * cell_px, gy + i * cell_px, cell_px - 1, cell_px - 1);
        cairo_set_source_rgb(cr, 0.94, 0.94, 0.94);
        cairo_fill(cr);
      }
    for (const auto& c : p.cells) {
      Rgb col = diverging(c.delta / scale);
      const double cx = gx + (c.j - 1) * cell_px, cy = gy + c.i * cell_px;
      cairo_rectangle(cr, cx, cy, cell_px - 1, cell_px - 1);
      cairo_set_source_rgb(cr, col.r, col.g, col.b);
      cairo_fill(cr);
      cairo_set_source_rgb(cr, 0, 0, 0);
      if (n <= 16) {  // small grids carry their numbers
        text(cr, cx + cell_px / 2, cy + cell_px / 2 + 2, fmt::format("{:+.2f}", c.delta), 8,
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
      text(cr, gx + (j - 1) * cell_px + cell_px / 2, gy + n * cell_px + 14, std::to_string(j), 9, false,
           0.5);
    for (int i = 0; i < n; i += step)
      text(cr, gx - 6, gy + i * cell_px + cell_px / 2 + 3, std::to_string(i), 9, false, 1.0);
    text(cr, gx + n * cell_px / 2, gy + n * cell_px + 30, "end layer j (block is i..j-1)", 10, false,
         0.5);
    cairo_save(cr);
    cairo_translate(cr, gx - 34, gy + n * cell_px / 2);
    cairo_rotate(cr, -M_PI / 2);
    text(cr, 0, 0, "start layer i", 10, false, 0.5);
    cairo_restore(cr);
    x0 += panel_width(n) + kPanelGap;
  }
  // Colour bar.
  const double bx = width - kBar + 10, by = kTitle + 30, bh = std::max(120.0, height - by - 70);
  for (int k = 0; k < 100; ++k) {
    Rgb col = diverging(1.0 - 2.0 * k / 99.0);
    cairo_rectangle(cr, bx, by + bh * k / 100.0, 16, bh / 100.0 + 0.5);
    cairo_set_source_rgb(cr, col.r, col.g, col.b);
    cairo_fill(cr);
  }
  cairo_set_source_rgb(cr, 0, 0, 0);
  text(cr, bx + 20, by + 8, "+scale (better)", 9);
  text(cr, bx + 20, by + bh / 2 + 3, "0", 9);
  text(cr, bx + 20, by + bh, "-scale (worse)", 9);
  text(cr, bx - 4, by + bh + 18, "delta vs baseline", 9);
  text(cr, bx - 4, by + bh + 30, "dot: Holm p < 0.05", 9);
}

std::pair<double, double> size_of(const Heatmap& h) {
  std::map<int, int> per_row;
  for (const auto& p : h.panels) ++per_row[p.row];
  int widest = 0, rows = 1;
  for (const auto& [row, count] : per_row)
    widest = std::max(widest, count), rows = std::max(rows, row + 1);
  double w = widest * (panel_width(h.n_layer) + kPanelGap);
  w = std::max(w, 420.0) + kBar;
  double ht = kTitle + rows * row_height(h.n_layer);
  return {w, std::max(ht, 260.0)};
}

cairo_status_t append(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

}  // namespace

std::string heatmap_svg(const Heatmap& h) {
  auto [w, ht] = size_of(h);
  std::string out;
  cairo_surface_t* s = cairo_svg_surface_create_for_stream(append, &out, w, ht);
  cairo_t* cr = cairo_create(s);
  draw(cr, h, w, ht);
  cairo_destroy(cr);
  cairo_surface_finish(s);
  cairo_surface_destroy(s);
  return out;
}

void write_heatmap(const Heatmap& h, const std::filesystem::path& out) {
  auto [w, ht] = size_of(h);
  const std::string ext = out.extension().string();
  cairo_surface_t* s = nullptr;
  if (ext == ".png")
    s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, static_cast<int>(w), static_cast<int>(ht));
  else if (ext == ".svg")
    s = cairo_svg_surface_create(out.c_str(), w, ht);
  else
    throw Error(fmt::format("{}: heatmaps are .png or .svg", out.string()));
  cairo_t* cr = cairo_create(s);
  draw(cr, h, w, ht);
  cairo_destroy(cr);
  cairo_status_t st = ext == ".png" ? cairo_surface_write_to_png(s, out.c_str()) : CAIRO_STATUS_SUCCESS;
  cairo_surface_finish(s);
  if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_status(s);
  cairo_surface_destroy(s);
  if (st != CAIRO_STATUS_SUCCESS)
    throw Error(fmt::format("{}: cannot write: {}", out.string(), cairo_status_to_string(st)));
}

}  // namespace reprise::report
