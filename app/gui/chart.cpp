// The app's x/y charts on ImPlot (plot.h's line_plot, scatter_plot and
// histogram_plot): zoom and pan (double click fits), the legend outside the
// data, a colour and marker per series, and PNG + CSV export of each chart
// (chart_export.h). Axis limits come from the caller once, and again when
// the caller's limits change (new data), so a user's zoom survives redraws.
#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include <imgui.h>
#include <implot.h>

#include "chart_export.h"
#include "plot.h"

namespace attnlab_gui {

namespace {

// The limits last applied per chart: re-applied only when the caller's change.
struct applied_limits {
    double x0 = NAN, x1 = NAN, y0 = NAN, y1 = NAN;
};
std::map<ImGuiID, applied_limits> g_limits;

ImPlotCond limits_cond(const char * id, const axis_spec & x, const axis_spec & y) {
    applied_limits & a = g_limits[ImGui::GetID(id)];
    if (a.x0 == x.lo && a.x1 == x.hi && a.y0 == y.lo && a.y1 == y.hi) return ImPlotCond_Once;
    a = {x.lo, x.hi, y.lo, y.hi};
    return ImPlotCond_Always;
}

ImPlotMarker marker_of(size_t i) { return ImPlotMarker(series_marker(i)); }

// Finite points only (and positive ones on log axes).
void finite_points(const series & s, const axis_spec & x, const axis_spec & y, std::vector<double> & xs,
                   std::vector<double> & ys, std::vector<int> * idx = nullptr) {
    xs.clear();
    ys.clear();
    if (idx) idx->clear();
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
        if ((x.log && s.x[i] <= 0) || (y.log && s.y[i] <= 0)) continue;
        xs.push_back(s.x[i]);
        ys.push_back(s.y[i]);
        if (idx) idx->push_back(int(i));
    }
}

// Axes, limits and the outside legend; false when the chart is clipped away.
bool chart_begin(const char * id, ImVec2 size, const axis_spec & x, const axis_spec & y, bool legend) {
    chart_export_buttons(id);
    size.y -= ImGui::GetFrameHeightWithSpacing();
    if (size.x < 60 || size.y < 60) return false;
    if (!ImPlot::BeginPlot(id, size, ImPlotFlags_NoTitle | (legend ? 0 : ImPlotFlags_NoLegend))) return false;
    ImPlot::SetupAxes(x.label.c_str(), y.label.c_str());
    if (x.log) ImPlot::SetupAxisScale(ImAxis_X1, ImPlotScale_Log10);
    if (y.log) ImPlot::SetupAxisScale(ImAxis_Y1, ImPlotScale_Log10);
    ImPlot::SetupAxesLimits(x.lo, x.hi, y.lo, y.hi, limits_cond(id, x, y));
    ImPlot::SetupLegend(ImPlotLocation_NorthEast, ImPlotLegendFlags_Outside);
    ImPlot::SetupFinish();
    return true;
}

void marks_draw(const std::vector<vline> & marks) {
    for (size_t i = 0; i < marks.size(); ++i) {
        const vline & m = marks[i];
        ImPlotSpec sp;
        sp.LineColor = ImGui::ColorConvertU32ToFloat4(m.color);
        sp.LineWeight = 1.5f;
        const std::string label = (m.label.empty() ? std::string("##mark") : m.label) + "##m" + std::to_string(i);
        ImPlot::PlotInfLines(label.c_str(), &m.x, 1, sp);
    }
}

} // namespace

ImU32 series_color(size_t i) {
    // Tableau 20, brightened for a dark background
    static const ImU32 c[20] = {
        IM_COL32(78, 141, 214, 255),  IM_COL32(174, 199, 232, 255), IM_COL32(255, 127, 14, 255),  IM_COL32(255, 187, 120, 255),
        IM_COL32(64, 190, 64, 255),   IM_COL32(152, 223, 138, 255), IM_COL32(234, 72, 73, 255),   IM_COL32(255, 152, 150, 255),
        IM_COL32(168, 120, 210, 255), IM_COL32(197, 176, 213, 255), IM_COL32(180, 110, 95, 255),  IM_COL32(196, 156, 148, 255),
        IM_COL32(240, 119, 210, 255), IM_COL32(247, 182, 210, 255), IM_COL32(160, 160, 160, 255), IM_COL32(210, 210, 210, 255),
        IM_COL32(208, 208, 54, 255),  IM_COL32(219, 219, 141, 255), IM_COL32(23, 210, 227, 255),  IM_COL32(158, 218, 229, 255)};
    return c[i % 20];
}

int series_marker(size_t i) {
    static const ImPlotMarker m[10] = {ImPlotMarker_Circle, ImPlotMarker_Square, ImPlotMarker_Diamond, ImPlotMarker_Up,
                                       ImPlotMarker_Down,   ImPlotMarker_Left,   ImPlotMarker_Right,   ImPlotMarker_Cross,
                                       ImPlotMarker_Plus,   ImPlotMarker_Asterisk};
    return m[(i % 10 + i / 20) % 10];   // shifted every 20 so a colour's repeat gets another marker
}

