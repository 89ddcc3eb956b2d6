#include "chart_export.h"

#include <cstdio>
#include <map>

#include <GLFW/glfw3.h>
#include <imgui.h>
#include <imgui_internal.h>   // the current window's root name (the view id)

#include "base/atomic_write.h"
#include "base/png_write.h"

namespace attnlab_gui {

namespace {

struct png_job {
    std::string path;
    ImVec2 p0, p1;
};

std::string g_dir = "figures";
std::string g_all_dir;          // set: export every chart of the next frame here
bool g_all_armed = false;       // the frame that exports everything has begun
std::map<std::string, std::vector<series>> g_data;   // this frame's, by chart name
std::map<std::string, bool> g_png_wanted;
std::vector<png_job> g_jobs;
std::vector<std::string> g_written;
std::string g_error;

std::string current_name(const char * id) {
    ImGuiWindow * w = ImGui::GetCurrentWindowRead();
    return chart_export_name(w && w->RootWindow ? w->RootWindow->Name : "app", id);
}

const std::string & out_dir() { return g_all_armed ? g_all_dir : g_dir; }

void csv_write(const std::string & name) {
    const std::string path = out_dir() + "/" + name + ".csv";
    std::string t = "series,x,y\n";
    char b[96];
    for (const series & s : g_data[name]) {
        std::string n = s.name.empty() ? "(unnamed)" : s.name;
        for (char & c : n)
            if (c == ',' || c == '"' || c == '\n') c = ' ';
        for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
            std::snprintf(b, sizeof b, ",%.9g,%.9g\n", s.x[i], s.y[i]);
            t += n + b;
        }
    }
    try {
        attnlab::dir_create_all(out_dir(), "figures");
        attnlab::write_file_atomic(path, t);
        g_written.push_back(path);
    } catch (const std::exception & e) {
        g_error = e.what();
    }
}

} // namespace

std::string chart_export_name(const std::string & window_name, const std::string & chart_id) {
    const size_t h = window_name.find("###");
    std::string view = h == std::string::npos ? window_name : window_name.substr(h + 3);
    const size_t slash = view.find('/');
    if (slash != std::string::npos) view = view.substr(0, slash);
    std::string n = view + "_" + chart_id;
    for (char & c : n)
        if (!(std::isalnum((unsigned char) c) || c == '_' || c == '-')) c = '_';
    return n;
}

void chart_export_data(const char * id, const std::vector<series> & ss) { g_data[current_name(id)] = ss; }

void chart_export_buttons(const char * id) {
    const std::string name = current_name(id);
    if (ImGui::SmallButton("PNG")) g_png_wanted[name] = true;
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("save this chart as %s/%s.png", g_dir.c_str(), name.c_str());
    ImGui::SameLine();
    if (ImGui::SmallButton("CSV")) csv_write(name);
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("save this chart's data as %s/%s.csv", g_dir.c_str(), name.c_str());
    if (!g_written.empty()) {
        ImGui::SameLine();
        ImGui::TextDisabled("last saved: %s", g_written.back().c_str());
    }
}

void chart_export_rect(const char * id) {
    const std::string name = current_name(id);
    const bool all = g_all_armed;
    if (all) csv_write(name);
    if (all || g_png_wanted[name]) {
        g_jobs.push_back({out_dir() + "/" + name + ".png", ImGui::GetItemRectMin(), ImGui::GetItemRectMax()});
        g_png_wanted[name] = false;
    }
}

void chart_export_dir_set(const std::string & dir) { g_dir = dir.empty() ? "figures" : dir; }
const std::string & chart_export_dir() { return g_dir; }

void chart_export_all(const std::string & dir) {
    g_all_dir = dir;
    g_all_armed = false;   // armed at the next frame's render: this frame may be half drawn
}

void chart_export_after_render(int fb_w, int fb_h, float fb_scale) {
    for (const png_job & j : g_jobs) {
        const int x0 = std::max(0, int(j.p0.x * fb_scale)), x1 = std::min(fb_w, int(j.p1.x * fb_scale));
        const int y0 = std::max(0, int(j.p0.y * fb_scale)), y1 = std::min(fb_h, int(j.p1.y * fb_scale));
        const int w = x1 - x0, h = y1 - y0;
        if (w <= 0 || h <= 0) continue;
        std::vector<uint8_t> px(size_t(w) * h * 3), rows(px.size());
        glPixelStorei(GL_PACK_ALIGNMENT, 1);
        glReadBuffer(GL_BACK);
        glReadPixels(x0, fb_h - y1, w, h, GL_RGB, GL_UNSIGNED_BYTE, px.data());
        for (int r = 0; r < h; ++r)   // GL rows go bottom-up
            std::copy(px.begin() + size_t(h - 1 - r) * w * 3, px.begin() + size_t(h - r) * w * 3, rows.begin() + size_t(r) * w * 3);
        try {
            const std::string dir = j.path.substr(0, j.path.rfind('/'));
            attnlab::dir_create_all(dir, "figures");
            attnlab::png_write_rgb(j.path, w, h, rows.data());
            g_written.push_back(j.path);
        } catch (const std::exception & e) {
            g_error = e.what();
        }
    }
    g_jobs.clear();
    g_data.clear();
    if (g_all_armed) {
        g_all_armed = false;
        g_all_dir.clear();
    } else if (!g_all_dir.empty()) {
        g_all_armed = true;   // the next frame exports every chart
    }
}

const std::vector<std::string> & chart_export_written() { return g_written; }
const std::string & chart_export_error() { return g_error; }

} // namespace attnlab_gui
