#include "plot.h"

#include <GL/gl.h>

#include <cmath>
#include <cstdarg>
#include <cstdio>

namespace attnlab_gui {

gl_texture::~gl_texture() {
    if (tex_) glDeleteTextures(1, &tex_);
}

void gl_texture::upload(const uint32_t * rgba, int w, int h) {
    if (!tex_) {
        glGenTextures(1, &tex_);
        glBindTexture(GL_TEXTURE_2D, tex_);
        // Nearest: one texel is one pooled cell; blurring would invent values.
        glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
        glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
        glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
        glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
    }
    glBindTexture(GL_TEXTURE_2D, tex_);
    glPixelStorei(GL_UNPACK_ALIGNMENT, 4);
    glPixelStorei(GL_UNPACK_ROW_LENGTH, 0);
    if (w != w_ || h != h_) {
        glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, w, h, 0, GL_RGBA, GL_UNSIGNED_BYTE, rgba);
        w_ = w;
        h_ = h;
    } else {
        glTexSubImage2D(GL_TEXTURE_2D, 0, 0, 0, w, h, GL_RGBA, GL_UNSIGNED_BYTE, rgba);
    }
}

uint32_t color_of(double v, const value_scale & s, colormap cm) {
    rgb8 c = colormap_eval(cm, s.normalize(v));
    return IM_COL32(c.r, c.g, c.b, 255);
}

void colorize(const float * v, size_t n, const value_scale & s, colormap cm, uint32_t * rgba) {
    // A 1024-entry lookup keeps this cheap for a full-screen map.
    static thread_local std::vector<uint32_t> lut;
    static thread_local colormap lut_cm = colormap::grays;
    if (lut.empty() || lut_cm != cm) {
        lut.resize(1025);
        for (int i = 0; i <= 1024; ++i) {
            rgb8 c = colormap_eval(cm, i / 1024.0);
            lut[i] = IM_COL32(c.r, c.g, c.b, 255);
        }
        lut_cm = cm;
    }
    const uint32_t nan_col = color_of(std::nan(""), s, cm);
    for (size_t i = 0; i < n; ++i) {
        double t = s.normalize(v[i]);
        if (std::isnan(t)) {
            rgba[i] = nan_col;
            continue;
        }
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        rgba[i] = lut[size_t(t * 1024.0 + 0.5)];
    }
}

double axis_to_px(const axis_spec & a, double v, float p0, float p1) {
    if (a.log) {
        double l0 = std::log10(a.lo), l1 = std::log10(a.hi);
        return p0 + (std::log10(std::max(v, 1e-300)) - l0) / (l1 - l0) * (p1 - p0);
    }
    return p0 + (v - a.lo) / (a.hi - a.lo) * (p1 - p0);
}

double axis_to_val(const axis_spec & a, double px, float p0, float p1) {
    double t = (px - p0) / (p1 - p0);
    if (a.log) return std::pow(10.0, std::log10(a.lo) + t * (std::log10(a.hi) - std::log10(a.lo)));
    return a.lo + t * (a.hi - a.lo);
}

static std::vector<double> ticks_of(const axis_spec & a, int target) {
    if (!a.log) return nice_ticks(a.lo, a.hi, target);
    std::vector<double> t = log_ticks(a.lo, a.hi, target);
    if (t.size() >= 3) return t;
    // Less than two decades: 1-2-5 ticks, so a short log axis still has labels.
    t.clear();
    for (int e = int(std::floor(std::log10(a.lo))); e <= int(std::ceil(std::log10(a.hi))); ++e) {
        for (double m : {1.0, 2.0, 5.0}) {
            double v = m * std::pow(10.0, e);
            if (v >= a.lo * (1 - 1e-9) && v <= a.hi * (1 + 1e-9)) t.push_back(v);
        }
    }
    return t;
}

