// Hyperbolic: the selected head's query and key vectors (or its attention
// graph's shortest-path distances) embedded in the Poincaré disk by core
// (graph/hyperbolic_head.h, stress embedding of graph/poincare.h), with the
// distortion it reports; geodesic edges for each query's strongest keys; drag
// moves the view by a Möbius translation. Beside it, the hyperbolic score
// function's attention (core/attention/score.h) against softmax's for the
// same head and tokens, as core compares them. This file only draws.
#include <algorithm>
#include <cmath>
#include <numeric>

#include <imgui.h>

#include "attention/score.h"
#include "graph/hyperbolic_head.h"
#include "view.h"

namespace attnlab_gui {

namespace {

enum embed_mode { mode_qk = 0, mode_graph_head = 1, mode_graph_layer = 2 };
const char * k_mode_names[] = {"query & key vectors (hyperbolic distance in the ball)",
                               "this head's attention graph (-log weight paths)",
                               "layer's head-averaged attention graph (attention_graph_from_capture)"};

struct hyper_params {
    int n = 64;
    int mode = mode_qk;
    float c = 1.0f, beta = 1.0f, gamma = 0.0f;
    int iters = 500;
    // c = 1 / median |x|^2 over the shown q and k: raw vectors have norms of
    // several units, and at c = 1 tanh saturates and every point sits on the
    // ball's rim (distances all alike).
    bool auto_c = true;
    bool operator==(const hyper_params & o) const {
        return n == o.n && mode == o.mode && c == o.c && beta == o.beta && gamma == o.gamma && iters == o.iters;
    }
};

// What the view draws: core's embedding of the head (graph/hyperbolic_head.h)
// with the points as disk coordinates.
struct hyper_result {
    std::shared_ptr<const attnlab::qkv_capture> cap;
    hyper_params par;            // with the c used
    attnlab::head_embedding e;
    std::vector<disk_pt> pts;
};

std::shared_ptr<hyper_result> hyper_compute(std::shared_ptr<const attnlab::qkv_capture> cap, size_t li, int h,
                                            hyper_params par, attnlab::job_progress & p) {
    attnlab::head_embed_options opt;
    opt.n = par.n;
    opt.mode = par.mode == mode_qk ? attnlab::head_embed_mode::qk
               : par.mode == mode_graph_head ? attnlab::head_embed_mode::graph_head : attnlab::head_embed_mode::graph_layer;
    opt.auto_c = par.auto_c;
    opt.score.kind = attnlab::score_kind::hyperbolic;
    opt.score.c = par.c;
    opt.score.beta = par.beta;
    opt.score.gamma = par.gamma;
    opt.iters = par.iters;
    auto r = std::make_shared<hyper_result>();
    r->cap = cap;
    r->e = attnlab::head_embed_hyperbolic(*cap, li, h, opt, &p);
    r->par = par;
    r->par.c = float(r->e.c);
    const std::vector<double> & xy = r->e.embed.xy;
    for (size_t i = 0; i + 1 < xy.size(); i += 2) r->pts.emplace_back(xy[i], xy[i + 1]);
    return r;
}

class hyperbolic_view : public view {
public:
    explicit hyperbolic_view(app_state & s) : view(s) {
        st_.bus.subscribe(event_kind::capture_loaded, [this](const event &) { stale_ = true; });
        st_.bus.subscribe(event_kind::head_selected, [this](const event &) { stale_ = true; });
    }

    bool on_script(const std::string & cmd, const std::vector<std::string> & a) override {
        if (cmd == "hyper_tokens" && a.size() == 1) { par_.n = std::max(4, std::min(256, std::stoi(a[0]))); stale_ = true; return true; }
        if (cmd == "hyper_mode" && a.size() == 1) {
            par_.mode = a[0] == "qk" ? mode_qk : a[0] == "graph" ? mode_graph_head : a[0] == "layer" ? mode_graph_layer : std::stoi(a[0]);
            stale_ = true;
            return true;
        }
        if (cmd == "hyper_drag" && a.size() == 4) {
            drag(disk_pt(std::stod(a[0]), std::stod(a[1])), disk_pt(std::stod(a[2]), std::stod(a[3])));
            return true;
        }
        if (cmd == "hyper_c" && a.size() == 1) { par_.c = std::stof(a[0]); par_.auto_c = false; stale_ = true; return true; }
        if (cmd == "hyper_reset") { if (res_) disp_ = res_->pts; return true; }
        return false;
    }

