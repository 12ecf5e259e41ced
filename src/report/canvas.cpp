#include "report/canvas.h"

#include <cairo-svg.h>
#include <fmt/format.h>

#include "util/error.h"
#include "util/output_file.h"

namespace reprise::report {
namespace {

cairo_status_t append(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

std::string render_png(double width, double height, const Draw& draw) {
  cairo_surface_t* s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, static_cast<int>(width),
                                                  static_cast<int>(height));
  cairo_t* cr = cairo_create(s);
  draw(cr);
  cairo_destroy(cr);
  std::string out;
  cairo_status_t st = cairo_surface_write_to_png_stream(s, append, &out);
  if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_status(s);
  cairo_surface_destroy(s);
  if (st != CAIRO_STATUS_SUCCESS) throw Error(cairo_status_to_string(st));
  return out;
}

}  // namespace

void set_font(cairo_t* cr, double size, bool bold) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

void draw_text(cairo_t* cr, double x, double y, const std::string& s, double size, bool bold,
               double align) {
  set_font(cr, size, bold);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  cairo_move_to(cr, x - align * e.width, y);
  cairo_show_text(cr, s.c_str());
}

double text_width(const std::string& s, double size, bool bold) {
  cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
  cairo_t* cr = cairo_create(surface);
  set_font(cr, size, bold);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  cairo_destroy(cr);
  cairo_surface_destroy(surface);
  return e.x_advance;
}

std::string render_svg(double width, double height, const Draw& draw) {
  std::string out;
  cairo_surface_t* s = cairo_svg_surface_create_for_stream(append, &out, width, height);
  cairo_svg_surface_set_document_unit(s, CAIRO_SVG_UNIT_PX);
  cairo_t* cr = cairo_create(s);
  draw(cr);
  cairo_destroy(cr);
  cairo_surface_finish(s);
  const cairo_status_t st = cairo_surface_status(s);
  cairo_surface_destroy(s);
  if (st != CAIRO_STATUS_SUCCESS) throw Error(cairo_status_to_string(st));
  return out;
}

void write_figure(const std::filesystem::path& out, double width, double height, const Draw& draw) {
  const std::string ext = out.extension().string();
  if (ext != ".png" && ext != ".svg")
    throw Error(fmt::format("{}: figures are .png or .svg", out.string()));
  std::string bytes;
  try {
    bytes = ext == ".png" ? render_png(width, height, draw) : render_svg(width, height, draw);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: cannot write: {}", out.string(), e.what()));
  }
  write_file_atomically(out, bytes);
}

}  // namespace reprise::report