void draw_axes(ImDrawList * dl, ImVec2 p0, ImVec2 p1, const axis_spec & x, const axis_spec & y, bool y_down,
               bool grid) {
    const ImU32 col_text = ImGui::GetColorU32(ImGuiCol_Text);
    const ImU32 col_tick = IM_COL32(200, 200, 200, 200);
    const ImU32 col_grid = IM_COL32(255, 255, 255, 28);
    const float fh = ImGui::GetFontSize();
    dl->AddRect(p0, p1, col_tick);
    int xt = std::max(2, int((p1.x - p0.x) / 90));
    for (double v : ticks_of(x, xt)) {
        float px = float(axis_to_px(x, v, p0.x, p1.x));
        if (px < p0.x - 0.5f || px > p1.x + 0.5f) continue;
        if (grid) dl->AddLine(ImVec2(px, p0.y), ImVec2(px, p1.y), col_grid);
        dl->AddLine(ImVec2(px, p1.y), ImVec2(px, p1.y + 4), col_tick);
        std::string s = format_tick(v);
        float w = ImGui::CalcTextSize(s.c_str()).x;
        dl->AddText(ImVec2(px - w * 0.5f, p1.y + 5), col_text, s.c_str());
    }
    int yt = std::max(2, int((p1.y - p0.y) / 60));
    for (double v : ticks_of(y, yt)) {
        float py = y_down ? float(axis_to_px(y, v, p0.y, p1.y)) : float(axis_to_px(y, v, p1.y, p0.y));
        if (py < p0.y - 0.5f || py > p1.y + 0.5f) continue;
        if (grid) dl->AddLine(ImVec2(p0.x, py), ImVec2(p1.x, py), col_grid);
        dl->AddLine(ImVec2(p0.x - 4, py), ImVec2(p0.x, py), col_tick);
        std::string s = format_tick(v);
        float w = ImGui::CalcTextSize(s.c_str()).x;
        dl->AddText(ImVec2(p0.x - 6 - w, py - fh * 0.5f), col_text, s.c_str());
    }
    if (!x.label.empty()) {
        float w = ImGui::CalcTextSize(x.label.c_str()).x;
        dl->AddText(ImVec2((p0.x + p1.x - w) * 0.5f, p1.y + 6 + fh), col_text, x.label.c_str());
    }
    if (!y.label.empty()) {
        // No rotated text in ImGui 1.86: the y label sits above the axis.
        dl->AddText(ImVec2(p0.x - 4, p0.y - fh - 4), col_text, y.label.c_str());
    }
}

void draw_colorbar(ImDrawList * dl, ImVec2 p0, ImVec2 size, colormap cm, const value_scale & s, const char * label) {
    const int steps = 64;
    for (int i = 0; i < steps; ++i) {
        double t0 = 1.0 - double(i) / steps, t1 = 1.0 - double(i + 1) / steps;
        rgb8 c = colormap_eval(cm, 0.5 * (t0 + t1));
        dl->AddRectFilled(ImVec2(p0.x, p0.y + size.y * i / steps), ImVec2(p0.x + size.x, p0.y + size.y * (i + 1) / steps + 1),
                          IM_COL32(c.r, c.g, c.b, 255));
    }
    const ImU32 col_text = ImGui::GetColorU32(ImGuiCol_Text);
    dl->AddRect(p0, ImVec2(p0.x + size.x, p0.y + size.y), IM_COL32(200, 200, 200, 200));
    std::vector<double> ticks;
    if (s.kind == value_scale::log10) ticks = log_ticks(s.lo, s.hi, int(size.y / 28));
    else if (s.kind == value_scale::symmetric) ticks = nice_ticks(-s.hi, s.hi, 4);
    else ticks = nice_ticks(s.lo, s.hi, std::max(2, int(size.y / 50)));
    const float fh = ImGui::GetFontSize();
    for (double v : ticks) {
        double t = s.normalize(v);
        if (t < -1e-6 || t > 1 + 1e-6) continue;
        float py = p0.y + float((1.0 - t) * size.y);
        dl->AddLine(ImVec2(p0.x + size.x, py), ImVec2(p0.x + size.x + 4, py), col_text);
        std::string str = format_tick(v);
        dl->AddText(ImVec2(p0.x + size.x + 6, py - fh * 0.5f), col_text, str.c_str());
    }
    if (label) dl->AddText(ImVec2(p0.x, p0.y - fh - 4), col_text, label);
}