    void drawContent() override {
        if (!st_.cap) {
            caption("no capture yet: the hyperbolic view embeds the selected head of the current capture");
            return;
        }
        if (stale_ && !st_.tasks.busy("hyperbolic")) request();
        // Controls.
        ImGui::SetNextItemWidth(140);
        ImGui::SliderInt("tokens", &par_.n, 8, 256);
        if (ImGui::IsItemDeactivatedAfterEdit()) stale_ = true;
        ImGui::SameLine();
        ImGui::SetNextItemWidth(420);
        if (ImGui::Combo("distances", &par_.mode, k_mode_names, 3)) stale_ = true;
        ImGui::SetNextItemWidth(110);
        ImGui::SliderFloat("c", &par_.c, 1e-4f, 4.0f, "%.4f", ImGuiSliderFlags_Logarithmic);
        if (ImGui::IsItemDeactivatedAfterEdit()) {
            stale_ = true;
            par_.auto_c = false;
        }
        ImGui::SameLine();
        if (ImGui::Checkbox("auto c", &par_.auto_c)) stale_ = true;
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("c = 1 / median |x|^2 of the shown queries and keys");
        ImGui::SameLine();
        ImGui::SetNextItemWidth(110);
        ImGui::SliderFloat("beta", &par_.beta, 0.1f, 10.0f, "%.2f", ImGuiSliderFlags_Logarithmic);
        if (ImGui::IsItemDeactivatedAfterEdit()) stale_ = true;
        ImGui::SameLine();
        ImGui::SetNextItemWidth(110);
        ImGui::SliderFloat("gamma", &par_.gamma, -2.0f, 2.0f, "%.2f");
        if (ImGui::IsItemDeactivatedAfterEdit()) stale_ = true;
        ImGui::SameLine();
        ImGui::SetNextItemWidth(90);
        ImGui::SliderInt("edges/query", &edges_per_query_, 0, 3);
        ImGui::SameLine();
        if (ImGui::Button("Reset view")) { if (res_) disp_ = res_->pts; }
        task_progress_bars(st_, {"hyperbolic"}, 400);
        task_failure_line(st_, {"hyperbolic"});   // the newest embedding task, if it failed
        if (!res_) {
            caption("computing the embedding (background task)...");
            return;
        }
        const hyper_result & r = *res_;
        attnlab::score_fn sf;
        sf.kind = attnlab::score_kind::hyperbolic;
        sf.c = r.par.c;
        sf.beta = r.par.beta;
        sf.gamma = r.par.gamma;
        caption("Layer %d head %d, first %d tokens of %s. Embedding (core poincare_embed, %d iterations, target scale %.3g): "
                "mean distortion %.3f, worst-case distortion %.3g, stress %.4g. Drag to translate (Mobius), double click to reset.",
                r.e.layer, r.e.head, r.e.n, st_.cap->info.text_spec.c_str(), r.e.embed.iters_run, r.e.embed.scale, r.e.embed.mean_distortion,
                r.e.embed.worst_distortion, r.e.embed.loss);

        ImVec2 avail = ImGui::GetContentRegionAvail();
        float side = std::min(avail.x * 0.5f, avail.y - 8);
        ImGui::BeginGroup();
        draw_disk(r, side);
        ImGui::EndGroup();
        ImGui::SameLine();
        ImGui::BeginGroup();
        draw_scores(r, sf, ImVec2(ImGui::GetContentRegionAvail().x, side));
        ImGui::EndGroup();
    }

private:
    void drag(disk_pt from, disk_pt to) {
        for (auto & z : disp_) z = mobius_drag(z, from, to);
    }

