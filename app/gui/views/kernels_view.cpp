// Kernels: run the real CPU kernels (dense flash, and block-sparse with a
// block_topk selection) on random Q/K/V of a chosen shape, as a task; measured
// time and GFLOP/s, with the predictor's time shown separately.
#include <algorithm>
#include <chrono>
#include <random>

#include <imgui.h>
#include <omp.h>

#include "attention/attention.h"
#include "attention/block_sparse.h"
#include "methods/method.h"
#include "view.h"

namespace attnlab_gui {

namespace {

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

class kernels_view : public view {
public:
    explicit kernels_view(app_state & s) : view(s) {}
    const char * id() const override { return "kernels"; }
    const char * title() const override { return "Kernels"; }

    bool on_script(const std::string & cmd, const std::vector<std::string> & a) override {
        if (cmd == "kernel" && a.size() >= 1) {
            L_ = std::stoi(a[0]);
            if (a.size() >= 2) rho_ = std::stof(a[1]);
            run();
            return true;
        }
        return false;
    }

    void drawContent() override {
        ImGui::SetNextItemWidth(260);
        ImGui::SliderInt("L (tokens)", &L_, 256, 16384, "%d", ImGuiSliderFlags_Logarithmic);
        ImGui::SameLine();
        ImGui::SetNextItemWidth(120);
        const char * dims[] = {"32", "64", "128"};
        ImGui::Combo("head dim", &dim_idx_, dims, 3);
        ImGui::SameLine();
        ImGui::SetNextItemWidth(120);
        ImGui::SliderInt("heads", &heads_, 1, 16);
        ImGui::SetNextItemWidth(260);
        ImGui::SliderFloat("block_topk density rho", &rho_, 0.02f, 1.0f, "%.2f");
        ImGui::SameLine();
        ImGui::SetNextItemWidth(120);
        ImGui::SliderInt("repeats", &reps_, 1, 9);
        bool busy = st_.tasks.busy("kernel");
        ImGui::BeginDisabled(busy);
        if (ImGui::Button("Run", ImVec2(100, 0))) run();
        ImGui::EndDisabled();
        for (const auto & t : st_.tasks.snapshot()) {
            if (t.group != "kernel") continue;
            ImGui::SameLine();
            ImGui::ProgressBar(float(t.fraction), ImVec2(300, 0), t.stage.c_str());
            ImGui::SameLine();
            if (ImGui::SmallButton("Cancel")) st_.tasks.cancel(t.id);
        }
        caption("CPU kernels of core/attention on random Q, K, V (causal, %d threads). Time is the median of the repeats; "
                "GFLOP/s counts 4 d FLOPs per computed causal pair. Sparse: block_topk:B=64 selection (the predictor, timed "
                "separately) then the block-sparse kernel.", omp_threads());
        const auto & runs = st_.kernel_runs;
        if (runs.empty()) return;
        if (ImGui::BeginTable("runs", 9, ImGuiTableFlags_Borders | ImGuiTableFlags_RowBg | ImGuiTableFlags_ScrollY,
                              ImVec2(0, std::min(260.0f, 30.0f + 24.0f * runs.size())))) {
            for (const char * h : {"L", "d", "heads", "dense ms", "dense GFLOP/s", "rho", "sparse ms", "predictor ms", "speedup (kernel / incl. predictor)"})
                ImGui::TableSetupColumn(h);
            ImGui::TableHeadersRow();
            for (auto it = runs.rbegin(); it != runs.rend(); ++it) {
                const auto & r = *it;
                ImGui::TableNextRow();
                ImGui::TableNextColumn(); ImGui::Text("%d", r.L);
                ImGui::TableNextColumn(); ImGui::Text("%d", r.head_dim);
                ImGui::TableNextColumn(); ImGui::Text("%d", r.heads);
                ImGui::TableNextColumn(); ImGui::Text("%.2f", r.dense_s * 1e3);
                ImGui::TableNextColumn(); ImGui::Text("%.1f", r.dense_gflops);
                ImGui::TableNextColumn(); ImGui::Text("%.3f", r.density);
                ImGui::TableNextColumn(); r.has_sparse ? ImGui::Text("%.2f", r.sparse_s * 1e3) : ImGui::TextDisabled("-");
                ImGui::TableNextColumn(); r.has_sparse ? ImGui::Text("%.2f", r.predictor_s * 1e3) : ImGui::TextDisabled("-");
                ImGui::TableNextColumn();
                if (r.has_sparse && r.sparse_s > 0) ImGui::Text("%.2fx / %.2fx", r.dense_s / r.sparse_s, r.dense_s / (r.sparse_s + r.predictor_s));
                else ImGui::TextDisabled("-");
            }
            ImGui::EndTable();
        }
        // Time vs L for the runs of the current shape.
        series d{"dense flash (measured)", {}, {}, IM_COL32(90, 170, 255, 255), true};
        series s{"block-sparse kernel (measured)", {}, {}, IM_COL32(255, 200, 90, 255), true};
        series p{"sparse + predictor (measured)", {}, {}, IM_COL32(255, 120, 90, 255), true};
        std::vector<kernel_record> sorted = runs;
        std::sort(sorted.begin(), sorted.end(), [](auto & a, auto & b) { return a.L < b.L; });
        double tmax = 1e-6, tmin = 1e30, lmin = 1e9, lmax = 0;
        for (const auto & r : sorted) {
            d.x.push_back(r.L); d.y.push_back(r.dense_s * 1e3);
            if (r.has_sparse) {
                s.x.push_back(r.L); s.y.push_back(r.sparse_s * 1e3);
                p.x.push_back(r.L); p.y.push_back((r.sparse_s + r.predictor_s) * 1e3);
            }
            tmax = std::max(tmax, r.dense_s * 1e3);
            tmin = std::min(tmin, r.dense_s * 1e3);
            if (r.has_sparse) tmin = std::min(tmin, r.sparse_s * 1e3);
            lmin = std::min(lmin, double(r.L));
            lmax = std::max(lmax, double(r.L));
        }
        if (lmax <= lmin) { lmin /= 2; lmax *= 2; }
        ImVec2 av = ImGui::GetContentRegionAvail();
        line_plot("times", ImVec2(av.x, av.y - 10), {d, s, p}, {lmin, lmax, true, "L (tokens)"},
                  {tmin * 0.5, tmax * 1.5, true, "time (ms)"});
    }

private:
    static int omp_threads() { return omp_get_max_threads(); }

