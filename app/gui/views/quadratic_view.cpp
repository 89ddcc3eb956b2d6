// Quadratic lesson: what dense attention costs as the context grows, and what
// a sparse method at density rho saves. Every number is exact arithmetic from
// the chosen model's shape (a core/sim preset, assets/presets/models, or the
// loaded model), labelled as computed; whole-model prefill times and memory
// come from the roofline simulator (core/sim/cost.h) on a hardware preset
// (assets/presets/hardware), labelled SIMULATED; a CPU projection uses the
// rate measured in the Kernels view (labelled as such).
#include <cmath>

#include <algorithm>

#include <imgui.h>
#include <stdexcept>

#include "sim/cost.h"
#include "sim/presets.h"
#include "view.h"

namespace attnlab_gui {

namespace {

struct costs {
    double score_bytes, flops, bytes_flash, bytes_naive;
};

// One head, causal, L tokens, head dim d, element size eb, kept fraction rho.
costs head_costs(double L, double d, double eb, double rho) {
    double pairs = L * (L + 1) / 2;
    costs c;
    c.score_bytes = L * L * eb * (rho < 1 ? rho : 1.0);   // materialised S (dense: the full square)
    c.flops = 4.0 * d * pairs * rho;                        // QK^T and PV, 2 FLOPs per multiply-add
    c.bytes_flash = 4.0 * L * d * eb;                       // read Q, K, V, write O
    c.bytes_naive = c.bytes_flash + 4.0 * L * L * eb * rho; // + write/read S and P
    return c;
}

// "12.3 us", "4.56 ms", "7.8 s": `digits` decimals of ms and s (microseconds always 1).
std::string format_seconds(double s, int digits) {
    char b[32];
    if (s < 1e-3) std::snprintf(b, sizeof b, "%.1f us", s * 1e6);
    else if (s < 1) std::snprintf(b, sizeof b, "%.*f ms", digits, s * 1e3);
    else std::snprintf(b, sizeof b, "%.*f s", digits, s);
    return b;
}

class quadratic_view : public view {
public:
    explicit quadratic_view(app_state & s) : view(s) {
        try {
            models_ = attnlab::preset_list("models");
            hws_ = attnlab::preset_list("hardware");
        } catch (const std::exception & e) {
            preset_error_ = e.what();
        }
        for (size_t i = 0; i < hws_.size(); ++i) {
            if (hws_[i] == "h100-sxm") hw_sel_ = int(i);
        }
    }

    bool on_script(const std::string & cmd, const std::vector<std::string> & a) override {
        if (cmd == "lesson_ctx" && a.size() == 1) { ctx_ = std::stoi(a[0]); return true; }
        if (cmd == "lesson_density" && a.size() == 1) { rho_ = std::stof(a[0]); return true; }
        if (cmd == "lesson_model" && a.size() == 1) {
            for (size_t i = 0; i < models_.size(); ++i) {
                if (models_[i] == a[0]) model_sel_ = int(i) + 1;
            }
            return true;
        }
        if (cmd == "lesson_hw" && a.size() == 1) {
            for (size_t i = 0; i < hws_.size(); ++i) {
                if (hws_[i] == a[0]) hw_sel_ = int(i);
            }
            return true;
        }
        // expect_fits naive|flash yes|no: what the last drawn table says for dense
        if (cmd == "expect_fits" && a.size() == 2) {
            if (!sim_ok_) throw std::runtime_error("quadratic lesson: no simulated rows drawn yet");
            const bool fits = a[0] == "naive" ? naive_fits_ : flash_fits_;
            if (fits != (a[1] == "yes"))
                throw std::runtime_error("quadratic lesson: dense " + a[0] + " kernel " + (fits ? "fits" : "does not fit") +
                                         " at L = " + std::to_string(ctx_) + ", expected " + a[1]);
            return true;
        }
        return false;
    }

    void settings_save(nlohmann::json & j) const override {
        j = {{"ctx", ctx_}, {"rho", rho_}, {"hw", hw_key_}};
    }
    void settings_load(const nlohmann::json & j) override {
        if (j.contains("ctx") && j["ctx"].is_number_integer()) ctx_ = std::clamp(j["ctx"].get<int>(), 1024, 1 << 20);
        if (j.contains("rho") && j["rho"].is_number()) rho_ = std::clamp(j["rho"].get<float>(), 0.01f, 1.0f);
        if (j.contains("hw") && j["hw"].is_string()) {
            const std::string hw = j["hw"].get<std::string>();
            for (size_t i = 0; i < hws_.size(); ++i)
                if (hws_[i] == hw) hw_sel_ = int(i);
        }
    }

