// Hyperbolic: the selected head's query and key vectors (or its attention
// graph's shortest-path distances) embedded in the Poincaré disk by core's
// stress embedding (core/graph/poincare.h), with the distortion it reports;
// geodesic edges for each query's strongest keys; drag moves the view by a
// Möbius translation. Beside it, the hyperbolic score function's attention
// (core/attention/score.h) against softmax's for the same head and tokens.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include <imgui.h>

#include "attention/score.h"
#include "graph/attention_graph.h"
#include "graph/poincare.h"
#include "methods/method.h"
#include "view.h"
#include "data/capture.h"

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

struct hyper_result {
    std::shared_ptr<const attnlab::qkv_capture> cap;
    size_t layer_index = 0;
    int layer = 0, head = 0, n = 0;
    hyper_params par;
    // Embedding: points, each a query or key (Q/K mode) or a token (graph modes).
    std::vector<disk_pt> pts;
    std::vector<int> token;          // token index per point
    std::vector<uint8_t> is_key;     // Q/K mode: 1 for keys
    double mean_distortion = 0, worst_distortion = 0, loss = 0, scale = 1;
    int iters_run = 0;
    // The head's attention on the first n tokens, row-major n x n, NaN above the diagonal.
    std::vector<float> softmax_w, hyper_w;
    std::vector<int> top_softmax;    // per query: strongest key (softmax)
    int top1_agree = 0;
    double mean_tv = 0;              // mean over rows of 0.5 * sum |A - Â|
    double seconds = 0;
};

