#include "map_common.h"

#include <chrono>
#include <cmath>

#include "methods/method.h"
#include "data/capture.h"

namespace attnlab_gui {

timed_selection compute_selection(const attnlab::qkv_capture & cap, size_t layer_index, int head,
                                  const std::string & method_spec) {
    timed_selection r;
    auto m = attnlab::method_create(method_spec);
    r.method = m->spec();
    attnlab::attention_layer_io io = capture_layer_io(cap, layer_index);
    auto t0 = std::chrono::steady_clock::now();
    r.sel = std::make_shared<const attnlab::selection>(m->select(attnlab::head_inputs_of(io, head)));
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

static value_scale scale_for(map_layer which, const head_map & m, const map_style & st) {
    if (which == map_layer::kept) return {value_scale::linear, 0.0, 1.0};
    if (which == map_layer::diff) {
        return {value_scale::symmetric, 0.0, st.log ? std::max(1e-6, 0.1 * m.max_weight * st.lin_max)
                                                    : std::max(1e-6, m.max_weight * st.lin_max)};
    }
    if (st.log) return {value_scale::log10, st.log_floor, 1.0};
    return {value_scale::linear, 0.0, std::max(1e-9, double(m.max_weight * st.lin_max))};
}

static const std::vector<lod_level> & levels_of(const head_map & m, map_layer which) {
    return which == map_layer::sparse ? m.sparse : which == map_layer::kept ? m.kept : m.dense;
}

static const lod_level & window_level(const map_window & w, map_layer which) {
    return which == map_layer::sparse ? w.sparse : which == map_layer::kept ? w.kept : w.dense;
}

// Pools layer `which` (never diff) into out, from the best source for the zoom.
static std::string pool_layer(const head_map & m, const map_window * w, map_layer which, const map_viewport & vp,
                              int pw, int ph, pool_mode mode, float * out, bool & need_window) {
    const auto & lv = levels_of(m, which);
    std::vector<int> factors;
    for (const auto & l : lv) factors.push_back(l.factor);
    double tpp = std::max((vp.x1 - vp.x0) / pw, (vp.y1 - vp.y0) / ph);
    int li = lod_pick_level(factors, tpp);
    need_window = false;
    if (li < 0) {
        bool covers = w && w->dense.row0 <= vp.y0 && w->dense.col0 <= vp.x0 &&
                      w->dense.row0 + w->dense.n_rows >= std::min<double>(vp.y1, m.L) &&
                      w->dense.col0 + w->dense.n_cols >= std::min<double>(vp.x1, m.L);
        if (covers) {
            lod_pool(window_level(*w, which), vp.y0, vp.y1, vp.x0, vp.x1, ph, pw, mode, out);
            return "exact window";
        }
        need_window = true;
        li = 0;  // meanwhile: the finest level, blocky
    }
    lod_pool(lv[li], vp.y0, vp.y1, vp.x0, vp.x1, ph, pw, mode, out);
    return "LOD " + std::to_string(lv[li].factor) + "x" + std::to_string(lv[li].factor);
}

bool draw_map_panel(const char * id, const char * title, map_layer which, const head_map & m, const map_window * w,
                    map_viewport & vp, const map_style & st, map_panel & p, ImVec2 size) {
    ImGui::PushID(id);
    const float fh = ImGui::GetFontSize();
    ImVec2 origin = ImGui::GetCursorScreenPos();
    // Square plot area, leaving room for ticks (left, bottom) and the colour bar (right).
    float side = std::max(64.0f, std::min(size.x - 60 - 90, size.y - 3 * fh - 24));
    ImVec2 p0(origin.x + 60, origin.y + 2 * fh + 10), p1(p0.x + side, p0.y + side);
    int pw = std::max(1, int(side)), ph = pw;
    ImGui::InvisibleButton("map", ImVec2(side + 60 + 90, side + 3 * fh + 24));
    // Interaction first, so this frame draws the new viewport.
    ImGuiIO & io = ImGui::GetIO();
    bool hovered = ImGui::IsItemHovered();
    auto val_x = [&](float px) { return vp.x0 + (px - p0.x) / side * (vp.x1 - vp.x0); };
    auto val_y = [&](float py) { return vp.y0 + (py - p0.y) / side * (vp.y1 - vp.y0); };
    bool inside = hovered && io.MousePos.x >= p0.x && io.MousePos.x < p1.x && io.MousePos.y >= p0.y && io.MousePos.y < p1.y;
    if (inside && io.MouseWheel != 0) {
        double f = std::pow(0.8, io.MouseWheel);
        double ax = val_x(io.MousePos.x), ay = val_y(io.MousePos.y);
        zoom_range(vp.x0, vp.x1, ax, f, 4, 0, m.L);
        zoom_range(vp.y0, vp.y1, ay, f, 4, 0, m.L);
    }
    if (ImGui::IsItemActive() && ImGui::IsMouseDragging(ImGuiMouseButton_Left, 0)) {
        pan_range(vp.x0, vp.x1, -io.MouseDelta.x / side * (vp.x1 - vp.x0), 0, m.L);
        pan_range(vp.y0, vp.y1, -io.MouseDelta.y / side * (vp.y1 - vp.y0), 0, m.L);
    }
    if (inside && ImGui::IsMouseDoubleClicked(ImGuiMouseButton_Left)) vp.fit(m.L);

    value_scale sc = scale_for(which, m, st);
    pool_mode mode = which == map_layer::diff || which == map_layer::kept ? pool_mode::mean : st.pool;
    char keybuf[256];
    std::snprintf(keybuf, sizeof keybuf, "%p|%.9f|%p|%d|%.6f|%.6f|%.6f|%.6f|%d|%d|%d|%d|%g|%g", (const void *) &m,
                  m.seconds, (const void *) w, int(which), vp.x0, vp.x1, vp.y0, vp.y1, pw, int(mode), int(st.cm), int(st.log),
                  st.log_floor, st.lin_max);
    bool need_window = false;
    if (p.key != keybuf || !p.tex.valid()) {
        p.buf.resize(size_t(pw) * ph);
        if (which == map_layer::diff) {
            p.buf2.resize(p.buf.size());
            bool nw1 = false, nw2 = false;
            p.source = pool_layer(m, w, map_layer::sparse, vp, pw, ph, pool_mode::mean, p.buf.data(), nw1);
            pool_layer(m, w, map_layer::dense, vp, pw, ph, pool_mode::mean, p.buf2.data(), nw2);
            for (size_t i = 0; i < p.buf.size(); ++i) p.buf[i] -= p.buf2[i];
            need_window = nw1 || nw2;
        } else {
            p.source = pool_layer(m, w, which, vp, pw, ph, mode, p.buf.data(), need_window);
        }
        p.rgba.resize(p.buf.size());
        colorize(p.buf.data(), p.buf.size(), sc, which == map_layer::diff ? colormap::diverging : st.cm, p.rgba.data());
        p.tex.upload(p.rgba.data(), pw, ph);
        // A pending window keeps the key stale so the image refreshes when it lands.
        p.key = need_window ? std::string() : std::string(keybuf);
    }

    ImDrawList * dl = ImGui::GetWindowDrawList();
    dl->AddText(ImVec2(origin.x, origin.y), ImGui::GetColorU32(ImGuiCol_Text), title);
    dl->AddImage(p.tex.id(), p0, p1);
    axis_spec ax{vp.x0, vp.x1, false, "key position j"}, ay{vp.y0, vp.y1, false, "query i"};
    draw_axes(dl, p0, p1, ax, ay, true, false);
    const char * bar = which == map_layer::diff ? "sparse - dense" : which == map_layer::kept ? "kept fraction"
                                                                                              : (st.log ? "weight (log10)" : "weight");
    draw_colorbar(dl, ImVec2(p1.x + 12, p0.y + 4), ImVec2(16, side - 8),
                  which == map_layer::diff ? colormap::diverging : st.cm, sc, bar);
    // Level-of-detail note under the plot.
    char note[96];
    double tpp = (vp.x1 - vp.x0) / side;
    std::snprintf(note, sizeof note, "%s  %.2f tok/px  %s", p.source.c_str(), tpp,
                  which == map_layer::diff ? "mean" : mode == pool_mode::max ? "max" : "mean");
    dl->AddText(ImVec2(p0.x + side - ImGui::CalcTextSize(note).x, origin.y + fh + 4), IM_COL32(170, 170, 180, 255), note);

    p.hover_i = p.hover_j = -1;
    if (inside) {
        int j = int(std::floor(val_x(io.MousePos.x))), i = int(std::floor(val_y(io.MousePos.y)));
        int px = int(io.MousePos.x - p0.x), py = int(io.MousePos.y - p0.y);
        if (i >= 0 && j >= 0 && i < m.L && j < m.L) {
            p.hover_i = i;
            p.hover_j = j;
            p.hover_pooled = p.buf[size_t(std::min(py, ph - 1)) * pw + std::min(px, pw - 1)];
        }
        // Crosshair on the hovered query row and key column.
        dl->AddLine(ImVec2(io.MousePos.x, p0.y), ImVec2(io.MousePos.x, p1.y), IM_COL32(255, 255, 255, 50));
        dl->AddLine(ImVec2(p0.x, io.MousePos.y), ImVec2(p1.x, io.MousePos.y), IM_COL32(255, 255, 255, 50));
    }
    ImGui::PopID();
    return need_window;
}

} // namespace attnlab_gui
