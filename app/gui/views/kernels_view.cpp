// Kernels: run the real attention kernels (dense flash, and block-sparse with a
// block_topk selection) on random Q/K/V of a chosen shape, as a task, on the
// CPU and, when a GPU is present, on the GPU side by side (core/lab/
// kernel_bench.h; kernels/kernel_bench_gpu.h). Measured times and TFLOP/s on
// the computed blocks; the selection (CPU predictor / GPU gate) timed
// separately. Every row names the device that produced it.
#include <algorithm>
#include <cstdio>

#include <imgui.h>

#include "attention/gpu_backend.h"
#include "base/error.h"
#include "metrics/kernel_bench.h"
#include "view.h"
#ifdef ATTNLAB_HAVE_CUDA
#include "kernel_bench_gpu.h"   // kernels/
#endif

namespace attnlab_gui {

namespace {

enum device_choice { dev_auto = 0, dev_cpu = 1, dev_gpu = 2 };

// One measured run on one device (CPU rows also go to app_state::kernel_runs,
// which the Quadratic view reads as the CPU's measured rate).
struct kernel_row {
    int L = 0, head_dim = 0, heads = 0;
    double rho = 0.0;
    bool gpu = false;
    attnlab::kernel_bench_result r;
};

// "" when a GPU is usable here, else why not (for labels).
std::string gpu_name() {
    attnlab::gpu_attention_backend * b = attnlab::gpu_backend_get();
    return b ? b->device_name() : std::string();
}

class kernels_view : public view {
public:
    explicit kernels_view(app_state & s) : view(s) {}

    bool on_script(const std::string & cmd, const std::vector<std::string> & a) override {
        if (cmd == "kernel" && a.size() >= 1) {
            L_ = std::stoi(a[0]);
            if (a.size() >= 2) rho_ = std::stof(a[1]);
            run();
            return true;
        }
        if (cmd == "kernel_device" && a.size() == 1) {   // auto | cpu | gpu
            if (a[0] == "auto") device_ = dev_auto;
            else if (a[0] == "cpu") device_ = dev_cpu;
            else if (a[0] == "gpu") device_ = dev_gpu;
            else return false;
            return true;
        }
        return false;
    }

    void settings_save(nlohmann::json & j) const override {
        j = {{"L", L_}, {"dim_index", dim_idx_}, {"heads", heads_}, {"repeats", reps_}, {"device", device_}, {"rho", rho_}};
    }
    void settings_load(const nlohmann::json & j) override {
        auto integer = [&](const char * k, int & v, int lo, int hi) {
            if (j.contains(k) && j[k].is_number_integer()) v = std::clamp(j[k].get<int>(), lo, hi);
        };
        integer("L", L_, 256, 16384);
        integer("dim_index", dim_idx_, 0, 2);
        integer("heads", heads_, 1, 16);
        integer("repeats", reps_, 1, 20);
        integer("device", device_, dev_auto, dev_gpu);
        if (j.contains("rho") && j["rho"].is_number()) rho_ = std::clamp(j["rho"].get<float>(), 0.01f, 1.0f);
    }