    void drawContent() override {
        const attnlab::model_info & f = st_.facts;
        draw_preset_pickers();
        const attnlab::model_preset * mp = current_model();
        int layers = mp ? mp->n_layer : 30, heads = mp ? mp->n_head : 9, d = mp ? mp->head_dim : 64;
        std::string mname = mp ? mp->name : "SmolLM2-135M (default shape)";
        (void) f;
        ImGui::SetNextItemWidth(420);
        ImGui::SliderInt("context length L (tokens)", &ctx_, 1024, 1 << 20, "%d", ImGuiSliderFlags_Logarithmic);
        ImGui::SetNextItemWidth(420);
        ImGui::SliderFloat("sparse density rho (kept fraction of causal pairs)", &rho_, 0.005f, 1.0f, "%.3f",
                           ImGuiSliderFlags_Logarithmic);
        ImGui::SetNextItemWidth(120);
        const char * dts[] = {"fp16/bf16 (2 B)", "fp32 (4 B)"};
        ImGui::Combo("element", &dtype_, dts, 2);
        ImGui::SameLine();
        ImGui::TextDisabled("model: %s - %d layers x %d heads, head dim %d (%s)", mname.c_str(), layers, heads, d,
                            model_sel_ == 0 ? "the loaded model's config" : "preset");
        const double eb = dtype_ == 0 ? 2 : 4, L = ctx_;
        costs dn = head_costs(L, d, eb, 1.0), sp = head_costs(L, d, eb, rho_);
        const double hm = double(heads) * layers;
        double gflops = 0;
        std::string rate_src;
        for (const auto & k : st_.kernel_runs) {
            if (k.dense_gflops > gflops) {
                gflops = k.dense_gflops;
                rate_src = "L=" + std::to_string(k.L) + ", d=" + std::to_string(k.head_dim);
            }
        }

        if (ImGui::BeginTable("costs", 5, ImGuiTableFlags_Borders | ImGuiTableFlags_RowBg | ImGuiTableFlags_SizingStretchProp)) {
            ImGui::TableSetupColumn("quantity (computed, exact)", ImGuiTableColumnFlags_WidthStretch, 2.2f);
            ImGui::TableSetupColumn("dense, per head");
            ImGui::TableSetupColumn("dense, whole model");
            ImGui::TableSetupColumn("sparse, per head");
            ImGui::TableSetupColumn("sparse, whole model");
            ImGui::TableHeadersRow();
            auto row = [&](const char * q, double a, double b, const char * unit) {
                ImGui::TableNextRow();
                ImGui::TableNextColumn(); ImGui::TextUnformatted(q);
                ImGui::TableNextColumn(); ImGui::TextUnformatted(format_si(a, unit).c_str());
                ImGui::TableNextColumn(); ImGui::TextUnformatted(format_si(a * hm, unit).c_str());
                ImGui::TableNextColumn(); ImGui::TextUnformatted(format_si(b, unit).c_str());
                ImGui::TableNextColumn(); ImGui::TextUnformatted(format_si(b * hm, unit).c_str());
            };
            row("score matrix L x L, materialised", dn.score_bytes, sp.score_bytes, "B");
            row("attention FLOPs (4 d per causal pair)", dn.flops, sp.flops, "FLOP");
            row("memory traffic, flash-style (Q,K,V,O)", dn.bytes_flash, sp.bytes_flash, "B");
            row("memory traffic, naive (+ S and P)", dn.bytes_naive, sp.bytes_naive, "B");
            if (gflops > 0) {
                ImGui::TableNextRow();
                ImGui::TableNextColumn();
                ImGui::Text("time at %.1f GFLOP/s (projection)", gflops);
                auto t = [](double s) { return format_seconds(s, 1); };
                for (double v : {dn.flops, dn.flops * hm, sp.flops, sp.flops * hm}) {
                    ImGui::TableNextColumn();
                    ImGui::TextUnformatted(t(v / (gflops * 1e9)).c_str());
                }
            }
            draw_sim_rows(mp);
            ImGui::EndTable();
        }
        if (sim_ok_) caption("SIMULATED rows: core/sim roofline (sim_run, prefill of one sequence, flash-style attention, "
                             "block density rho; a naive kernel writes the whole L x L matrix whatever the mask) for %s on %s (%s, %.0f TFLOP/s dense, "
                             "%.0f GB/s, %.0f GB); a model, not a measurement.",
                             mname.c_str(), hw_.name.c_str(), hw_.precision.c_str(), hw_.dense_tflops, hw_.mem_bw_gbs, hw_.mem_gb);
        if (gflops > 0) caption("Times: FLOPs / the best dense CPU kernel rate measured in Kernels (%s); a projection, not a measurement at this L.", rate_src.c_str());
        else caption("Run the dense kernel in the Kernels view to add projected times from a measured rate.");
        caption("Exact counts: pairs = L(L+1)/2 (causal), score matrix = L^2 elements, sparse = rho x dense. "
                "Doubling L multiplies score memory and FLOPs by 4, flash-style traffic by 2.");

        ImVec2 avail = ImGui::GetContentRegionAvail();
        float h = avail.y - 140;
        // Memory and FLOPs per head vs L, log-log.
        series sm{"score matrix, dense (B)", {}, {}, IM_COL32(255, 120, 90, 255)};
        series ss{"score matrix, sparse (B)", {}, {}, IM_COL32(255, 200, 120, 255)};
        series fm{"FLOPs, dense", {}, {}, IM_COL32(90, 170, 255, 255)};
        series fs{"FLOPs, sparse", {}, {}, IM_COL32(150, 220, 255, 255)};
        series tr{"flash traffic (B)", {}, {}, IM_COL32(140, 230, 140, 255)};
        for (double x = 1024; x <= (1 << 20) * 1.01; x *= 1.25) {
            costs a = head_costs(x, d, eb, 1.0), b = head_costs(x, d, eb, rho_);
            sm.x.push_back(x); sm.y.push_back(a.score_bytes);
            ss.x.push_back(x); ss.y.push_back(b.score_bytes);
            fm.x.push_back(x); fm.y.push_back(a.flops);
            fs.x.push_back(x); fs.y.push_back(b.flops);
            tr.x.push_back(x); tr.y.push_back(a.bytes_flash);
        }
        char lab[64];
        std::snprintf(lab, sizeof lab, "L = %d", ctx_);
        line_plot("curves", ImVec2(avail.x * 0.58f, h), {sm, ss, fm, fs, tr}, {1024, double(1 << 20), true, "context length L (tokens)"},
                  {1e5, 1e15, true, "per head (bytes or FLOPs)"}, {{L, lab, IM_COL32(255, 255, 255, 200)}});
        ImGui::SameLine();
        draw_grid(ImVec2(avail.x * 0.4f, h));
        draw_claims(d, eb);
    }

private:
    // The N^2 grid to scale: the current L x L inside the 1M x 1M square.
    void draw_grid(ImVec2 size) {
        ImVec2 o = ImGui::GetCursorScreenPos();
        ImGui::InvisibleButton("grid", size);
        ImDrawList * dl = ImGui::GetWindowDrawList();
        const float fh = ImGui::GetFontSize();
        float side = std::min(size.x - 20, size.y - 3 * fh - 10);
        ImVec2 p0(o.x + 10, o.y + fh + 6), p1(p0.x + side, p0.y + side);
        dl->AddText(ImVec2(o.x + 10, o.y), ImGui::GetColorU32(ImGuiCol_Text), "to scale: L x L inside 1M x 1M (area = pairs)");
        dl->AddRect(p0, p1, IM_COL32(180, 180, 180, 255));
        double frac = double(ctx_) / (1 << 20);
        float s = float(side * frac);
        // Causal triangle of the current L (lower-left half of its square), sparse part inside.
        ImVec2 q0 = p0, q1(p0.x + std::max(s, 1.0f), p0.y + std::max(s, 1.0f));
        dl->AddTriangleFilled(ImVec2(q0.x, q0.y), ImVec2(q0.x, q1.y), ImVec2(q1.x, q1.y), IM_COL32(255, 120, 90, 200));
        float ss = float(s * std::sqrt(rho_));
        dl->AddTriangleFilled(ImVec2(q0.x, q1.y - ss), ImVec2(q0.x, q1.y), ImVec2(q0.x + ss, q1.y), IM_COL32(255, 220, 120, 255));
        dl->AddRect(q0, q1, IM_COL32(255, 255, 255, 200));
        char b[160];
        std::snprintf(b, sizeof b, "L = %d: %.3g%% of the 1M x 1M area; causal pairs %.4g", ctx_, 100 * frac * frac,
                      double(ctx_) * (ctx_ + 1) / 2);
        dl->AddText(ImVec2(p0.x, p1.y + 4), ImGui::GetColorU32(ImGuiCol_Text), b);
        std::snprintf(b, sizeof b, "red: dense causal pairs, yellow: kept at rho = %.3f (same area ratio)", rho_);
        dl->AddText(ImVec2(p0.x, p1.y + 4 + fh), IM_COL32(170, 170, 180, 255), b);
    }