    void run() {
        int L = L_, d = 32 << dim_idx_, H = heads_, reps = reps_;
        float rho = rho_;
        bool methods = st_.methods_available;
        st_.tasks.submit("kernels L=" + std::to_string(L), "kernel", [this, L, d, H, reps, rho, methods](attnlab::job_progress & p) {
            std::mt19937 rng(1234);
            std::normal_distribution<float> nd(0.0f, 1.0f);
            size_t n = size_t(L) * H * d;
            std::vector<float> q(n), k(n), v(n), o(n);
            for (auto * x : {&q, &k, &v})
                for (auto & e : *x) e = nd(rng);
            attnlab::attention_layer_io io;
            io.n_tokens = L; io.n_head = H; io.n_head_kv = H; io.head_dim = d;
            io.scale = 1.0f / std::sqrt(float(d)); io.causal = true;
            io.q = q.data(); io.k = k.data(); io.v = v.data(); io.out = o.data();
            kernel_record r;
            r.L = L; r.head_dim = d; r.heads = H; r.density = 1.0;
            std::vector<double> ts;
            for (int i = 0; i < reps; ++i) {
                attnlab::job_step(&p, double(i) / (2 * reps), "dense flash");
                double t0 = now_s();
                attnlab::attention_dense_flash(io);
                ts.push_back(now_s() - t0);
            }
            std::sort(ts.begin(), ts.end());
            r.dense_s = ts[ts.size() / 2];
            r.dense_gflops = attnlab::attention_flops(L, d, true) * H / r.dense_s * 1e-9;
            if (methods) {
                char spec[64];
                std::snprintf(spec, sizeof spec, "block_topk:rho=%.4f,B=64", rho);
                auto m = attnlab::method_create(spec);
                r.method = m->spec();
                std::vector<attnlab::selection> sels(H);
                double t0 = now_s();
                for (int h = 0; h < H; ++h) sels[h] = m->select(attnlab::head_inputs_of(io, h));
                r.predictor_s = now_s() - t0;
                double bd = 0;
                for (auto & s : sels) bd += attnlab::selection_block_density(s);
                r.density = bd / H;
                ts.clear();
                for (int i = 0; i < reps; ++i) {
                    attnlab::job_step(&p, 0.5 + double(i) / (2 * reps), "block-sparse");
                    double t1 = now_s();
                    attnlab::attention_block_sparse(io, sels.data());
                    ts.push_back(now_s() - t1);
                }
                std::sort(ts.begin(), ts.end());
                r.sparse_s = ts[ts.size() / 2];
                r.has_sparse = true;
            }
            return apply_fn([this, r]() { st_.kernel_runs.push_back(r); });
        });
    }

    int L_ = 4096, dim_idx_ = 1, heads_ = 4, reps_ = 3;
    float rho_ = 0.2f;
};

} // namespace

std::unique_ptr<view> make_kernels_view(app_state & s) { return std::make_unique<kernels_view>(s); }

} // namespace attnlab_gui
