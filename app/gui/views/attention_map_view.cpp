// Attention map: one head's softmax weights, dense and (with a method) sparse
// and their difference side by side, zoomable from the whole L x L map down to
// single tokens through LOD pooling; exact windows are computed in the background.
#include <cmath>

#include <imgui.h>
#include <stdexcept>
#include <imgui_stdlib.h>

#include "methods/method.h"
#include "map_common.h"
#include "view.h"
#include "data/capture.h"

namespace attnlab_gui {

namespace {

std::string fmt_ms(double s) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f ms", s * 1e3);
    return b;
}

const char * k_method_presets[] = {"block_topk:rho=0.2,B=64", "block_topk:rho=0.1,B=32", "oracle_topk:rho=0.1",
                                   "sinks_window:g=4,w=256",  "window:w=128",            "strided:m=64,w=64",
                                   "bigbird:w=64,g=16,r=32",  "random:p=0.1"};

class attention_map_view : public view {
public:
    explicit attention_map_view(app_state & s) : view(s) {
        auto recompute = [this](const event &) { request_map(); };
        st_.bus.subscribe(event_kind::capture_loaded, [this](const event &) {
            fit_pending_ = true;
            request_map();
        });
        st_.bus.subscribe(event_kind::head_selected, recompute);
        st_.bus.subscribe(event_kind::method_changed, [this](const event & e) {
            method_edit_ = e.text;
            if (compare_) request_map();
        });
    }

    // Layer and head keys are the app's (main.cpp), for every view.
    void on_keys() override {
        if (!st_.cap || !map_) return;
        double cx = 0.5 * (vp_.x0 + vp_.x1), cy = 0.5 * (vp_.y0 + vp_.y1);
        if (ImGui::IsKeyPressed(ImGuiKey_Equal) || ImGui::IsKeyPressed(ImGuiKey_KeypadAdd)) zoom(cx, cy, 0.5);
        if (ImGui::IsKeyPressed(ImGuiKey_Minus) || ImGui::IsKeyPressed(ImGuiKey_KeypadSubtract)) zoom(cx, cy, 2.0);
        if (ImGui::IsKeyPressed(ImGuiKey_F) || ImGui::IsKeyPressed(ImGuiKey_0)) vp_.fit(map_->L);
    }

    bool on_script(const std::string & cmd, const std::vector<std::string> & a) override {
        if (cmd == "zoom" && a.size() == 4) {  // rows r0 r1, cols c0 c1
            vp_.y0 = std::stod(a[0]); vp_.y1 = std::stod(a[1]);
            vp_.x0 = std::stod(a[2]); vp_.x1 = std::stod(a[3]);
            fit_pending_ = false;
            return true;
        }
        if (cmd == "fit") { if (map_) vp_.fit(map_->L); return true; }
        if (cmd == "expect_zoomed") {   // the viewport shows less than the whole map (wheel or keys zoomed in)
            if (!map_) throw std::runtime_error("attention map: no map yet");
            if (vp_.x1 - vp_.x0 >= map_->L - 0.5 && vp_.y1 - vp_.y0 >= map_->L - 0.5)
                throw std::runtime_error("attention map: not zoomed (viewport is the whole map)");
            return true;
        }
        if (cmd == "compare" && a.size() == 1) { set_compare(a[0] == "on"); return true; }
        if (cmd == "scale" && a.size() == 1) { style_.log = a[0] == "log"; return true; }
        if (cmd == "pool" && a.size() == 1) { style_.pool = a[0] == "mean" ? pool_mode::mean : pool_mode::max; return true; }
        if (cmd == "map_device" && a.size() == 1) { set_gpu(a[0] == "gpu"); return true; }
        return false;
    }