grid_result cell_grid(const char * id, ImVec2 size, const float * values, int rows, int cols, const value_scale & s,
                      colormap cm, const char * row_label, const char * col_label, const char * bar_label, int sel_row,
                      int sel_col, const std::vector<std::string> * row_names) {
    grid_result r;
    ImGui::PushID(id);
    ImVec2 origin = ImGui::GetCursorScreenPos();
    ImGui::InvisibleButton("grid", size);
    bool hovered = ImGui::IsItemHovered();
    bool clicked = ImGui::IsItemClicked(ImGuiMouseButton_Left);
    ImDrawList * dl = ImGui::GetWindowDrawList();
    const float fh = ImGui::GetFontSize();
    const float bar_w = 90;
    ImVec2 p0(origin.x + 44, origin.y + fh + 8), p1(origin.x + size.x - bar_w, origin.y + size.y - fh - 10);
    if (rows <= 0 || cols <= 0 || p1.x <= p0.x || p1.y <= p0.y) {
        ImGui::PopID();
        return r;
    }
    const float cw = (p1.x - p0.x) / cols, ch = (p1.y - p0.y) / rows;
    for (int i = 0; i < rows; ++i) {
        for (int j = 0; j < cols; ++j) {
            ImVec2 a(p0.x + j * cw, p0.y + i * ch), b(p0.x + (j + 1) * cw, p0.y + (i + 1) * ch);
            dl->AddRectFilled(a, ImVec2(b.x - (cw > 6 ? 1 : 0), b.y - (ch > 6 ? 1 : 0)),
                              color_of(values[size_t(i) * cols + j], s, cm));
        }
    }
    if (sel_row >= 0 && sel_col >= 0 && sel_row < rows && sel_col < cols) {
        dl->AddRect(ImVec2(p0.x + sel_col * cw - 1, p0.y + sel_row * ch - 1),
                    ImVec2(p0.x + (sel_col + 1) * cw + 1, p0.y + (sel_row + 1) * ch + 1), IM_COL32(255, 255, 255, 255),
                    0, 0, 2.0f);
    }
    const ImU32 tc = ImGui::GetColorU32(ImGuiCol_Text);
    int every_r = std::max(1, int(std::ceil(fh * 1.1f / ch)));
    for (int i = 0; i < rows; i += every_r) {
        std::string s = row_names ? (*row_names)[i] : std::to_string(i);
        float w = ImGui::CalcTextSize(s.c_str()).x;
        dl->AddText(ImVec2(p0.x - 6 - w, p0.y + (i + 0.5f) * ch - fh * 0.5f), tc, s.c_str());
    }
    int every_c = std::max(1, int(std::ceil(fh * 2.0f / cw)));
    for (int j = 0; j < cols; j += every_c) {
        std::string s = std::to_string(j);
        float w = ImGui::CalcTextSize(s.c_str()).x;
        dl->AddText(ImVec2(p0.x + (j + 0.5f) * cw - w * 0.5f, p1.y + 3), tc, s.c_str());
    }
    dl->AddText(ImVec2(p0.x - 40, p0.y - fh - 6), tc, row_label);
    float clw = ImGui::CalcTextSize(col_label).x;
    dl->AddText(ImVec2((p0.x + p1.x - clw) * 0.5f, p0.y - fh - 6), tc, col_label);
    draw_colorbar(dl, ImVec2(p1.x + 14, p0.y + 4), ImVec2(16, p1.y - p0.y - 8), cm, s, bar_label);
    if (hovered) {
        ImVec2 mp = ImGui::GetIO().MousePos;
        int j = int((mp.x - p0.x) / cw), i = int((mp.y - p0.y) / ch);
        if (mp.x >= p0.x && mp.y >= p0.y && i >= 0 && i < rows && j >= 0 && j < cols) {
            r.hover_row = i;
            r.hover_col = j;
            if (clicked) {
                r.click_row = i;
                r.click_col = j;
            }
        }
    }
    ImGui::PopID();
    return r;
}

