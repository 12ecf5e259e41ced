// Drawing with cairo for the figures (the scan heatmap, analyze's plots): text, and rendering a
// drawing to SVG text or to a PNG/SVG file. One home, so both figures measure and set text alike.
#pragma once

#include <cairo.h>

#include <filesystem>
#include <functional>
#include <string>

namespace reprise::report {

// Sans-serif at `size` px, bold or not.
void set_font(cairo_t* cr, double size, bool bold);

// Draws `s` with its baseline at y; `align` 0 puts its left edge at x, 0.5 its centre, 1 its
// right edge.
void draw_text(cairo_t* cr, double x, double y, const std::string& s, double size,
               bool bold = false, double align = 0.0);

// Advance width in px of a line of text as draw_text() would draw it.
double text_width(const std::string& s, double size, bool bold);

using Draw = std::function<void(cairo_t* cr)>;

// The drawing as SVG text, `width` x `height` CSS px (not cairo's default points, so it is as
// wide in a browser as on paper here), XML declaration included.
std::string render_svg(double width, double height, const Draw& draw);

// Writes the drawing to `out` as PNG (white-backed RGB, `width` x `height` pixels, rounded
// down) or SVG by its extension, atomically (util/output_file.h). Throws Error naming `out` for
// another extension or a failed write.
void write_figure(const std::filesystem::path& out, double width, double height, const Draw& draw);

}  // namespace reprise::report
