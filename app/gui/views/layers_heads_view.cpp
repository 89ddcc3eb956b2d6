// Layers x heads: one cell per (captured layer, query head) for entropy and,
// with a sparse method, density, mass recall, output error and oracle
// precision/recall; click a cell to open that head's attention map.
#include <cmath>

#include <imgui.h>

#include "../head_map.h"
#include "metrics/head_metrics.h"
#include "methods/method.h"
#include "view.h"

namespace attnlab_gui {

namespace {

struct metric_def {
    const char * name, * unit;
    bool lower_is_better;
};
const metric_def k_metrics[] = {
    {"entropy", "nats", false},      {"token density", "fraction", true}, {"block density", "fraction", true},
    {"mass recall", "fraction", false}, {"output rel. error", "||dO||/||O||", true},
    {"oracle precision", "fraction", false}, {"oracle recall", "fraction", false},
};
constexpr int k_n_metrics = 7;

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
    const char * id() const override { return "layers_heads"; }
    const char * title() const override { return "Layers x heads"; }

    bool on_script(const std::string & cmd, const std::vector<std::string> & a) override {
        if (cmd == "metrics") { request_method_metrics(); return true; }
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
        for (const auto & t : st_.tasks.snapshot()) {
            if (t.group != "head_metrics" && t.group != "entropy") continue;
            char buf[128];
            std::snprintf(buf, sizeof buf, "%s %.0f%%", t.stage.c_str(), t.fraction * 100);
            ImGui::ProgressBar(float(t.fraction), ImVec2(400, 0), buf);
            ImGui::SameLine();
            if (ImGui::SmallButton("Cancel")) st_.tasks.cancel(t.id);
        }
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
        draw_per_layer(*vals, rows, cols, ImVec2(ImGui::GetContentRegionAvail().x, gh * 0.5f));
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
            const int rows = int(cap->layers.size()), cols = cap->info.n_head;
            auto out = std::make_shared<std::vector<float>>(size_t(rows) * cols);
            for (int r = 0; r < rows; ++r) {
                attnlab::job_step(&p, double(r) / rows, "entropy layer " + std::to_string(cap->layers[r].layer));
#pragma omp parallel for schedule(dynamic, 1)
                for (int c = 0; c < cols; ++c) (*out)[size_t(r) * cols + c] = float(head_entropy(*cap, r, c));
            }
            return apply_fn([this, cap, out]() {
                if (cap == st_.cap) entropy_ = *out;
            });
        });
    }

    void request_method_metrics() {
        if (!st_.cap) return;
        auto cap = st_.cap;
        std::string spec = st_.method_spec;
        st_.tasks.submit("metrics " + spec, "head_metrics", [this, cap, spec](attnlab::job_progress & p) {
            std::shared_ptr<const attnlab::sparse_method> m = attnlab::method_create(spec);
            const int rows = int(cap->layers.size()), cols = cap->info.n_head;
            auto out = std::make_shared<std::vector<std::vector<float>>>(k_n_metrics - 1,
                                                                         std::vector<float>(size_t(rows) * cols));
            for (int r = 0; r < rows; ++r) {
                attnlab::attention_layer_io io = cap->layer_io(r);
                for (int c = 0; c < cols; ++c) {
                    attnlab::job_step(&p, double(r * cols + c) / (rows * cols),
                                      "layer " + std::to_string(io.layer) + " head " + std::to_string(c));
                    attnlab::head_metrics hm = attnlab::head_metrics_of_method(io, c, *m);
                    size_t k = size_t(r) * cols + c;
                    (*out)[0][k] = float(hm.token_density);
                    (*out)[1][k] = float(hm.block_density);
                    (*out)[2][k] = float(hm.mass_recall);
                    (*out)[3][k] = float(hm.output_rel_error);
                    (*out)[4][k] = float(hm.oracle_precision);
                    (*out)[5][k] = float(hm.oracle_recall);
                }
            }
            return apply_fn([this, cap, out, spec]() {
                if (cap != st_.cap || spec != st_.method_spec) return;
                method_vals_ = *out;
                if (metric_ == 0) metric_ = 3;
            });
        });
    }

    int metric_ = 0;
    std::vector<float> entropy_;
    std::vector<std::vector<float>> method_vals_;
};

} // namespace

std::unique_ptr<view> make_layers_heads_view(app_state & s) { return std::make_unique<layers_heads_view>(s); }

} // namespace attnlab_gui
