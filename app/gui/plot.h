#pragma once
// The drawing half of the plotting module (ImGui draw lists + one GL texture
// type): heatmap images, axes with ticks, colour bars, line plots, histograms
// and small cell grids. Every view plots through these; the math lives in
// plot_math.h.
#include <cstdint>
#include <string>
#include <vector>

#include <imgui.h>

#include "plot_math.h"

namespace attnlab_gui {

// An RGBA8 OpenGL texture, resized on demand.
class gl_texture {
public:
    gl_texture() = default;
    gl_texture(const gl_texture &) = delete;
    gl_texture & operator=(const gl_texture &) = delete;
    ~gl_texture();
    void upload(const uint32_t * rgba, int w, int h);
    ImTextureID id() const { return (ImTextureID) (intptr_t) tex_; }
    int width() const { return w_; }
    int height() const { return h_; }
    bool valid() const { return tex_ != 0; }

private:
    unsigned tex_ = 0;
    int w_ = 0, h_ = 0;
};

// Values -> packed RGBA (ImGui's IM_COL32 byte order).
void colorize(const float * v, size_t n, const value_scale & s, colormap cm, uint32_t * rgba);
uint32_t color_of(double v, const value_scale & s, colormap cm);

struct axis_spec {
    double lo = 0, hi = 1;
    bool log = false;
    std::string label;
};

// Ticks, tick labels, grid lines and axis labels around the plot rectangle
// [p0, p1]. y_down: the y axis grows downwards (matrix rows).
void draw_axes(ImDrawList * dl, ImVec2 p0, ImVec2 p1, const axis_spec & x, const axis_spec & y, bool y_down,
               bool grid = true);

// A vertical colour bar with ticks and a label, in [p0, p0 + size].
void draw_colorbar(ImDrawList * dl, ImVec2 p0, ImVec2 size, colormap cm, const value_scale & s, const char * label);

// Pixel <-> value for one axis of a plot rectangle.
double axis_to_px(const axis_spec & a, double v, float p0, float p1);
double axis_to_val(const axis_spec & a, double px, float p0, float p1);

struct series {
    std::string name;
    std::vector<double> x, y;
    ImU32 color = IM_COL32(255, 255, 255, 255);
    bool markers = false;
    float thickness = 2.0f;
    float marker_size = 4.0f;  // scatter_plot
    bool ring = false;         // scatter_plot: hollow marker (highlights)
};

struct vline {
    double x = 0;
    std::string label;
    ImU32 color = IM_COL32(255, 255, 255, 160);
};

// The i-th series' colour: 20 distinct colours; the charts also give the
// i-th named series marker series_marker(i), so (colour, marker) pairs are
// distinct for the first 200 series.
ImU32 series_color(size_t i);
int series_marker(size_t i);   // an ImPlotMarker

// The x/y charts are ImPlot plots (chart.cpp): zoom and pan, double click
// fits, legend outside the data, PNG and CSV export buttons (chart_export.h).
// A line plot with axes, a legend and vertical marker lines; returns the
// hovered x value (NaN when not hovered).
double line_plot(const char * id, ImVec2 size, const std::vector<series> & s, axis_spec x, axis_spec y,
                 const std::vector<vline> & marks = {});

// Histogram bars (counts per bin [edges[i], edges[i+1])) with optional guard lines.
void histogram_plot(const char * id, ImVec2 size, const std::vector<double> & edges, const std::vector<double> & counts,
                    const axis_spec & x, const std::string & ylabel, const std::vector<vline> & marks = {},
                    ImU32 color = IM_COL32(90, 160, 230, 255));

// A rows x cols grid of coloured cells with row/column labels and a colour
// bar; hovered and clicked cells come back through the pointers (-1 if none).
struct grid_result {
    int hover_row = -1, hover_col = -1, click_row = -1, click_col = -1;
};
grid_result cell_grid(const char * id, ImVec2 size, const float * values, int rows, int cols, const value_scale & s,
                      colormap cm, const char * row_label, const char * col_label, const char * bar_label,
                      int sel_row = -1, int sel_col = -1, const std::vector<std::string> * row_names = nullptr);

// A scatter plot: each series' points as markers (and joined by lines when
// thickness > 0), a legend of markers, vertical marks; returns the point
// under the mouse (nearest within 8 px), or -1s.
struct plot_hit {
    int series = -1, point = -1;
};
plot_hit scatter_plot(const char * id, ImVec2 size, const std::vector<series> & s, axis_spec x, axis_spec y,
                      const std::vector<vline> & marks = {}, bool legend = true);

// The Poincaré disk: unit circle, geodesic edges (circle arcs orthogonal to
// the boundary, plot_math.h disk_geodesic), points as dots or squares.
// Dragging reports the motion as disk coordinates (from -> to) so the caller
// can apply a Möbius translation; double click asks for a reset.
struct disk_point {
    disk_pt z;
    ImU32 color = IM_COL32(255, 255, 255, 255);
    bool square = false;
    float size = 3.5f;
};
struct disk_edge {
    int a = 0, b = 0;
    ImU32 color = IM_COL32(255, 255, 255, 120);
    float thickness = 1.0f;
};
struct disk_plot_result {
    int hover = -1;
    bool dragged = false;
    disk_pt drag_from, drag_to;
    bool reset = false;
};
disk_plot_result disk_plot(const char * id, ImVec2 size, const std::vector<disk_point> & pts,
                           const std::vector<disk_edge> & edges);

// Text helpers for the views: a dimmed caption and a right-aligned value table row.
void caption(const char * fmt, ...);

} // namespace attnlab_gui
