// The scan heatmap's layout and colours: every panel has its own colour bar on its own scale,
// the figure fits an HTML page, and a figure without a header has none.
#include <cairo.h>
#include <gtest/gtest.h>

#include <cstring>

#include "report/heatmap.h"
#include "support/test_support.h"

namespace reprise::report {
namespace {

// Two panels of a 5-layer model: a repeat panel within +/-0.25, a skip panel within +/-3.
Heatmap two_panels() {
  Heatmap h;
  h.title = "model - task (acc) - n = 16";
  h.subtitle = "baseline 0.5";
  h.n_layer = 5;
  Panel repeat{"repeat", "acc", {{0, 1, 0.25, false}, {1, 3, -0.1, false}}, 0};
  Panel skip{"skip", "acc", {{0, 1, -3.0, true}, {2, 3, 1.5, false}}, 0};
  h.panels = {repeat, skip};
  return h;
}

struct Pixel {
  int r, g, b;
};

Pixel pixel_at(cairo_surface_t* s, double x, double y) {
  const unsigned char* data = cairo_image_surface_get_data(s);
  const int stride = cairo_image_surface_get_stride(s);
  uint32_t v;
  std::memcpy(&v, data + static_cast<int>(y) * stride + static_cast<int>(x) * 4, 4);
  return {static_cast<int>(v >> 16 & 255), static_cast<int>(v >> 8 & 255),
          static_cast<int>(v & 255)};
}

TEST(Heatmap, EveryPanelHasItsOwnBarOnItsOwnScale) {
  const Heatmap h = two_panels();
  const HeatmapLayout lay = heatmap_layout(h);
  ASSERT_EQ(lay.panels.size(), 2u);
  EXPECT_DOUBLE_EQ(lay.panels[0].scale, 0.25);
  EXPECT_DOUBLE_EQ(lay.panels[1].scale, 3.0);
  for (size_t k = 0; k < 2; ++k) {
    const PanelBox& b = lay.panels[k];
    // The bar sits right of its own grid, level with it, and inside the figure.
    EXPECT_GT(b.bar_x, b.grid_x + b.grid_size);
    EXPECT_DOUBLE_EQ(b.bar_y, b.grid_y);
    EXPECT_DOUBLE_EQ(b.bar_h, b.grid_size);
    EXPECT_LT(b.bar_x + 12, lay.width);
  }
  EXPECT_LT(lay.panels[0].bar_x + 12, lay.panels[1].grid_x);  // before the next panel's grid

  // Drawn: each bar runs from full red to full blue, and each panel's largest |delta| takes the
  // end colour of its own bar (+0.25 is as red on the left as +3 would be on the right).
  const auto png = test::scratch("heatmap.png");
  write_heatmap(h, png);
  cairo_surface_t* s = cairo_image_surface_create_from_png(png.c_str());
  ASSERT_EQ(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
  EXPECT_EQ(cairo_image_surface_get_width(s), static_cast<int>(lay.width));
  for (const PanelBox& b : lay.panels) {
    const Pixel top = pixel_at(s, b.bar_x + 6, b.bar_y + 1);
    const Pixel bottom = pixel_at(s, b.bar_x + 6, b.bar_y + b.bar_h - 2);
    EXPECT_EQ(top.r, 255);
    EXPECT_LT(top.g, 70);  // diverging(+1) = (1, 0.2, 0.15)
    EXPECT_LT(bottom.r, 70);
    EXPECT_EQ(bottom.b, 255);  // diverging(-1) = (0.15, 0.4, 1)
  }
  const double cell = lay.panels[0].grid_size / 5;
  // repeat cell (0, 1) = +0.25 = its panel's +scale; skip cell (0, 1) = -3 = its -scale.
  const Pixel best = pixel_at(s, lay.panels[0].grid_x + cell - 4, lay.panels[0].grid_y + cell - 4);
  const Pixel worst = pixel_at(s, lay.panels[1].grid_x + cell - 4, lay.panels[1].grid_y + cell - 4);
  EXPECT_EQ(best.r, 255);
  EXPECT_LT(best.g, 70);
  EXPECT_EQ(worst.b, 255);
  EXPECT_LT(worst.r, 70);
  // skip cell (2, 3) = +1.5, half its scale: a lighter red, not the full red of +0.25 on the left.
  const Pixel half =
      pixel_at(s, lay.panels[1].grid_x + 2 * cell + 4, lay.panels[1].grid_y + 2 * cell + 4);
  EXPECT_EQ(half.r, 255);
  EXPECT_GT(half.g, 120);
  cairo_surface_destroy(s);
}

TEST(Heatmap, WithoutHeaderStartsAtTheTop) {
  Heatmap h = two_panels();
  const HeatmapLayout with = heatmap_layout(h);
  h.title.clear();
  h.subtitle.clear();
  const HeatmapLayout without = heatmap_layout(h);
  EXPECT_LT(without.panels[0].grid_y, with.panels[0].grid_y - 40);
  EXPECT_LT(without.height, with.height - 40);
  // The SVG is sized in CSS pixels, without an XML declaration, ready to inline in HTML.
  const std::string svg = heatmap_svg(h);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u) << svg.substr(0, 80);
  EXPECT_NE(svg.find("width=\"" + std::to_string(static_cast<int>(without.width)) + "px\""),
            std::string::npos)
      << svg.substr(0, 300);
}

TEST(Heatmap, PanelsWrapToTheMaximumWidth) {
  Heatmap h;
  h.n_layer = 30;  // SmolLM2-135M: 22-px cells, a panel is ~800 px wide
  for (const char* mode : {"repeat", "skip", "loop"}) h.panels.push_back({mode, "acc", {}, 0});
  const HeatmapLayout wide = heatmap_layout(h);
  EXPECT_GT(wide.width, 2000);
  EXPECT_DOUBLE_EQ(wide.panels[2].grid_y, wide.panels[0].grid_y);  // one line
  h.max_width = 1180;
  const HeatmapLayout page = heatmap_layout(h);
  EXPECT_LE(page.width, 1180);
  EXPECT_LT(page.panels[0].grid_y, page.panels[1].grid_y);  // one panel per line
  EXPECT_LT(page.panels[1].grid_y, page.panels[2].grid_y);
  EXPECT_DOUBLE_EQ(page.panels[1].grid_x, page.panels[0].grid_x);
}

}  // namespace
}  // namespace reprise::report