    void drawContent() override {
        const std::string gpu = gpu_name();
        ImGui::SetNextItemWidth(260);
        ImGui::SliderInt("L (tokens)", &L_, 256, 16384, "%d", ImGuiSliderFlags_Logarithmic);
        ImGui::SameLine();
        ImGui::SetNextItemWidth(120);
        const char * dims[] = {"32", "64", "128"};
        ImGui::Combo("head dim", &dim_idx_, dims, 3);
        ImGui::SameLine();
        ImGui::SetNextItemWidth(120);
        ImGui::SliderInt("heads", &heads_, 1, 16);
        ImGui::SameLine();
        ImGui::SetNextItemWidth(110);
        const char * devs[] = {"auto", "CPU", "GPU"};
        ImGui::Combo("device", &device_, devs, 3);
        ImGui::SetNextItemWidth(260);
        ImGui::SliderFloat("block_topk density rho", &rho_, 0.02f, 1.0f, "%.2f");
        ImGui::SameLine();
        ImGui::SetNextItemWidth(120);
        ImGui::SliderInt("repeats", &reps_, 1, 9);
        bool busy = st_.tasks.busy("kernel");
        const bool no_gpu_for_choice = device_ == dev_gpu && gpu.empty();
        ImGui::BeginDisabled(busy || no_gpu_for_choice);
        if (ImGui::Button("Run", ImVec2(100, 0))) run();
        ImGui::EndDisabled();
        for (const auto & t : st_.tasks.snapshot()) {
            if (t.group != "kernel") continue;
            ImGui::SameLine();
            ImGui::ProgressBar(float(t.fraction), ImVec2(300, 0), t.stage.c_str());
            ImGui::SameLine();
            if (ImGui::SmallButton("Cancel")) st_.tasks.cancel(t.id);
        }
        if (!gpu.empty()) ImGui::TextColored(ImVec4(0.5f, 0.9f, 0.5f, 1), "GPU: %s", gpu.c_str());
        else ImGui::TextDisabled("%s", no_gpu_reason());
        if (no_gpu_for_choice) {
            ImGui::SameLine();
            ImGui::TextColored(ImVec4(1, 0.6f, 0.4f, 1), "device GPU chosen but none is usable: pick auto or CPU");
        }
        caption("Real kernels on random Q, K, V (causal): CPU = core/attention (fp32, OpenMP); GPU = the CUDA flash "
                "kernels (bf16 in, fp32 accumulation; CUDA-event times, after a warm-up). Time is the median of the "
                "repeats. TFLOP/s counts 4 d FLOPs per causal pair computed: all of them for dense, those inside the kept "
                "blocks for sparse. Sparse: a block_topk selection (CPU: the method's select(), B=64; GPU: the GPU gate, "
                "B=64) timed separately, then the block-sparse kernel. auto runs the CPU, and the GPU when present.");
        if (rows_.empty()) return;
        if (ImGui::BeginTable("runs", 11, ImGuiTableFlags_Borders | ImGuiTableFlags_RowBg | ImGuiTableFlags_ScrollY,
                              ImVec2(0, std::min(260.0f, 30.0f + 24.0f * rows_.size())))) {
            for (const char * h : {"device", "L", "d", "heads", "dense ms", "dense TFLOP/s", "block density",
                                   "gate ms", "sparse ms", "sparse TFLOP/s", "speedup (kernel / incl. gate)"})
                ImGui::TableSetupColumn(h);
            ImGui::TableHeadersRow();
            for (auto it = rows_.rbegin(); it != rows_.rend(); ++it) {
                const auto & w = *it;
                const auto & r = w.r;
                ImGui::TableNextRow();
                ImGui::TableNextColumn();
                ImGui::TextUnformatted(w.gpu ? ("GPU " + r.device).c_str() : r.device.c_str());
                if (!r.note.empty() && ImGui::IsItemHovered()) ImGui::SetTooltip("%s", r.note.c_str());
                ImGui::TableNextColumn(); ImGui::Text("%d", w.L);
                ImGui::TableNextColumn(); ImGui::Text("%d", w.head_dim);
                ImGui::TableNextColumn(); ImGui::Text("%d", w.heads);
                ImGui::TableNextColumn();
                if (r.has_dense) ImGui::Text("%.3f", r.dense_s * 1e3);
                else ImGui::TextColored(ImVec4(1, 0.6f, 0.4f, 1), "not run: %s", r.note.c_str());
                ImGui::TableNextColumn(); r.has_dense ? ImGui::Text("%.3f", r.dense_tflops()) : ImGui::TextDisabled("-");
                ImGui::TableNextColumn(); r.has_sparse ? ImGui::Text("%.3f", r.block_density) : ImGui::TextDisabled("-");
                ImGui::TableNextColumn(); r.has_sparse ? ImGui::Text("%.3f", r.gate_s * 1e3) : ImGui::TextDisabled("-");
                if (r.has_sparse && ImGui::IsItemHovered()) ImGui::SetTooltip("%s", r.gate.c_str());
                ImGui::TableNextColumn(); r.has_sparse ? ImGui::Text("%.3f", r.sparse_s * 1e3) : ImGui::TextDisabled("-");
                ImGui::TableNextColumn(); r.has_sparse ? ImGui::Text("%.3f", r.sparse_tflops()) : ImGui::TextDisabled("-");
                ImGui::TableNextColumn();
                if (r.has_dense && r.has_sparse && r.sparse_s > 0)
                    ImGui::Text("%.2fx / %.2fx", r.dense_s / r.sparse_s, r.dense_s / (r.sparse_s + r.gate_s));
                else ImGui::TextDisabled("-");
            }
            ImGui::EndTable();
        }
        // Time vs L, one set of curves per device.
        std::vector<series> curves;
        double tmax = 1e-6, tmin = 1e30, lmin = 1e9, lmax = 0;
        for (int g = 0; g < 2; ++g) {
            std::vector<const kernel_row *> sorted;
            std::string dev;
            for (const auto & w : rows_)
                if (w.gpu == (g == 1) && w.r.has_dense) {
                    sorted.push_back(&w);
                    dev = w.gpu ? "GPU" : "CPU";
                }
            if (sorted.empty()) continue;
            std::sort(sorted.begin(), sorted.end(), [](auto * a, auto * b) { return a->L < b->L; });
            const ImU32 c0 = g ? IM_COL32(120, 230, 140, 255) : IM_COL32(90, 170, 255, 255);
            const ImU32 c1 = g ? IM_COL32(230, 120, 230, 255) : IM_COL32(255, 200, 90, 255);
            const ImU32 c2 = g ? IM_COL32(200, 200, 200, 255) : IM_COL32(255, 120, 90, 255);
            series d{dev + " dense flash (measured)", {}, {}, c0, true};
            series s{dev + " block-sparse kernel (measured)", {}, {}, c1, true};
            series p{dev + " sparse + gate (measured)", {}, {}, c2, true};
            for (const kernel_row * w : sorted) {
                const auto & r = w->r;
                d.x.push_back(w->L); d.y.push_back(r.dense_s * 1e3);
                if (r.has_sparse) {
                    s.x.push_back(w->L); s.y.push_back(r.sparse_s * 1e3);
                    p.x.push_back(w->L); p.y.push_back((r.sparse_s + r.gate_s) * 1e3);
                    tmin = std::min(tmin, r.sparse_s * 1e3);
                }
                tmax = std::max(tmax, (r.has_sparse ? std::max(r.dense_s, r.sparse_s + r.gate_s) : r.dense_s) * 1e3);
                tmin = std::min(tmin, r.dense_s * 1e3);
                lmin = std::min(lmin, double(w->L));
                lmax = std::max(lmax, double(w->L));
            }
            curves.push_back(d);
            if (!s.x.empty()) {
                curves.push_back(s);
                curves.push_back(p);
            }
        }
        if (curves.empty()) return;
        if (lmax <= lmin) { lmin /= 2; lmax *= 2; }
        ImVec2 av = ImGui::GetContentRegionAvail();
        line_plot("times", ImVec2(av.x, av.y - 10), curves, {lmin, lmax, true, "L (tokens)"},
                  {tmin * 0.5, tmax * 1.5, true, "time (ms)"});
    }

private:
    static const char * no_gpu_reason() {
#ifdef ATTNLAB_HAVE_CUDA
        return "CPU only (no CUDA device)";
#else
        return "CPU only (built without CUDA)";
#endif
    }