std::shared_ptr<hyper_result> hyper_compute(std::shared_ptr<const attnlab::qkv_capture> cap, size_t li, int h,
                                            hyper_params par, attnlab::job_progress & p) {
    using namespace attnlab;
    auto t0 = std::chrono::steady_clock::now();
    auto r = std::make_shared<hyper_result>();
    r->cap = cap;
    r->layer_index = li;
    r->layer = cap->layers[li].layer;
    r->head = h;
    r->par = par;
    const int n = std::min(par.n, cap->info.n_tokens());
    r->n = n;
    const attention_layer_io io = capture_layer_io(*cap, li);
    const head_inputs in = head_inputs_of(io, h);
    const int d = in.head_dim;
    p.report(0.02, "softmax and hyperbolic attention");
    if (par.auto_c) {
        std::vector<double> n2;
        for (int t = 0; t < n; ++t) {
            double a = 0, b = 0;
            for (int i = 0; i < d; ++i) {
                a += double(in.q[t * in.q_stride + i]) * in.q[t * in.q_stride + i];
                b += double(in.k[t * in.k_stride + i]) * in.k[t * in.k_stride + i];
            }
            n2.push_back(a);
            n2.push_back(b);
        }
        std::nth_element(n2.begin(), n2.begin() + n2.size() / 2, n2.end());
        double med = n2.empty() ? 1.0 : n2[n2.size() / 2];
        par.c = float(med > 0 ? 1.0 / med : 1.0);
        r->par.c = par.c;
    }

    // Points in the d-ball: exp map at 0 of the raw (unscaled) q and k, as the score does.
    std::vector<double> qh(size_t(n) * d), kh(size_t(n) * d), lq(n), lk(n), x(d);
    for (int t = 0; t < n; ++t) {
        for (int i = 0; i < d; ++i) x[i] = in.q[t * in.q_stride + i];
        poincare_expmap0(x.data(), d, double(par.c), &qh[size_t(t) * d]);
        for (int i = 0; i < d; ++i) x[i] = in.k[t * in.k_stride + i];
        poincare_expmap0(x.data(), d, double(par.c), &kh[size_t(t) * d]);
        double a = 0, b = 0;
        for (int i = 0; i < d; ++i) {
            a += qh[size_t(t) * d + i] * qh[size_t(t) * d + i];
            b += kh[size_t(t) * d + i] * kh[size_t(t) * d + i];
        }
        lq[t] = 1.0 - par.c * a;
        lk[t] = 1.0 - par.c * b;
    }
    auto ball_dist = [&](const double * u, double lu, const double * v, double lv) {
        double s = 0;
        for (int i = 0; i < d; ++i) s += (u[i] - v[i]) * (u[i] - v[i]);
        return poincare_distance_from_parts(s, lu, lv, double(par.c));
    };

    // Softmax (s q.k) and hyperbolic (-beta d_c - gamma) rows over the causal keys, in double.
    const float nan = std::numeric_limits<float>::quiet_NaN();
    r->softmax_w.assign(size_t(n) * n, nan);
    r->hyper_w.assign(size_t(n) * n, nan);
    r->top_softmax.assign(n, 0);
    std::vector<double> ls(n), lh(n);
    double tv = 0;
    for (int i = 0; i < n; ++i) {
        double ms = -HUGE_VAL, mh = -HUGE_VAL;
        for (int j = 0; j <= i; ++j) {
            double dot = 0;
            for (int e = 0; e < d; ++e) dot += double(in.q[i * in.q_stride + e]) * in.k[j * in.k_stride + e];
            ls[j] = dot * in.scale;
            lh[j] = -double(par.beta) * ball_dist(&qh[size_t(i) * d], lq[i], &kh[size_t(j) * d], lk[j]) - par.gamma;
            ms = std::max(ms, ls[j]);
            mh = std::max(mh, lh[j]);
        }
        double zs = 0, zh = 0;
        for (int j = 0; j <= i; ++j) {
            zs += std::exp(ls[j] - ms);
            zh += std::exp(lh[j] - mh);
        }
        int as = 0, ah = 0;
        double row_tv = 0;
        for (int j = 0; j <= i; ++j) {
            double ws = std::exp(ls[j] - ms) / zs, wh = std::exp(lh[j] - mh) / zh;
            r->softmax_w[size_t(i) * n + j] = float(ws);
            r->hyper_w[size_t(i) * n + j] = float(wh);
            if (ws > r->softmax_w[size_t(i) * n + as]) as = j;
            if (wh > r->hyper_w[size_t(i) * n + ah]) ah = j;
            row_tv += 0.5 * std::fabs(ws - wh);
        }
        r->top_softmax[i] = as;
        r->top1_agree += as == ah;
        tv += row_tv;
    }
    r->mean_tv = n ? tv / n : 0;

    // Distances to embed.
    std::vector<double> D;
    int np = 0;
    if (par.mode == mode_qk) {
        np = 2 * n;
        std::vector<const double *> pt(np);
        std::vector<double> lam(np);
        for (int t = 0; t < n; ++t) {
            pt[t] = &qh[size_t(t) * d];
            lam[t] = lq[t];
            pt[n + t] = &kh[size_t(t) * d];
            lam[n + t] = lk[t];
            r->token.push_back(t);
            r->is_key.push_back(0);
        }
        for (int t = 0; t < n; ++t) {
            r->token.push_back(t);
            r->is_key.push_back(1);
        }
        D.assign(size_t(np) * np, 0.0);
        for (int a = 0; a < np; ++a) {
            for (int b = a + 1; b < np; ++b) {
                // Coincident points would make the relative stress undefined.
                double v = std::max(1e-6, ball_dist(pt[a], lam[a], pt[b], lam[b]));
                D[size_t(a) * np + b] = D[size_t(b) * np + a] = v;
            }
        }
    } else {
        np = n;
        std::vector<double> w(size_t(n) * n, 0.0);
        if (par.mode == mode_graph_head) {
            for (size_t k = 0; k < w.size(); ++k) w[k] = std::isnan(r->softmax_w[k]) ? 0.0 : r->softmax_w[k];
        } else {
            layered_graph g = attention_graph_from_capture(*cap, r->layer, r->layer, n, nullptr);
            w = g.a.at(0);
        }
        for (int t = 0; t < n; ++t) {
            r->token.push_back(t);
            r->is_key.push_back(0);
        }
        p.report(0.1, "graph distances");
        D = graph_distances(w, n, 1e-4);
        for (int a = 0; a < n; ++a) {
            for (int b = 0; b < n; ++b) {
                if (a != b) D[size_t(a) * n + b] = std::max(D[size_t(a) * n + b], 1e-6);
            }
        }
    }
    // Scale the targets so the largest is 6 (points stay visibly inside the
    // disk: |z| = tanh(d/2)); the distortion is measured against these targets.
    double dmax = 0;
    for (double v : D) dmax = std::max(dmax, v);
    poincare_options opt;
    opt.iters = par.iters;
    opt.scale = dmax > 0 ? 6.0 / dmax : 1.0;
    p.report(0.15, "Poincare embedding");
    poincare_result pr = poincare_embed(D, np, opt, &p);
    r->pts.resize(np);
    for (int i = 0; i < np; ++i) r->pts[i] = disk_pt(pr.xy[2 * i], pr.xy[2 * i + 1]);
    r->mean_distortion = pr.mean_distortion;
    r->worst_distortion = pr.worst_distortion;
    r->loss = pr.loss;
    r->scale = pr.scale;
    r->iters_run = pr.iters_run;
    r->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

class hyperbolic_view : public view {
public:
    explicit hyperbolic_view(app_state & s) : view(s) {
        st_.bus.subscribe(event_kind::capture_loaded, [this](const event &) { stale_ = true; });
        st_.bus.subscribe(event_kind::head_selected, [this](const event &) { stale_ = true; });
    }
    const char * id() const override { return "hyperbolic"; }
    const char * title() const override { return "Hyperbolic"; }

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
        for (const auto & t : st_.tasks.snapshot()) {
            if (t.group != "hyperbolic") continue;
            char buf[128];
            std::snprintf(buf, sizeof buf, "%s %.0f%%", t.stage.c_str(), t.fraction * 100);
            ImGui::ProgressBar(float(t.fraction), ImVec2(400, 0), buf);
            ImGui::SameLine();
            if (ImGui::SmallButton("Cancel")) st_.tasks.cancel(t.id);
        }
        for (const auto & h : st_.tasks.history()) {   // the newest embedding task, if it failed
            if (h.group != "hyperbolic") continue;
            if (h.state == task_state::failed) ImGui::TextColored(ImVec4(1, 0.45f, 0.4f, 1), "%s", h.error.c_str());
            break;
        }
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
                r.layer, r.head, r.n, st_.cap->info.text_spec.c_str(), r.iters_run, r.scale, r.mean_distortion,
                r.worst_distortion, r.loss);

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
        value_scale pos{value_scale::linear, 0.0, double(std::max(1, r.n - 1))};
        for (size_t i = 0; i < disp_.size(); ++i) {
            pts[i].z = disp_[i];
            pts[i].color = color_of(r.token[i], pos, qk && r.is_key[i] ? colormap::magma : colormap::viridis);
            pts[i].square = qk && r.is_key[i];
            pts[i].size = qk && r.is_key[i] ? 3.0f : 3.5f;
        }
        // Each query's strongest keys (softmax weights), alpha by weight.
        std::vector<disk_edge> edges;
        std::vector<int> order;
        for (int i = 0; i < r.n && edges_per_query_ > 0; ++i) {
            order.resize(i + 1);
            std::iota(order.begin(), order.end(), 0);
            if (!qk) order.erase(order.begin() + i);   // a token's edge to itself is no edge
            int k = std::min(int(order.size()), edges_per_query_);
            std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int a, int b) {
                return r.softmax_w[size_t(i) * r.n + a] > r.softmax_w[size_t(i) * r.n + b];
            });
            for (int e = 0; e < k; ++e) {
                int j = order[e];
                float w = r.softmax_w[size_t(i) * r.n + j];
                disk_edge de;
                de.a = i;
                de.b = qk ? r.n + j : j;
                de.color = IM_COL32(255, 210, 120, int(40 + 200 * std::min(1.0f, w)));
                de.thickness = 0.8f + 1.5f * w;
                edges.push_back(de);
            }
        }
        disk_plot_result dr = disk_plot("disk", ImVec2(side, side - 40), pts, edges);
        if (dr.dragged) drag(dr.drag_from, dr.drag_to);
        if (dr.reset) disp_ = r.pts;
        if (dr.hover >= 0) {
            int t = r.token[dr.hover];
            ImGui::BeginTooltip();
            ImGui::Text("%s %d: '%s'", qk ? (r.is_key[dr.hover] ? "key" : "query") : "token", t, st_.token_text(t).c_str());
            ImGui::Text("|z| = %.4f, distance to centre %.3f", std::abs(disp_[dr.hover]),
                        disk_distance(disp_[dr.hover], disk_pt(0, 0)));
            if (!r.is_key[dr.hover]) {
                int j = r.top_softmax[t];
                ImGui::Text("strongest key: %d '%s' (softmax %.3f, hyperbolic %.3f)", j, st_.token_text(j).c_str(),
                            r.softmax_w[size_t(t) * r.n + j], r.hyper_w[size_t(t) * r.n + j]);
            }
            ImGui::EndTooltip();
        }
        if (qk) caption("circles: queries (viridis by position), squares: keys (magma by position); arcs: geodesics "
                        "from each query to its %d strongest key(s) (softmax)", edges_per_query_);
        else caption("points: tokens (viridis by position); arcs: geodesics to each token's %d strongest key(s) (softmax)",
                     edges_per_query_);
    }

    void draw_scores(const hyper_result & r, const attnlab::score_fn & sf, ImVec2 size) {
        ImGui::Text("softmax vs hyperbolic score, layer %d head %d", r.layer, r.head);
        caption("score: %s (core/attention/score.h). Top-1 key agrees on %d of %d rows; mean total variation 0.5 sum|A_softmax - A_hyp| = %.3f per row. "
                "Log colour scale, grey: above the diagonal (causal).", sf.spec().c_str(), r.top1_agree, r.n, r.mean_tv);
        value_scale sc{value_scale::log10, 1e-4, 1.0};
        float h = std::max(120.0f, (size.y - 4 * ImGui::GetFontSize()) * 0.5f);
        float w = std::min(size.x, h + 140);
        grid_result a = cell_grid("softmax", ImVec2(w, h), r.softmax_w.data(), r.n, r.n, sc, colormap::viridis, "query",
                                  "key: softmax(s q.k)", "weight");
        grid_result b = cell_grid("hyperbolic", ImVec2(w, h), r.hyper_w.data(), r.n, r.n, sc, colormap::viridis, "query",
                                  "key: hyperbolic score", "weight");
        for (const grid_result * g : {&a, &b}) {
            if (g->hover_row < 0) continue;
            int i = g->hover_row, j = g->hover_col;
            ImGui::BeginTooltip();
            ImGui::Text("query %d '%s' -> key %d '%s'", i, st_.token_text(i).c_str(), j, st_.token_text(j).c_str());
            if (j <= i) ImGui::Text("softmax %.4f   hyperbolic %.4f", r.softmax_w[size_t(i) * r.n + j], r.hyper_w[size_t(i) * r.n + j]);
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