    void drawContent() override {
        if (!st_.cap) {
            caption(st_.tasks.busy("capture") || st_.tasks.busy("load") ? "waiting for the capture..."
                                                                       : "no capture yet: open a model and run a capture in Source");
            return;
        }
        if (!map_ && !st_.tasks.busy("map") && map_error_.empty()) request_map();
        draw_controls();
        if (!map_) {
            progress_line("map");
            return;
        }
        if (fit_pending_) {
            vp_.fit(map_->L);
            fit_pending_ = false;
        }
        const bool sparse = map_->has_sparse();
        ImVec2 avail = ImGui::GetContentRegionAvail();
        float info_h = 4.5f * ImGui::GetFrameHeightWithSpacing();
        int n_panels = sparse ? 3 : 1;
        ImVec2 psize(avail.x / n_panels - 8, avail.y - info_h);
        const map_window * w = window_ && window_map_ == map_.get() ? window_.get() : nullptr;
        bool need = draw_map_panel("dense", "dense softmax", map_layer::dense, *map_, w, vp_, style_, panels_[0], psize);
        int hi = panels_[0].hover_i, hj = panels_[0].hover_j;
        if (sparse) {
            ImGui::SameLine();
            std::string t = "sparse: " + method_name_;
            need |= draw_map_panel("sparse", t.c_str(), map_layer::sparse, *map_, w, vp_, style_, panels_[1], psize);
            ImGui::SameLine();
            need |= draw_map_panel("diff", "difference (sparse - dense)", map_layer::diff, *map_, w, vp_, style_,
                                   panels_[2], psize);
            for (int k = 1; k < 3; ++k) {
                if (panels_[k].hover_i >= 0) { hi = panels_[k].hover_i; hj = panels_[k].hover_j; }
            }
        }
        if (need) request_window();
        if (hi >= 0) tooltip(hi, hj);
        draw_info();
    }

    const head_map * current() const { return map_.get(); }
    void set_compare(bool on) {
        if (on != compare_) { compare_ = on; request_map(); }
    }
    // GPU maps (the default when the capture is kept on a GPU) or the CPU's:
    // an explicit choice, never a silent fallback.
    void set_gpu(bool on) {
        if (on != use_gpu_) { use_gpu_ = on; request_map(); }
    }

private:
    void zoom(double cx, double cy, double f) {
        zoom_range(vp_.x0, vp_.x1, cx, f, 4, 0, map_->L);
        zoom_range(vp_.y0, vp_.y1, cy, f, 4, 0, map_->L);
    }

    void progress_line(const char * group) {
        for (const auto & t : st_.tasks.snapshot()) {
            if (t.group != group) continue;
            char buf[128];
            std::snprintf(buf, sizeof buf, "%s %.0f%%", t.stage.c_str(), t.fraction * 100);
            ImGui::ProgressBar(float(t.fraction), ImVec2(300, 0), buf);
        }
        if (!map_error_.empty()) ImGui::TextColored(ImVec4(1, 0.45f, 0.4f, 1), "%s", map_error_.c_str());
    }

    void draw_controls() {
        const auto & cap = *st_.cap;
        int li = st_.layer_index, h = st_.head;
        ImGui::SetNextItemWidth(200);
        std::string lfmt = "layer " + std::to_string(st_.layer_id()) + " (captured #%d)";
        if (ImGui::SliderInt("##layer", &li, 0, int(cap.layers.size()) - 1, lfmt.c_str())) st_.select_head(li, h);
        ImGui::SameLine();
        ImGui::SetNextItemWidth(160);
        if (ImGui::SliderInt("##head", &h, 0, cap.info.n_head - 1, "head %d")) st_.select_head(li, h);
        ImGui::SameLine();
        ImGui::TextDisabled("(arrows: layer/head, wheel: zoom, drag: pan, dbl-click/F: fit)");

        ImGui::SetNextItemWidth(110);
        int sc = style_.log ? 1 : 0;
        const char * scales[] = {"linear", "log"};
        if (ImGui::Combo("scale", &sc, scales, 2)) style_.log = sc == 1;
        ImGui::SameLine();
        if (style_.log) {
            ImGui::SetNextItemWidth(130);
            float fl = float(std::log10(style_.log_floor));
            if (ImGui::SliderFloat("floor 10^", &fl, -8, -1, "%.1f")) style_.log_floor = std::pow(10.0, fl);
        } else {
            ImGui::SetNextItemWidth(130);
            float lm = float(style_.lin_max);
            if (ImGui::SliderFloat("max x", &lm, 0.01f, 1.0f, "%.2f", ImGuiSliderFlags_Logarithmic)) style_.lin_max = lm;
        }
        ImGui::SameLine();
        int pm = style_.pool == pool_mode::max ? 0 : 1;
        ImGui::RadioButton("max pool", &pm, 0);
        ImGui::SameLine();
        ImGui::RadioButton("mean pool", &pm, 1);
        style_.pool = pm == 0 ? pool_mode::max : pool_mode::mean;
        ImGui::SameLine();
        int cm = int(style_.cm);
        const char * cms[] = {"viridis", "magma", "grays"};
        ImGui::SetNextItemWidth(100);
        if (ImGui::Combo("colours", &cm, cms, 3)) style_.cm = colormap(cm);
        ImGui::SameLine();
        if (ImGui::Button("Fit") && map_) vp_.fit(map_->L);
        if (st_.gpu_cap) {
            ImGui::SameLine();
            int dv = use_gpu_ ? 0 : 1;
            ImGui::TextDisabled("map on");
            ImGui::SameLine();
            if (ImGui::RadioButton("GPU", &dv, 0)) set_gpu(true);
            ImGui::SameLine();
            if (ImGui::RadioButton("CPU", &dv, 1)) set_gpu(false);
        }

        bool cmp = compare_;
        if (ImGui::Checkbox("compare with sparse method", &cmp)) set_compare(cmp);
        ImGui::SameLine();
        ImGui::SetNextItemWidth(260);
        if (ImGui::InputText("##method", &method_edit_, ImGuiInputTextFlags_EnterReturnsTrue)) st_.set_method(method_edit_);
        if (method_edit_.empty()) method_edit_ = st_.method_spec;
        ImGui::SameLine();
        ImGui::SetNextItemWidth(200);
        if (ImGui::BeginCombo("##presets", "presets")) {
            for (const char * p : k_method_presets) {
                if (ImGui::Selectable(p)) {
                    method_edit_ = p;
                    st_.set_method(p);
                }
            }
            ImGui::EndCombo();
        }
    }