double line_plot(const char * id, ImVec2 size, const std::vector<series> & ss, axis_spec x, axis_spec y,
                 const std::vector<vline> & marks) {
    double hx = std::nan("");
    ImGui::PushID(id);
    ImGui::BeginGroup();   // buttons + chart: one item for the caller's SameLine
    chart_export_data(id, ss);
    if (chart_begin(id, size, x, y, true)) {
        std::vector<double> xs, ys;
        for (size_t k = 0; k < ss.size(); ++k) {
            const series & s = ss[k];
            finite_points(s, x, y, xs, ys);
            ImPlotSpec sp;
            sp.LineColor = ImGui::ColorConvertU32ToFloat4(s.color);
            sp.LineWeight = s.thickness;
            if (s.markers) {
                sp.Marker = marker_of(k);
                sp.MarkerSize = 3.5f;
            }
            const std::string label = s.name.empty() ? "##s" + std::to_string(k) : s.name;
            ImPlot::PlotLine(label.c_str(), xs.data(), ys.data(), int(xs.size()), sp);
        }
        marks_draw(marks);
        if (ImPlot::IsPlotHovered()) hx = ImPlot::GetPlotMousePos().x;
        ImPlot::EndPlot();
        chart_export_rect(id);
    }
    ImGui::EndGroup();
    ImGui::PopID();
    return hx;
}

void histogram_plot(const char * id, ImVec2 size, const std::vector<double> & edges, const std::vector<double> & counts,
                    const axis_spec & x, const std::string & ylabel, const std::vector<vline> & marks, ImU32 color) {
    ImGui::PushID(id);
    ImGui::BeginGroup();   // buttons + chart: one item for the caller's SameLine
    series bars{"count", {}, {}, color};
    for (size_t i = 0; i + 1 < edges.size() && i < counts.size(); ++i) {
        bars.x.push_back(0.5 * (edges[i] + edges[i + 1]));
        bars.y.push_back(counts[i]);
    }
    chart_export_data(id, {bars});
    double ymax = 1;
    for (double c : counts) ymax = std::max(ymax, c);
    if (chart_begin(id, size, x, axis_spec{0, ymax * 1.1, false, ylabel}, !marks.empty())) {
        ImPlotSpec sp;
        sp.FillColor = ImGui::ColorConvertU32ToFloat4(color);
        sp.LineColor = sp.FillColor;
        for (size_t i = 0; i + 1 < edges.size() && i < counts.size(); ++i) {
            // bars as wide as their bin (bins may differ in width)
            const double cx = 0.5 * (edges[i] + edges[i + 1]), w = 0.95 * (edges[i + 1] - edges[i]);
            ImPlot::PlotBars("##bins", &cx, &counts[i], 1, w, sp);
        }
        marks_draw(marks);
        if (ImPlot::IsPlotHovered()) {
            const double mx = ImPlot::GetPlotMousePos().x;
            for (size_t i = 0; i + 1 < edges.size() && i < counts.size(); ++i)
                if (mx >= edges[i] && mx < edges[i + 1])
                    ImGui::SetTooltip("[%s, %s): %.0f", format_tick(edges[i]).c_str(), format_tick(edges[i + 1]).c_str(),
                                      counts[i]);
        }
        ImPlot::EndPlot();
        chart_export_rect(id);
    }
    ImGui::EndGroup();
    ImGui::PopID();
}

plot_hit scatter_plot(const char * id, ImVec2 size, const std::vector<series> & ss, axis_spec x, axis_spec y,
                      const std::vector<vline> & marks, bool legend) {
    plot_hit hit;
    ImGui::PushID(id);
    ImGui::BeginGroup();   // buttons + chart: one item for the caller's SameLine
    chart_export_data(id, ss);
    if (chart_begin(id, size, x, y, legend)) {
        std::vector<double> xs, ys;
        std::vector<int> idx;
        const bool hovered = ImPlot::IsPlotHovered();
        const ImVec2 mp = ImGui::GetIO().MousePos;
        float best = 8.0f * 8.0f;
        size_t named = 0;
        for (size_t k = 0; k < ss.size(); ++k) {
            const series & s = ss[k];
            finite_points(s, x, y, xs, ys, &idx);
            const ImVec4 col = ImGui::ColorConvertU32ToFloat4(s.color);
            const std::string label = s.name.empty() ? "##s" + std::to_string(k) : s.name;
            if (s.thickness > 0) {
                ImPlotSpec sp;
                sp.LineColor = col;
                sp.LineWeight = s.thickness;
                ImPlot::PlotLine(label.c_str(), xs.data(), ys.data(), int(xs.size()), sp);
            }
            if (s.markers) {
                ImPlotSpec sp;
                sp.Marker = s.ring ? ImPlotMarker_Circle : marker_of(s.name.empty() ? 0 : named);
                sp.MarkerSize = s.marker_size;
                sp.MarkerLineColor = col;
                sp.MarkerFillColor = s.ring ? ImVec4(0, 0, 0, 0) : col;
                sp.LineWeight = s.ring ? 2.5f : 1.0f;
                ImPlot::PlotScatter(label.c_str(), xs.data(), ys.data(), int(xs.size()), sp);
                if (hovered) {
                    for (size_t i = 0; i < xs.size(); ++i) {
                        const ImVec2 p = ImPlot::PlotToPixels(xs[i], ys[i]);
                        const float dx = p.x - mp.x, dy = p.y - mp.y;
                        if (dx * dx + dy * dy < best) {
                            best = dx * dx + dy * dy;
                            hit.series = int(k);
                            hit.point = idx[i];
                        }
                    }
                }
            }
            if (!s.name.empty()) ++named;
        }
        marks_draw(marks);
        if (hit.series >= 0) {
            const series & s = ss[hit.series];
            const ImVec2 c = ImPlot::PlotToPixels(s.x[hit.point], s.y[hit.point]);
            ImPlot::GetPlotDrawList()->AddCircle(c, 7.0f, IM_COL32(255, 255, 255, 255), 0, 2.0f);
        }
        ImPlot::EndPlot();
        chart_export_rect(id);
    }
    ImGui::EndGroup();
    ImGui::PopID();
    return hit;
}

} // namespace attnlab_gui
