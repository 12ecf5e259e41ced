// The "brain scan" heatmap: one panel per mode (and per task, one row each), start layer i down,
// end layer j across, colour = score delta against the baseline on a diverging scale centred at
// 0, each panel on its own scale (tasks have different units).
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
  std::vector<Cell> cells;
  int row = 0;  // panels of one row sit side by side (a multi-task scan: one row per task)
};

struct Heatmap {
  std::string title;     // model, task, n
  std::string subtitle;  // baseline score, colour meaning
  int n_layer = 0;
  std::vector<Panel> panels;
};

// Writes a PNG or SVG by the file extension. Throws Error naming the file on failure.
void write_heatmap(const Heatmap& h, const std::filesystem::path& out);
// The SVG text (for embedding in HTML).
std::string heatmap_svg(const Heatmap& h);

}  // namespace reprise::report