    void draw_claims(int d, double eb) {
        ImGui::TextUnformatted("Seed claims beside exact arithmetic");
        if (ImGui::BeginTable("claims", 3, ImGuiTableFlags_Borders | ImGuiTableFlags_SizingStretchProp)) {
            ImGui::TableSetupColumn("claim (seed)", 0, 2.0f);
            ImGui::TableSetupColumn("exact value (computed)", 0, 2.5f);
            ImGui::TableSetupColumn("note", 0, 1.5f);
            ImGui::TableHeadersRow();
            auto row = [](const std::string & a, const std::string & b, const std::string & c) {
                ImGui::TableNextRow();
                ImGui::TableNextColumn(); ImGui::TextWrapped("%s", a.c_str());
                ImGui::TableNextColumn(); ImGui::TextWrapped("%s", b.c_str());
                ImGui::TableNextColumn(); ImGui::TextWrapped("%s", c.c_str());
            };
            double L128 = 131072;
            row("004: k=256 at 128k cuts the attention matrix from 25 GB to 50 MB per layer",
                "dense fp16 per head: " + format_si(L128 * L128 * 2, "B") + "; top-256 per row: " +
                    format_si(L128 * 256 * 2, "B") + " per head",
                "per head, fp16; x heads for a layer");
            row("004: 32x32 block-sparse cuts compute 4-8x", "4-8x fewer FLOPs means block density 12.5-25%",
                "ratio = 1 / density (exact)");
            row("000: 15-25% of connections computed", "FLOP reduction 4.0x-6.7x before predictor overhead",
                "time needs the kernels (Kernels view)");
            char b[96];
            std::snprintf(b, sizeof b, "at rho = %.3f: %.2fx fewer FLOPs, score memory %s per head at L = %d", rho_, 1.0 / rho_,
                          format_si(double(ctx_) * ctx_ * eb * rho_, "B").c_str(), ctx_);
            row("this slider", b, "d = " + std::to_string(d));
            ImGui::EndTable();
        }
    }