disk_plot_result disk_plot(const char * id, ImVec2 size, const std::vector<disk_point> & pts,
                           const std::vector<disk_edge> & edges) {
    disk_plot_result r;
    ImGui::PushID(id);
    ImVec2 origin = ImGui::GetCursorScreenPos();
    ImGui::InvisibleButton("disk", size);
    const bool hovered = ImGui::IsItemHovered(), active = ImGui::IsItemActive();
    ImDrawList * dl = ImGui::GetWindowDrawList();
    const float rad = std::max(10.0f, std::min(size.x, size.y) * 0.5f - 8.0f);
    const ImVec2 c(origin.x + size.x * 0.5f, origin.y + size.y * 0.5f);
    auto to_px = [&](disk_pt z) { return ImVec2(c.x + float(z.real()) * rad, c.y - float(z.imag()) * rad); };
    auto to_disk = [&](ImVec2 p) {
        disk_pt z((p.x - c.x) / rad, -(p.y - c.y) / rad);
        double a = std::abs(z);
        return a > 0.97 ? z * (0.97 / a) : z;  // keep drags away from the boundary
    };
    dl->AddCircleFilled(c, rad, IM_COL32(20, 22, 28, 255), 128);
    dl->AddCircle(c, rad, IM_COL32(200, 200, 200, 220), 128, 1.5f);
    // Faint hyperbolic distance rings around the origin (d = 1, 2, 3, 4: |z| = tanh(d/2)).
    for (int d = 1; d <= 4; ++d) dl->AddCircle(c, rad * float(std::tanh(d * 0.5)), IM_COL32(255, 255, 255, 22), 96);
    dl->PushClipRect(ImVec2(c.x - rad - 2, c.y - rad - 2), ImVec2(c.x + rad + 2, c.y + rad + 2), true);
    std::vector<ImVec2> line;
    for (const auto & e : edges) {
        if (e.a < 0 || e.b < 0 || e.a >= int(pts.size()) || e.b >= int(pts.size())) continue;
        std::vector<disk_pt> g = disk_geodesic(pts[e.a].z, pts[e.b].z, 24);
        line.clear();
        for (auto & z : g) line.push_back(to_px(z));
        dl->AddPolyline(line.data(), int(line.size()), e.color, 0, e.thickness);
    }
    ImVec2 mp = ImGui::GetIO().MousePos;
    float best = 7.0f * 7.0f;
    for (size_t i = 0; i < pts.size(); ++i) {
        ImVec2 p = to_px(pts[i].z);
        float s = pts[i].size;
        if (pts[i].square) dl->AddRectFilled(ImVec2(p.x - s, p.y - s), ImVec2(p.x + s, p.y + s), pts[i].color);
        else dl->AddCircleFilled(p, s, pts[i].color, 12);
        float dx = p.x - mp.x, dy = p.y - mp.y;
        if (hovered && dx * dx + dy * dy < best) {
            best = dx * dx + dy * dy;
            r.hover = int(i);
        }
    }
    if (r.hover >= 0) dl->AddCircle(to_px(pts[r.hover].z), 7.0f, IM_COL32(255, 255, 255, 255), 0, 2.0f);
    dl->PopClipRect();
    ImVec2 d = ImGui::GetIO().MouseDelta;
    if (active && ImGui::IsMouseDragging(ImGuiMouseButton_Left, 0.0f) && (d.x != 0 || d.y != 0)) {
        r.dragged = true;
        r.drag_from = to_disk(ImVec2(mp.x - d.x, mp.y - d.y));
        r.drag_to = to_disk(mp);
    }
    if (hovered && ImGui::IsMouseDoubleClicked(ImGuiMouseButton_Left)) r.reset = true;
    ImGui::PopID();
    return r;
}

void caption(const char * fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char buf[1024];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ImGui::PushStyleColor(ImGuiCol_Text, ImGui::GetStyleColorVec4(ImGuiCol_TextDisabled));
    ImGui::TextWrapped("%s", buf);
    ImGui::PopStyleColor();
}

} // namespace attnlab_gui