    void run() {
        attnlab::kernel_bench_shape s;
        s.L = L_; s.head_dim = 32 << dim_idx_; s.n_head = heads_; s.reps = reps_; s.rho = rho_; s.block = 64;
        const bool sparse = st_.methods_available;
        const bool have_gpu = !gpu_name().empty();
        const bool on_cpu = device_ != dev_gpu;
        const bool on_gpu = device_ != dev_cpu && have_gpu;
        if (!on_cpu && !on_gpu) return;   // GPU chosen, none present (the Run button says so)
        std::string name = "kernels L=" + std::to_string(s.L) + (on_cpu ? " CPU" : "") + (on_gpu ? " GPU" : "");
        st_.tasks.submit(name, "kernel", [this, s, sparse, on_cpu, on_gpu](attnlab::job_progress & p) {
            const attnlab::kernel_bench_inputs in = attnlab::kernel_bench_make_inputs(s);
            std::vector<kernel_row> out;
            auto row = [&](bool gpu) {
                kernel_row w;
                w.L = s.L; w.head_dim = s.head_dim; w.heads = s.n_head; w.rho = s.rho; w.gpu = gpu;
                return w;
            };
            if (on_cpu) {
                kernel_row w = row(false);
                w.r = attnlab::kernel_bench_cpu(in, sparse, &p);
                out.push_back(w);
            }
#ifdef ATTNLAB_HAVE_CUDA
            if (on_gpu) {
                kernel_row w = row(true);
                try {
                    w.r = attnlab::kernel_bench_gpu(in, sparse, &p);
                } catch (const attnlab::job_cancelled &) {
                    throw;
                } catch (const std::exception & e) {
                    // Keep the CPU results of this run; the row says what failed.
                    w.r.device = gpu_name();
                    w.r.note = e.what();
                }
                out.push_back(w);
            }
#else
            (void) on_gpu;
#endif
            return apply_fn([this, out]() {
                for (const auto & w : out) {
                    rows_.push_back(w);
                    if (w.gpu || !w.r.has_dense) continue;
                    kernel_record k;
                    k.L = w.L; k.head_dim = w.head_dim; k.heads = w.heads;
                    k.dense_s = w.r.dense_s;
                    k.dense_gflops = w.r.dense_tflops() * 1e3;
                    k.has_sparse = w.r.has_sparse;
                    k.density = w.r.has_sparse ? w.r.block_density : 1.0;
                    k.sparse_s = w.r.sparse_s;
                    k.sparse_gflops = w.r.sparse_tflops() * 1e3;
                    k.predictor_s = w.r.gate_s;
                    k.method = w.r.gate;
                    st_.kernel_runs.push_back(k);
                }
            });
        });
    }

    std::vector<kernel_row> rows_;
    int L_ = 4096, dim_idx_ = 1, heads_ = 4, reps_ = 3, device_ = dev_auto;
    float rho_ = 0.2f;
};

} // namespace

std::unique_ptr<view> make_kernels_view(app_state & s) { return std::make_unique<kernels_view>(s); }

} // namespace attnlab_gui