    void draw_preset_pickers() {
        if (!preset_error_.empty()) {
            ImGui::TextColored(ImVec4(1, 0.45f, 0.4f, 1), "presets: %s", preset_error_.c_str());
            return;
        }
        ImGui::SetNextItemWidth(240);
        std::string cur = model_sel_ == 0 ? "loaded model" : models_[model_sel_ - 1];
        if (ImGui::BeginCombo("model preset", cur.c_str())) {
            if (ImGui::Selectable("loaded model", model_sel_ == 0)) model_sel_ = 0;
            for (size_t i = 0; i < models_.size(); ++i) {
                if (ImGui::Selectable(models_[i].c_str(), model_sel_ == int(i) + 1)) model_sel_ = int(i) + 1;
            }
            ImGui::EndCombo();
        }
        ImGui::SameLine();
        ImGui::SetNextItemWidth(200);
        std::string hcur = hws_.empty() ? "-" : hws_[hw_sel_];
        if (ImGui::BeginCombo("GPU preset", hcur.c_str())) {
            for (size_t i = 0; i < hws_.size(); ++i) {
                if (ImGui::Selectable(hws_[i].c_str(), hw_sel_ == int(i))) hw_sel_ = int(i);
            }
            ImGui::EndCombo();
        }
    }

    // The chosen model preset; "loaded model" maps to the preset of the same
    // shape, or to one built from the loaded config (vocab unknown: lm_head 0).
    const attnlab::model_preset * current_model() {
        std::string key = model_sel_ == 0 ? "loaded:" + st_.facts.path : models_[model_sel_ - 1];
        if (key == model_key_) return model_ok_ ? &model_ : nullptr;
        model_key_ = key;
        model_ok_ = false;
        try {
            if (model_sel_ > 0) {
                model_ = attnlab::model_preset_load(models_[model_sel_ - 1]);
                model_ok_ = true;
            } else if (st_.facts.valid()) {
                const attnlab::model_info & f = st_.facts;
                for (const auto & name : models_) {
                    attnlab::model_preset p = attnlab::model_preset_load(name);
                    if (p.n_layer == f.layers && p.n_head == f.heads && p.head_dim == f.head_dim && p.hidden == f.embedding &&
                        p.n_head_kv == f.kv_heads) {
                        model_ = p;
                        model_.name = f.name + " (preset " + name + ")";
                        model_ok_ = true;
                    }
                }
                if (!model_ok_) {
                    model_ = attnlab::model_preset();
                    model_.name = f.name + " (from its config)";
                    model_.n_layer = int(f.layers);
                    model_.hidden = int(f.embedding);
                    model_.n_head = int(f.heads);
                    model_.n_head_kv = int(f.kv_heads);
                    model_.head_dim = int(f.head_dim);
                    model_.ffn = int(f.ffn);
                    model_.context = int(f.context);
                    model_ok_ = true;
                }
            }
        } catch (const std::exception & e) {
            preset_error_ = e.what();
        }
        return model_ok_ ? &model_ : nullptr;
    }