    void tooltip(int i, int j) {
        const head_map & m = *map_;
        ImGui::BeginTooltip();
        ImGui::Text("query i = %d  '%s'", i, st_.token_text(i).c_str());
        ImGui::Text("key   j = %d  '%s'   (distance %d)", j, st_.token_text(j).c_str(), i - j);
        if (j > i) {
            ImGui::TextDisabled("above the diagonal: masked (causal)");
        } else {
            float a = head_map_weight(m, i, j);
            ImGui::Text("weight A[i,j] = %.3g   (log10 %.2f)", a, a > 0 ? std::log10(a) : -INFINITY);
            if (m.has_sparse()) {
                bool kept = attnlab::selection_contains(*m.sel, i, j);
                float rec = m.row_recall[i];
                ImGui::Text("kept by %s: %s   sparse weight %.3g   row recall %.3f", method_name_.c_str(),
                            kept ? "yes" : "no", kept && rec > 0 ? a / rec : 0.0f, rec);
            }
            ImGui::TextDisabled("row %d: entropy %.2f nats, max weight %.3g", i, m.row_entropy[i], m.row_inv_sum[i]);
        }
        double tpp = (vp_.x1 - vp_.x0) / 600.0;
        if (tpp > 1) ImGui::TextDisabled("pixel (pooled, %s): %.3g", style_.pool == pool_mode::max ? "max" : "mean",
                                         panels_[0].hover_pooled);
        // A little context around the query.
        std::string ctx;
        for (int t = std::max(0, i - 8); t <= i; ++t) ctx += st_.token_text(t);
        ImGui::TextDisabled("...%s", ctx.c_str());
        ImGui::EndTooltip();
    }

    void draw_info() {
        const head_map & m = *map_;
        ImGui::Text("layer %d head %d (KV head %d)   L = %d   mean row entropy %.2f nats (uniform would be %.2f)",
                    m.layer, m.head, capture_layer_io(*st_.cap, m.layer_index).kv_head_of(m.head), m.L, m.mean_entropy,
                    [&] { double s = 0; for (int i = 0; i < m.L; ++i) s += std::log(double(i + 1)); return s / m.L; }());
        ImGui::Text("map recompute (measured): %.1f ms at L = %d%s on %s%s   |   LOD finest %dx%d, %zu levels, %s   |   exact window %s",
                    m.seconds * 1e3, m.L, m.has_sparse() ? " (dense + sparse)" : "", m.device.c_str(),
                    m.kernel_seconds > 0 ? (" (kernels " + fmt_ms(m.kernel_seconds) + ")").c_str() : "",
                    m.finest_factor(), m.finest_factor(),
                    m.dense.size(), format_si(double(m.bytes()), "B").c_str(),
                    window_ && window_map_ == map_.get()
                        ? (std::to_string(window_->dense.n_rows) + "x" + std::to_string(window_->dense.n_cols) + " in " +
                           std::to_string(int(window_->seconds * 1e3)) + " ms").c_str()
                        : "none");
        if (m.has_sparse()) {
            double rec = 0;
            for (float r : m.row_recall) rec += r;
            ImGui::Text("%s: token density %.3f, block density %.3f, mass recall %.3f, predictor %.2f ms (measured, separate)",
                        method_name_.c_str(), attnlab::selection_token_density(*m.sel),
                        attnlab::selection_block_density(*m.sel), rec / m.L, select_s_ * 1e3);
        } else if (!sel_error_.empty()) {
            ImGui::TextColored(ImVec4(1, 0.45f, 0.4f, 1), "%s", sel_error_.c_str());
        }
        progress_line("map");
    }

