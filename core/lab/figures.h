#pragma once
// PNG figures drawn by a small software rasteriser (no GUI, no plotting
// library): line/scatter plots with axes, ticks, labels and a legend in a
// built-in 5x7 bitmap font, written with stb_image_write. Used by the sweep
// for its trade-off figures; usable for any x-y chart.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lab/sweep.h"

namespace attnlab {

enum class plot_marker { circle, square, triangle, diamond, none };

struct plot_series {
    std::string label;             // legend text ("" = not in the legend)
    std::vector<double> x, y;
    uint32_t color = 0x000000;     // 0xRRGGBB
    bool lines = true;             // connect the points in the given order
    bool dashed = false;
    int line_width = 2;
    plot_marker marker = plot_marker::circle;
    int marker_size = 5;           // radius in pixels
};

struct plot_spec {
    std::string title, x_label, y_label, note;   // note: a small line under the title
    std::vector<plot_series> series;
    int width = 1100, height = 680;
    bool y_log = false;            // log10 y axis (all y must be > 0)
    // Axis ranges; NaN = from the data, padded.
    double x_min = NAN, x_max = NAN, y_min = NAN, y_max = NAN;
    // Tick label text (default: shortest of %g forms).
    std::function<std::string(double)> x_format, y_format;
};

// Pixel rectangle of the plot area, for tests.
struct plot_area {
    int x0 = 0, y0 = 0, x1 = 0, y1 = 0;   // inclusive corners, y grows down
};

constexpr uint32_t k_plot_background = 0xFFFFFF;

// Renders and writes an RGB PNG; input_error if it cannot be written.
plot_area plot_write_png(const std::string & path, const plot_spec & spec);

// Distinct colours for series (cycled).
uint32_t plot_palette(int i);

// The sweep's figures for each ctx of the rows, into dir:
//   ppl_vs_block_density_ctxN.png  perplexity change vs block density per
//                                  method, with the Pareto front
//   recall_vs_density_ctxN.png     mass recall vs token density per method
//   layer_density_ctxN.png         per-layer block density per method
// Returns the paths written.
std::vector<std::string> sweep_write_figures(const std::string & dir, const std::vector<sweep_row> & rows);

} // namespace attnlab
