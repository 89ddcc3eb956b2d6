// Layers x heads: one cell per (captured layer, query head) for entropy and,
// with a sparse method, density, mass recall, output error and oracle
// precision/recall (core's head_table, metrics/head_table.h); click a cell
// to open that head's attention map. Beside
// them, the layer_adaptive allocation (core/methods/layer_adaptive.h): greedy
// vs uniform vs the seed's schedule per layer, from recall curves calibrated
// on calibration text (a background task) or from a saved table.
#include <cmath>

#include <imgui.h>
#include <imgui_stdlib.h>

#include "data/capture.h"
#include "data/corpus.h"
#include "methods/layer_adaptive.h"
#include "methods/method.h"
#include "methods/train/calib.h"
#include "metrics/head_table.h"
#include "view.h"

namespace attnlab_gui {

namespace {

// The grid's metrics: entropy (no method), then fields of head_metrics.
struct metric_def {
    const char * name, * unit;
    bool lower_is_better;
    double attnlab::head_metrics::*field;   // null for entropy
};
const metric_def k_metrics[] = {
    {"entropy", "nats", false, nullptr},
    {"token density", "fraction", true, &attnlab::head_metrics::token_density},
    {"block density", "fraction", true, &attnlab::head_metrics::block_density},
    {"mass recall", "fraction", false, &attnlab::head_metrics::mass_recall},
    {"output rel. error", "||dO||/||O||", true, &attnlab::head_metrics::output_rel_error},
    {"oracle precision", "fraction", false, &attnlab::head_metrics::oracle_precision},
    {"oracle recall", "fraction", false, &attnlab::head_metrics::oracle_recall},
};
constexpr int k_n_metrics = 7;

// One metric of every cell, as the grid draws it.
std::vector<float> metric_column(const attnlab::head_table & t, int metric) {
    std::vector<float> out;
    if (metric == 0) {
        for (double v : t.entropy) out.push_back(float(v));
    } else {
        for (const auto & m : t.metrics) out.push_back(float(m.*k_metrics[metric].field));
    }
    return out;
}

class layers_heads_view : public view {
public:
    explicit layers_heads_view(app_state & s) : view(s) {
        st_.bus.subscribe(event_kind::capture_loaded, [this](const event &) {
            // Lazily recomputed when the view is shown: no work for a hidden view.
            entropy_.clear();
            method_vals_.clear();
        });
        st_.bus.subscribe(event_kind::method_changed, [this](const event &) { method_vals_.clear(); });
    }

    bool on_script(const std::string & cmd, const std::vector<std::string> & a) override {
        if (cmd == "metrics") { request_method_metrics(); return true; }
        if (cmd == "adaptive_calibrate") {
            if (a.size() >= 1) la_budget_ = std::stof(a[0]);
            if (a.size() >= 2) la_ctx_ = std::stoi(a[1]);
            request_calibration();
            return true;
        }
        if (cmd == "adaptive_load" && a.size() == 1) { load_table(a[0]); return true; }
        if (cmd == "metric" && a.size() == 1) {
            for (int i = 0; i < k_n_metrics; ++i) {
                if (a[0] == k_metrics[i].name || a[0] == std::to_string(i)) metric_ = i;
            }
            return true;
        }
        return false;
    }