    void request_map() {
        if (!st_.cap) return;
        auto cap = st_.cap;
        size_t li = size_t(std::max(0, st_.layer_index));
        int h = st_.head;
        bool cmp = compare_ && st_.methods_available;
        std::string spec = st_.method_spec;
        // The GPU copy of this capture, when maps go to the GPU.
        std::shared_ptr<const attnlab::gpu_capture> gcap =
            use_gpu_ && st_.gpu_cap && st_.gpu_cap->cap == cap ? st_.gpu_cap : nullptr;
        map_error_.clear();
        st_.tasks.submit("attention map L" + std::to_string(li) + " H" + std::to_string(h), "map",
                         [this, cap, gcap, li, h, cmp, spec](attnlab::job_progress & p) {
                             timed_selection ts;
                             std::string err;
                             if (cmp) {
                                 p.report(0.0, "selection " + spec);
                                 try {
                                     ts = compute_selection(*cap, li, h, spec);
                                 } catch (const std::exception & e) {
                                     err = e.what();
                                 }
                             }
                             std::shared_ptr<head_map> m;
                             if (gcap) {
                                 p.report(0.5, "map on the GPU");
                                 try {
                                     m = head_map_compute_gpu(*gcap, li, h, ts.sel);
                                 } catch (const std::exception & e) {   // shown, not replaced by a CPU map
                                     std::string msg = std::string("GPU map failed: ") + e.what();
                                     return apply_fn([this, msg]() { map_error_ = msg; });
                                 }
                             } else {
                                 m = head_map_compute(cap, li, h, ts.sel, &p);
                             }
                             return apply_fn([this, m, ts, err]() {
                                 if (m->cap != st_.cap) return;  // a newer capture arrived meanwhile
                                 if (map_ && map_->L != m->L) fit_pending_ = true;
                                 map_ = m;
                                 method_name_ = ts.method;
                                 select_s_ = ts.seconds;
                                 sel_error_ = err;
                                 window_.reset();
                                 st_.map_status = "map " + fmt_ms(m->seconds) + " on " + m->device;
                                 std::printf("bench: attention map layer %d head %d L=%d recompute %.1f ms%s on %s\n",
                                             m->layer, m->head, m->L, m->seconds * 1e3,
                                             m->has_sparse() ? " (dense+sparse)" : "", m->device.c_str());
                                 std::fflush(stdout);
                             });
                         });
    }

    void request_window() {
        if (!map_ || st_.tasks.busy("window")) return;
        auto m = map_;
        // The view plus a margin, so small pans need no recompute; capped at ~16M cells.
        double mx = 0.5 * (vp_.x1 - vp_.x0), my = 0.5 * (vp_.y1 - vp_.y0);
        int r0 = int(std::floor(vp_.y0 - my)), r1 = int(std::ceil(vp_.y1 + my));
        int c0 = int(std::floor(vp_.x0 - mx)), c1 = int(std::ceil(vp_.x1 + mx));
        while (double(r1 - r0) * (c1 - c0) > 16e6) {
            r0 += (r1 - r0) / 8; r1 -= (r1 - r0) / 8; c0 += (c1 - c0) / 8; c1 -= (c1 - c0) / 8;
        }
        r0 = std::max(0, std::min(r0, int(std::floor(vp_.y0))));
        c0 = std::max(0, std::min(c0, int(std::floor(vp_.x0))));
        r1 = std::max(r1, int(std::ceil(vp_.y1)));
        c1 = std::max(c1, int(std::ceil(vp_.x1)));
        st_.tasks.submit("exact window", "window", [this, m, r0, r1, c0, c1](attnlab::job_progress &) {
            auto w = head_map_window(*m, r0, r1, c0, c1);
            return apply_fn([this, m, w]() {
                if (m != map_) return;
                window_ = w;
                window_map_ = m.get();
            });
        });
    }

    std::shared_ptr<head_map> map_;
    std::shared_ptr<map_window> window_;
    const head_map * window_map_ = nullptr;
    map_viewport vp_;
    map_style style_;
    map_panel panels_[3];
    bool compare_ = false, fit_pending_ = true, use_gpu_ = true;
    std::string method_edit_, method_name_, sel_error_, map_error_;
    double select_s_ = 0.0;
};

} // namespace

std::unique_ptr<view> make_attention_map_view(app_state & s) { return std::make_unique<attention_map_view>(s); }

} // namespace attnlab_gui
