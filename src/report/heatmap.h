// The "brain scan" heatmap: one panel per mode (and per task, one row each), start layer i down,
// end layer j across, colour = score delta against the baseline on a diverging scale centred at
// 0. Each panel has its own scale (tasks have different units, and skipping costs far more than
// repeating gains) and therefore its own colour bar, labelled in the panel's metric.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace reprise::report {

struct Cell {
  int i = 0, j = 0;  // block i..j-1
  double delta = 0;
  bool significant = false;  // marked with a dot
};

struct Panel {
  std::string title;  // e.g. "repeat (block runs twice)"
  std::string unit;   // the metric the deltas are in, e.g. "acc"; captions the colour bar
  std::vector<Cell> cells;
  int row = 0;  // panels of one row sit side by side (a multi-task scan: one row per task)
};

struct Heatmap {
  std::string title;     // model, task, n; empty (with subtitle) = no header band (HTML has one)
  std::string subtitle;  // baseline score, colour meaning
  int n_layer = 0;
  std::vector<Panel> panels;
  // Pixels; > 0: a row's panels wrap onto further lines rather than run wider than this (a
  // 30-layer model's panels are ~800 px each; an HTML page should not need scaling them down).
  double max_width = 0;
};

// Where things go, in pixels (SVG user units = CSS px): what draw() uses, exposed for tests.
struct PanelBox {
  double grid_x = 0, grid_y = 0, grid_size = 0;  // the n x n grid's top-left corner and side
  double bar_x = 0, bar_y = 0, bar_h = 0;        // the panel's colour bar (12 px wide)
  double scale = 1;  // the bar runs from -scale (bottom, blue) to +scale (top, red)
};
struct HeatmapLayout {
  double width = 0, height = 0;
  std::vector<PanelBox> panels;  // as in Heatmap::panels
};
HeatmapLayout heatmap_layout(const Heatmap& h);

// Writes a PNG or SVG by the file extension. Throws Error naming the file on failure.
void write_heatmap(const Heatmap& h, const std::filesystem::path& out);
// The SVG text (for embedding in HTML).
std::string heatmap_svg(const Heatmap& h);

}  // namespace reprise::report