    void draw_sim_rows(const attnlab::model_preset * mp) {
        sim_ok_ = false;
        if (!mp || hws_.empty()) return;
        try {
            if (hw_key_ != hws_[hw_sel_]) {
                hw_ = attnlab::hw_preset_load(hws_[hw_sel_]);
                hw_key_ = hws_[hw_sel_];
            }
            attnlab::sim_options o;
            o.phase = attnlab::sim_phase::prefill;
            o.ctx = ctx_;
            attnlab::sim_result dn = attnlab::sim_run(*mp, hw_, attnlab::sim_method_parse("dense"), o);
            char spec[64];
            std::snprintf(spec, sizeof spec, "density:rho=%.4g", double(rho_));
            attnlab::sim_result sp = attnlab::sim_run(*mp, hw_, attnlab::sim_method_parse(spec), o);
            auto t = [](double sec) { return format_seconds(sec, 2); };
            auto attn_time = [](const attnlab::sim_result & r) {
                for (const auto & c : r.layer) {
                    if (c.name == "attention") return c.time_s;
                }
                return 0.0;
            };
            auto row = [](const std::string & q, const std::string & a, const std::string & b, const std::string & c,
                          const std::string & d) {
                ImGui::TableNextRow();
                ImGui::TableNextColumn(); ImGui::TextColored(ImVec4(1, 0.8f, 0.45f, 1), "%s", q.c_str());
                ImGui::TableNextColumn(); ImGui::TextUnformatted(a.c_str());
                ImGui::TableNextColumn(); ImGui::TextUnformatted(b.c_str());
                ImGui::TableNextColumn(); ImGui::TextUnformatted(c.c_str());
                ImGui::TableNextColumn(); ImGui::TextUnformatted(d.c_str());
            };
            row("SIMULATED attention time, one layer / whole model prefill (" + hw_.name + ")", t(attn_time(dn)), t(dn.time_s),
                t(attn_time(sp)), t(sp.time_s));
            // Memory is the simulator's per implementation: a naive kernel
            // holds one layer's L x L scores (all heads) beside the weights,
            // KV and activations; a flash kernel holds only row statistics.
            // Each row says which, so the table never pairs a matrix size
            // with another kernel's total.
            attnlab::sim_options on = o;
            on.impl = attnlab::attn_impl::naive;
            const attnlab::sim_result dn_naive = attnlab::sim_run(*mp, hw_, attnlab::sim_method_parse("dense"), on);
            const attnlab::sim_result sp_naive = attnlab::sim_run(*mp, hw_, attnlab::sim_method_parse(spec), on);
            const std::string hbm = format_si(hw_.mem_gb * 1e9, "B");
            auto total = [&](const attnlab::sim_result & r) {
                return format_si(r.mem_total, "B") + " of " + hbm + (r.fits ? " (fits)" : " (does NOT fit)");
            };
            row("SIMULATED naive kernel: one head's score matrix / memory needed (weights, KV, activations, one layer's "
                "matrices)",
                format_si(dn_naive.score_bytes_naive_head, "B"), total(dn_naive),
                format_si(sp_naive.score_bytes_naive_head, "B"), total(sp_naive));
            naive_fits_ = dn_naive.fits;
            flash_fits_ = dn.fits;
            row("SIMULATED flash kernel (no L x L matrix): row statistics per head / memory needed",
                format_si(dn.score_bytes_flash_layer / std::max(1, mp->n_head), "B"), total(dn),
                format_si(sp.score_bytes_flash_layer / std::max(1, mp->n_head), "B"), total(sp));
            sim_ok_ = true;
        } catch (const std::exception & e) {
            preset_error_ = e.what();
        }
    }

    std::vector<std::string> models_, hws_;
    int model_sel_ = 0, hw_sel_ = 0;
    std::string model_key_, hw_key_, preset_error_;
    attnlab::model_preset model_;
    attnlab::hw_preset hw_;
    bool model_ok_ = false, sim_ok_ = false;
    bool naive_fits_ = true, flash_fits_ = true;   // dense, at the drawn L (for scripts)

    int ctx_ = 32768;
    float rho_ = 0.2f;
    int dtype_ = 0;
};

} // namespace

std::unique_ptr<view> make_quadratic_view(app_state & s) { return std::make_unique<quadratic_view>(s); }

} // namespace attnlab_gui