    void drawContent() override {
        if (!st_.cap) {
            caption("no capture yet");
            return;
        }
        const int rows = int(st_.cap->layers.size()), cols = st_.cap->info.n_head;
        if (entropy_.empty() && !st_.tasks.busy("entropy")) request_entropy();
        ImGui::SetNextItemWidth(200);
        const char * names[k_n_metrics];
        for (int i = 0; i < k_n_metrics; ++i) names[i] = k_metrics[i].name;
        ImGui::Combo("metric", &metric_, names, k_n_metrics);
        ImGui::SameLine();
        ImGui::TextDisabled("method: %s", st_.method_spec.c_str());
        ImGui::SameLine();
        bool busy = st_.tasks.busy("head_metrics");
        ImGui::BeginDisabled(busy || !st_.methods_available);
        if (ImGui::Button("Compute method metrics for every head")) request_method_metrics();
        ImGui::EndDisabled();
        task_progress_bars(st_, {"head_metrics", "entropy"}, 400);
        caption("L = %d tokens of %s. Metrics against dense softmax of the same head (METHODS.md). "
                "Click a cell to open that head in the attention map.",
                st_.cap->info.n_tokens(), st_.cap->info.text_spec.c_str());

        const std::vector<float> * vals = nullptr;
        if (metric_ == 0) vals = entropy_.empty() ? nullptr : &entropy_;
        else if (!method_vals_.empty()) vals = &method_vals_[metric_ - 1];
        if (!vals) {
            caption(metric_ == 0 ? "computing entropy..." : "press 'Compute method metrics' (runs in the background)");
            return;
        }
        float lo = INFINITY, hi = -INFINITY;
        for (float v : *vals) { lo = std::min(lo, v); hi = std::max(hi, v); }
        value_scale sc{value_scale::linear, metric_ == 0 ? 0.0 : std::min(0.0f, lo), metric_ == 0 ? hi : std::max(hi, 1e-6f)};
        if (metric_ == 4) sc = {value_scale::linear, 0.0, std::max(1e-6f, hi)};
        std::vector<std::string> rn;
        for (const auto & l : st_.cap->layers) rn.push_back(std::to_string(l.layer));
        ImVec2 avail = ImGui::GetContentRegionAvail();
        float gw = std::min(avail.x * 0.55f, 60.0f * cols + 140), gh = avail.y - 10;
        std::string bar = std::string(k_metrics[metric_].name) + " (" + k_metrics[metric_].unit + ")";
        grid_result g = cell_grid("grid", ImVec2(gw, gh), vals->data(), rows, cols, sc,
                                  k_metrics[metric_].lower_is_better ? colormap::magma : colormap::viridis, "layer",
                                  "query head", bar.c_str(), st_.layer_index, st_.head, &rn);
        if (g.hover_row >= 0) {
            ImGui::BeginTooltip();
            ImGui::Text("layer %s head %d", rn[g.hover_row].c_str(), g.hover_col);
            ImGui::Text("entropy %.3f nats", entropy_.empty() ? 0.0f : entropy_[size_t(g.hover_row) * cols + g.hover_col]);
            if (!method_vals_.empty()) {
                for (int k = 1; k < k_n_metrics; ++k) {
                    ImGui::Text("%s %.4f", k_metrics[k].name, method_vals_[k - 1][size_t(g.hover_row) * cols + g.hover_col]);
                }
            }
            ImGui::TextDisabled("click: open in Attention map");
            ImGui::EndTooltip();
        }
        if (g.click_row >= 0) {
            st_.select_head(g.click_row, g.click_col);
            st_.bus.publish({event_kind::open_view, 0, 0, "attention_map"});
        }
        ImGui::SameLine();
        ImGui::BeginGroup();
        draw_per_layer(*vals, rows, cols, ImVec2(ImGui::GetContentRegionAvail().x, gh * 0.45f));
        draw_adaptive(ImGui::GetContentRegionAvail().x);
        ImGui::EndGroup();
    }

private:
    void draw_per_layer(const std::vector<float> & v, int rows, int cols, ImVec2 size) {
        series mean{"mean over heads", {}, {}, IM_COL32(255, 200, 80, 255), true};
        series mn{"min", {}, {}, IM_COL32(120, 170, 255, 200)}, mx{"max", {}, {}, IM_COL32(255, 110, 110, 200)};
        double ylo = 0, yhi = 1e-9;
        for (int r = 0; r < rows; ++r) {
            double s = 0, a = INFINITY, b = -INFINITY;
            for (int c = 0; c < cols; ++c) {
                double x = v[size_t(r) * cols + c];
                s += x; a = std::min(a, x); b = std::max(b, x);
            }
            double layer = st_.cap->layers[r].layer;
            mean.x.push_back(layer); mean.y.push_back(s / cols);
            mn.x.push_back(layer); mn.y.push_back(a);
            mx.x.push_back(layer); mx.y.push_back(b);
            yhi = std::max(yhi, b);
            ylo = std::min(ylo, a);
        }
        std::vector<series> ss{mean, mn, mx};
        if (metric_ == 1 || metric_ == 2) {
            // The seed's schedule (claim 000): early layers 40-50%, deep 10-15%.
            int nl = std::max(1, st_.cap->info.n_layer);
            series seed{"seed schedule (claim)", {}, {}, IM_COL32(200, 200, 200, 140)};
            seed.x = {0, double(nl - 1) * 0.3, double(nl - 1) * 0.7, double(nl - 1)};
            seed.y = {0.45, 0.45, 0.125, 0.125};
            ss.push_back(seed);
            yhi = std::max(yhi, 0.5);
        }
        double xmax = st_.cap->layers.empty() ? 1 : std::max(1, st_.cap->layers.back().layer);
        std::string yl = std::string(k_metrics[metric_].name) + " per layer";
        line_plot("per_layer", size, ss, {0, xmax, false, "layer"}, {ylo, yhi * 1.05, false, yl});
    }