    void draw_disk(const hyper_result & r, float side) {
        const bool qk = r.par.mode == mode_qk;
        std::vector<disk_point> pts(disp_.size());
        value_scale pos{value_scale::linear, 0.0, double(std::max(1, r.e.n - 1))};
        for (size_t i = 0; i < disp_.size(); ++i) {
            pts[i].z = disp_[i];
            pts[i].color = color_of(r.e.token[i], pos, qk && r.e.is_key[i] ? colormap::magma : colormap::viridis);
            pts[i].square = qk && r.e.is_key[i];
            pts[i].size = qk && r.e.is_key[i] ? 3.0f : 3.5f;
        }
        // Each query's strongest keys (softmax weights), alpha by weight.
        std::vector<disk_edge> edges;
        std::vector<int> order;
        for (int i = 0; i < r.e.n && edges_per_query_ > 0; ++i) {
            order.resize(i + 1);
            std::iota(order.begin(), order.end(), 0);
            if (!qk) order.erase(order.begin() + i);   // a token's edge to itself is no edge
            int k = std::min(int(order.size()), edges_per_query_);
            std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int a, int b) {
                return r.e.weights.softmax_w[size_t(i) * r.e.n + a] > r.e.weights.softmax_w[size_t(i) * r.e.n + b];
            });
            for (int e = 0; e < k; ++e) {
                int j = order[e];
                float w = r.e.weights.softmax_w[size_t(i) * r.e.n + j];
                disk_edge de;
                de.a = i;
                de.b = qk ? r.e.n + j : j;
                de.color = IM_COL32(255, 210, 120, int(40 + 200 * std::min(1.0f, w)));
                de.thickness = 0.8f + 1.5f * w;
                edges.push_back(de);
            }
        }
        disk_plot_result dr = disk_plot("disk", ImVec2(side, side - 40), pts, edges);
        if (dr.dragged) drag(dr.drag_from, dr.drag_to);
        if (dr.reset) disp_ = r.pts;
        if (dr.hover >= 0) {
            int t = r.e.token[dr.hover];
            ImGui::BeginTooltip();
            ImGui::Text("%s %d: '%s'", qk ? (r.e.is_key[dr.hover] ? "key" : "query") : "token", t, st_.token_text(t).c_str());
            ImGui::Text("|z| = %.4f, distance to centre %.3f", std::abs(disp_[dr.hover]),
                        disk_distance(disp_[dr.hover], disk_pt(0, 0)));
            if (!r.e.is_key[dr.hover]) {
                int j = r.e.weights.top_softmax[t];
                ImGui::Text("strongest key: %d '%s' (softmax %.3f, hyperbolic %.3f)", j, st_.token_text(j).c_str(),
                            r.e.weights.softmax_w[size_t(t) * r.e.n + j], r.e.weights.hyper_w[size_t(t) * r.e.n + j]);
            }
            ImGui::EndTooltip();
        }
        if (qk) caption("circles: queries (viridis by position), squares: keys (magma by position); arcs: geodesics "
                        "from each query to its %d strongest key(s) (softmax)", edges_per_query_);
        else caption("points: tokens (viridis by position); arcs: geodesics to each token's %d strongest key(s) (softmax)",
                     edges_per_query_);
    }

    void draw_scores(const hyper_result & r, const attnlab::score_fn & sf, ImVec2 size) {
        ImGui::Text("softmax vs hyperbolic score, layer %d head %d", r.e.layer, r.e.head);
        caption("score: %s (core/attention/score.h). Top-1 key agrees on %d of %d rows; mean total variation 0.5 sum|A_softmax - A_hyp| = %.3f per row. "
                "Log colour scale, grey: above the diagonal (causal).", sf.spec().c_str(), r.e.weights.top1_agree, r.e.n, r.e.weights.mean_tv);
        value_scale sc{value_scale::log10, 1e-4, 1.0};
        float h = std::max(120.0f, (size.y - 4 * ImGui::GetFontSize()) * 0.5f);
        float w = std::min(size.x, h + 140);
        grid_result a = cell_grid("softmax", ImVec2(w, h), r.e.weights.softmax_w.data(), r.e.n, r.e.n, sc, colormap::viridis, "query",
                                  "key: softmax(s q.k)", "weight");
        grid_result b = cell_grid("hyperbolic", ImVec2(w, h), r.e.weights.hyper_w.data(), r.e.n, r.e.n, sc, colormap::viridis, "query",
                                  "key: hyperbolic score", "weight");
        for (const grid_result * g : {&a, &b}) {
            if (g->hover_row < 0) continue;
            int i = g->hover_row, j = g->hover_col;
            ImGui::BeginTooltip();
            ImGui::Text("query %d '%s' -> key %d '%s'", i, st_.token_text(i).c_str(), j, st_.token_text(j).c_str());
            if (j <= i) ImGui::Text("softmax %.4f   hyperbolic %.4f", r.e.weights.softmax_w[size_t(i) * r.e.n + j], r.e.weights.hyper_w[size_t(i) * r.e.n + j]);
            else ImGui::TextDisabled("above the diagonal (masked)");
            ImGui::EndTooltip();
        }
    }

    void request() {
        stale_ = false;
        auto cap = st_.cap;
        size_t li = size_t(st_.layer_index);
        int h = st_.head;
        hyper_params par = par_;
        char name[96];
        std::snprintf(name, sizeof name, "hyperbolic embedding L%d H%d", st_.layer_id(), h);
        st_.tasks.submit(name, "hyperbolic", [this, cap, li, h, par](attnlab::job_progress & p) {
            auto r = hyper_compute(cap, li, h, par, p);
            return apply_fn([this, r]() {
                if (r->cap != st_.cap) return;
                res_ = r;
                disp_ = r->pts;
                if (par_.auto_c) par_.c = r->par.c;
            });
        });
    }

    hyper_params par_;
    int edges_per_query_ = 1;
    bool stale_ = true;
    std::shared_ptr<const hyper_result> res_;
    std::vector<disk_pt> disp_;   // res_->pts after the user's Möbius translations
};

} // namespace

std::unique_ptr<view> make_hyperbolic_view(app_state & s) { return std::make_unique<hyperbolic_view>(s); }

} // namespace attnlab_gui