    void request_entropy() {
        if (!st_.cap) return;
        auto cap = st_.cap;
        st_.tasks.submit("entropy of every head", "entropy", [this, cap](attnlab::job_progress & p) {
            auto t = std::make_shared<const attnlab::head_table>(attnlab::head_table_compute(*cap, {}, &p));
            return apply_fn([this, cap, t]() {
                if (cap == st_.cap) entropy_ = metric_column(*t, 0);
            });
        });
    }

    void request_method_metrics() {
        if (!st_.cap) return;
        auto cap = st_.cap;
        std::string spec = st_.method_spec;
        st_.tasks.submit("metrics " + spec, "head_metrics", [this, cap, spec](attnlab::job_progress & p) {
            std::unique_ptr<attnlab::sparse_method> m = attnlab::method_create(spec);
            attnlab::head_table_options opt;
            opt.entropy = false;
            opt.method = m.get();
            auto t = std::make_shared<const attnlab::head_table>(attnlab::head_table_compute(*cap, opt, &p));
            return apply_fn([this, cap, t, spec]() {
                if (cap != st_.cap || spec != st_.method_spec) return;
                method_vals_.clear();
                for (int k = 1; k < k_n_metrics; ++k) method_vals_.push_back(metric_column(*t, k));
                if (metric_ == 0) metric_ = 3;
            });
        });
    }

    // ---- layer_adaptive ----
    struct adaptive_state {
        std::shared_ptr<const attnlab::recall_curves> curves;
        attnlab::head_allocation greedy, uniform, seed;
        double budget = 0.3;
        std::string source;   // what the curves came from, for the label
    };

    void draw_adaptive(float width) {
        ImGui::TextUnformatted("layer_adaptive allocation (block_topk budgets per head)");
        ImGui::SetNextItemWidth(120);
        ImGui::SliderFloat("budget##la", &la_budget_, 0.05f, 0.9f, "%.2f");
        if (ImGui::IsItemDeactivatedAfterEdit() && la_ && la_->curves) reallocate(la_->curves, la_->source);
        ImGui::SameLine();
        bool busy = st_.tasks.busy("layer_adaptive");
        ImGui::BeginDisabled(busy || !st_.model);
        if (ImGui::Button("Calibrate")) request_calibration();
        ImGui::EndDisabled();
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("capture %d tokens of kjv:calib (Old Testament) and fit recall curves", la_ctx_);
        ImGui::SameLine();
        ImGui::SetNextItemWidth(std::max(80.0f, width - ImGui::GetCursorPosX() + ImGui::GetCursorStartPos().x - 100));
        ImGui::InputTextWithHint("##table", "table JSON path", &la_path_);
        ImGui::SameLine();
        if (ImGui::Button("Load table")) load_table(la_path_);
        task_progress_bars(st_, {"layer_adaptive"}, 300, "Cancel##la");
        if (!la_error_.empty()) ImGui::TextColored(ImVec4(1, 0.45f, 0.4f, 1), "%s", la_error_.c_str());
        if (!la_ || !la_->curves) {
            caption("no allocation yet: Calibrate (capture of calibration text, a background task) or load a table "
                    "written by attnlab-cli train layer_adaptive");
            return;
        }
        const auto & c = *la_->curves;
        caption("budget %.3g, block %d, %s. Mean block density / mass recall: greedy %.3f / %.3f, uniform %.3f / %.3f, "
                "seed schedule (scaled to the budget) %.3f / %.3f. Recall measured on the calibration text.",
                la_->budget, c.block, la_->source.c_str(), la_->greedy.mean_density, la_->greedy.mean_recall,
                la_->uniform.mean_density, la_->uniform.mean_recall, la_->seed.mean_density, la_->seed.mean_recall);
        const int nh = std::max(1, c.n_head);
        auto per_layer = [&](const attnlab::head_allocation & a, const char * name, ImU32 col) {
            series s{name, {}, {}, col, true};
            for (size_t li = 0; li < c.layers.size(); ++li) {
                double sum = 0;
                int n = 0;
                for (int h = 0; h < nh; ++h) {
                    size_t k = li * nh + h;
                    if (k < a.density.size()) { sum += a.density[k]; ++n; }
                }
                if (n) { s.x.push_back(c.layers[li]); s.y.push_back(sum / n); }
            }
            return s;
        };
        std::vector<series> ss{per_layer(la_->greedy, "greedy (recall gain per density)", IM_COL32(255, 200, 80, 255)),
                               per_layer(la_->uniform, "uniform", IM_COL32(120, 170, 255, 255)),
                               per_layer(la_->seed, "seed schedule, scaled to budget", IM_COL32(230, 110, 110, 255))};
        series b{"budget", {}, {}, IM_COL32(200, 200, 200, 120), false, 1.0f};
        if (!c.layers.empty()) {
            b.x = {double(c.layers.front()), double(c.layers.back())};
            b.y = {la_->budget, la_->budget};
        }
        ss.push_back(b);
        double yhi = 0.1;
        for (const auto & s : ss) for (double v : s.y) yhi = std::max(yhi, v);
        double xmax = c.layers.empty() ? 1 : std::max(1, c.layers.back());
        ImVec2 size(width, std::max(140.0f, ImGui::GetContentRegionAvail().y - 6));
        line_plot("adaptive", size, ss, {0, xmax, false, "layer"}, {0, std::min(1.05, yhi * 1.1), false, "block density per layer (mean over heads)"});
    }

    void reallocate(std::shared_ptr<const attnlab::recall_curves> c, const std::string & source) {
        double budget = la_budget_;
        st_.tasks.submit("layer_adaptive allocation", "layer_adaptive_alloc", [this, c, budget, source](attnlab::job_progress & p) {
            p.report(0.1, "allocating");
            auto st = std::make_shared<adaptive_state>();
            st->curves = c;
            st->budget = budget;
            st->source = source;
            st->greedy = attnlab::allocate_greedy(*c, budget);
            st->uniform = attnlab::allocate_uniform(*c, budget);
            st->seed = attnlab::allocate_seed_schedule(*c, budget, true);
            return apply_fn([this, st]() { la_ = st; la_error_.clear(); });
        });
    }

    void request_calibration() {
        if (!st_.model || !st_.tok) {
            la_error_ = "layer_adaptive: load a model first";
            return;
        }
        auto m = st_.model;
        auto t = st_.tok;
        int ctx = la_ctx_;
        std::vector<int> layers;
        if (st_.cap) layers = st_.cap->info.layers;   // the layers shown in the grid
        st_.tasks.submit("layer_adaptive calibration", "layer_adaptive", [this, m, t, ctx, layers](attnlab::job_progress & p) {
            using namespace attnlab;
            p.report(0.0, "loading kjv:calib");
            text_source src = text_load("kjv:calib");
            std::vector<qkv_capture> caps = calib_capture_windows(*m, *t, src, ctx, 1, layers, &p);
            std::vector<const qkv_capture *> ptrs;
            for (const auto & c : caps) ptrs.push_back(&c);
            p.report(0.9, "recall curves");
            auto c = std::make_shared<const recall_curves>(
                layer_adaptive_calibrate(ptrs, {0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0}, 64, nullptr));
            std::string source = "calibrated on " + std::to_string(ctx) + " tokens of " + src.spec + " (sha " +
                                 src.sha256.substr(0, 12) + ")";
            return apply_fn([this, c, source]() { reallocate(c, source); });
        });
    }

    void load_table(const std::string & path) {
        try {
            attnlab::layer_adaptive_table t = attnlab::layer_adaptive_load(path);
            auto st = std::make_shared<adaptive_state>();
            st->curves = std::make_shared<const attnlab::recall_curves>(t.curves);
            st->budget = t.rho;
            la_budget_ = float(t.rho);
            st->greedy = t.greedy;
            st->uniform = t.uniform;
            st->seed = t.seed_scaled;
            st->source = "table " + path + " (calibration text " + t.prov.calib_text_spec + ", sha " +
                         t.prov.calib_text_sha256.substr(0, 12) + ")";
            la_ = st;
            la_error_.clear();
        } catch (const std::exception & e) {
            la_error_ = e.what();
        }
    }

    float la_budget_ = 0.3f;
    int la_ctx_ = 1024;   // B = 64 needs long windows: at 256 tokens the minimum block_topk density is 0.7
    std::string la_path_, la_error_;
    std::shared_ptr<const adaptive_state> la_;

    int metric_ = 0;
    std::vector<float> entropy_;
    std::vector<std::vector<float>> method_vals_;
};

} // namespace

std::unique_ptr<view> make_layers_heads_view(app_state & s) { return std::make_unique<layers_heads_view>(s); }

} // namespace attnlab_gui
