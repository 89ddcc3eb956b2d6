// Trade-offs: sweep results (DIR/results.jsonl, core/lab/sweep.h) as Pareto
// plots, one colour per method: perplexity change, mass recall, passkey
// accuracy and top-1 agreement against block density or measured kernel time.
// A density slider moves every method at once: each method's point at that
// block density, measured when a row sits there, otherwise interpolated
// linearly between its two neighbouring measured rows (and said so). A small
// sweep on the loaded model can run as a background task; its rows appear as
// they finish.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>

#include <imgui.h>
#include <imgui_stdlib.h>

#include "../file_browser.h"
#include "base/data_path.h"
#include "data/corpus.h"
#include "lab/sweep.h"
#include "model/llama_gpu_api.h"
#include "view.h"

namespace attnlab_gui {

namespace {

namespace fs = std::filesystem;

struct metric_def {
    const char * name;
    bool maximise;
    double (*get)(const attnlab::sweep_row &);
};
double m_dppl(const attnlab::sweep_row & r) { return 100.0 * r.delta_ppl_rel; }
double m_recall(const attnlab::sweep_row & r) { return r.mass_recall < 0 ? NAN : r.mass_recall; }
double m_passkey(const attnlab::sweep_row & r) { return r.passkey_accuracy < 0 ? NAN : r.passkey_accuracy; }
double m_top1(const attnlab::sweep_row & r) { return r.top1_agreement; }
const metric_def k_metrics[4] = {{"perplexity change (%)", false, m_dppl},
                                 {"mass recall", true, m_recall},
                                 {"passkey accuracy", true, m_passkey},
                                 {"top-1 agreement", true, m_top1}};


struct live_rows {
    std::mutex mu;
    std::vector<attnlab::sweep_row> rows;
};

class tradeoffs_view : public view {
public:
    explicit tradeoffs_view(app_state & s) : view(s), browser_(attnlab::data_path("bench/results")) {
        std::string def = attnlab::data_path("bench/results/sweep_smollm2_ctx2048");
        if (fs::exists(def + "/results.jsonl")) dir_ = def;
    }

    bool on_script(const std::string & cmd, const std::vector<std::string> & a) override {
        if (cmd == "sweep_dir" && a.size() == 1) { load(a[0]); return true; }
        if (cmd == "tradeoff_density" && a.size() == 1) { density_ = std::stof(a[0]); return true; }
        if (cmd == "tradeoff_x" && a.size() == 1) { x_time_ = a[0] == "time"; return true; }
        if (cmd == "sweep_run" && a.size() >= 1) {
            // sweep_run OUT_DIR [METHODS [DENSITIES [CTX [MAX_TOKENS]]]]
            run_dir_ = a[0];
            if (a.size() > 1) run_methods_ = a[1];
            if (a.size() > 2) run_densities_ = a[2];
            if (a.size() > 3) run_ctx_ = std::stoi(a[3]);
            if (a.size() > 4) run_max_tokens_ = std::stoi(a[4]);
            start_sweep();
            return true;
        }
        if (cmd == "expect_sweep_rows" && a.size() == 1) {
            if (int(rows_.size()) < std::stoi(a[0])) {
                throw std::runtime_error("trade-offs shows " + std::to_string(rows_.size()) + " rows, want at least " + a[0]);
            }
            return true;
        }
        return false;
    }

    void settings_save(nlohmann::json & j) const override {
        j = {{"sweep_dir", dir_}, {"density", density_}, {"x_time", x_time_ != 0}, {"run_dir", run_dir_},
             {"run_methods", run_methods_}, {"run_densities", run_densities_}, {"run_ctx", run_ctx_},
             {"run_max_tokens", run_max_tokens_}, {"run_gpu", run_gpu_}};
    }
    void settings_load(const nlohmann::json & j) override {
        if (j.contains("density") && j["density"].is_number()) density_ = std::clamp(j["density"].get<float>(), 0.0f, 1.0f);
        if (j.contains("x_time") && j["x_time"].is_boolean()) x_time_ = j["x_time"].get<bool>();
        for (auto [k, v] : {std::pair<const char *, std::string *>{"run_dir", &run_dir_}, {"run_methods", &run_methods_},
                            {"run_densities", &run_densities_}})
            if (j.contains(k) && j[k].is_string()) *v = j[k].get<std::string>();
        if (j.contains("run_ctx") && j["run_ctx"].is_number_integer()) run_ctx_ = std::clamp(j["run_ctx"].get<int>(), 16, 1 << 20);
        if (j.contains("run_max_tokens") && j["run_max_tokens"].is_number_integer())
            run_max_tokens_ = std::clamp(j["run_max_tokens"].get<int>(), 16, 1 << 24);
        if (j.contains("run_gpu") && j["run_gpu"].is_boolean()) run_gpu_ = j["run_gpu"].get<bool>();
        if (j.contains("sweep_dir") && j["sweep_dir"].is_string() && !j["sweep_dir"].get<std::string>().empty() &&
            fs::exists(j["sweep_dir"].get<std::string>() + "/results.jsonl"))
            load(j["sweep_dir"].get<std::string>());
    }

    void drawContent() override {
        if (!loaded_ && !dir_.empty()) load(dir_);
        poll_live();
        draw_source_bar();
        if (!error_.empty()) ImGui::TextColored(ImVec4(1, 0.45f, 0.4f, 1), "%s", error_.c_str());
        if (show_browser_) {
            if (browser_.draw(180)) {
                std::string p = browser_.picked();
                load(fs::is_directory(p) ? p : fs::path(p).parent_path().string());
                show_browser_ = false;
            }
            if (ImGui::Button("Use this directory")) {
                load(browser_.dir());
                show_browser_ = false;
            }
            ImGui::SameLine();
            if (ImGui::Button("Close browser")) show_browser_ = false;
        }
        if (show_run_) draw_run_panel();
        if (rows_.empty()) {
            caption("no sweep rows: choose a directory holding results.jsonl (attnlab-cli sweep --out DIR), or run a small sweep");
            return;
        }
        build_groups();
        ImGui::SetNextItemWidth(300);
        ImGui::SliderFloat("block density (every method)", &density_, 0.02f, 1.0f, "%.3f");
        ImGui::SameLine();
        ImGui::RadioButton("x: block density", &x_time_, 0);
        ImGui::SameLine();
        ImGui::RadioButton("x: measured kernel time (kernel_s)", &x_time_, 1);
        if (ctxs_.size() > 1) {
            ImGui::SameLine();
            ImGui::SetNextItemWidth(100);
            std::string cur = std::to_string(ctxs_[ctx_sel_]);
            if (ImGui::BeginCombo("ctx", cur.c_str())) {
                for (size_t i = 0; i < ctxs_.size(); ++i) {
                    if (ImGui::Selectable(std::to_string(ctxs_[i]).c_str(), int(i) == ctx_sel_)) ctx_sel_ = int(i);
                }
                ImGui::EndCombo();
            }
        }
        ImVec2 avail = ImGui::GetContentRegionAvail();
        float table_h = std::min(avail.y * 0.34f, ImGui::GetTextLineHeightWithSpacing() * (groups_.size() + 3.5f));
        ImVec2 cell((avail.x - 10) * 0.5f, std::max(160.0f, (avail.y - table_h - 12) * 0.5f));
        for (int m = 0; m < 4; ++m) {
            if (m % 2) ImGui::SameLine();
            draw_plot(m, cell);
        }
        draw_table();
    }

private:
    struct group {
        std::string name;
        ImU32 color;
        std::vector<int> rows;             // indices into rows_, sorted by block density
        std::vector<double> bd, ks;        // block density, kernel_s of those rows
        std::vector<double> val[4];
    };

    void load(const std::string & dir) {
        dir_ = dir;
        loaded_ = true;
        error_.clear();
        rows_.clear();
        try {
            rows_ = attnlab::sweep_load_rows(dir);
            if (rows_.empty()) error_ = dir + ": no results.jsonl rows";
        } catch (const std::exception & e) {
            error_ = e.what();
        }
        ctx_sel_ = 0;
    }

    void poll_live() {
        if (!live_) return;
        std::lock_guard<std::mutex> lock(live_->mu);
        for (; live_seen_ < live_->rows.size(); ++live_seen_) {
            const auto & r = live_->rows[live_seen_];
            bool dup = false;
            for (const auto & o : rows_) dup = dup || o.key == r.key;
            if (!dup) rows_.push_back(r);
        }
    }

    void draw_source_bar() {
        ImGui::TextUnformatted("sweep:");
        ImGui::SameLine();
        ImGui::TextDisabled("%s (%zu rows)", dir_.empty() ? "(none)" : dir_.c_str(), rows_.size());
        ImGui::SameLine();
        if (ImGui::Button("Browse...")) show_browser_ = !show_browser_;
        ImGui::SameLine();
        if (ImGui::Button("Reload") && !dir_.empty()) load(dir_);
        ImGui::SameLine();
        if (ImGui::Button(show_run_ ? "Hide sweep runner" : "Run a small sweep...")) show_run_ = !show_run_;
        task_progress_bars(st_, {"sweep"}, 420, "Cancel sweep");
    }

    void draw_run_panel() {
        ImGui::BeginChild("runner", ImVec2(0, ImGui::GetFrameHeightWithSpacing() * 3 + 8), true);
        ImGui::SetNextItemWidth(300);
        ImGui::InputText("methods", &run_methods_);
        ImGui::SameLine();
        ImGui::SetNextItemWidth(140);
        ImGui::InputText("densities", &run_densities_);
        ImGui::SameLine();
        ImGui::SetNextItemWidth(90);
        ImGui::InputInt("ctx", &run_ctx_, 0);
        ImGui::SameLine();
        ImGui::SetNextItemWidth(90);
        ImGui::InputInt("max tokens", &run_max_tokens_, 0);
        ImGui::SetNextItemWidth(420);
        ImGui::InputText("output directory", &run_dir_);
        ImGui::SameLine();
        bool can = st_.model && st_.tok && !st_.tasks.busy("sweep");
        // The GPU when one is present (and the build has CUDA): every forward
        // pass there, rows marked cuda; off: the CPU path.
        if (attnlab::llama_gpu::available()) {
            ImGui::Checkbox("on the GPU", &run_gpu_);
            ImGui::SameLine();
        } else {
            run_gpu_ = false;
        }
        ImGui::BeginDisabled(!can);
        if (ImGui::Button("Run sweep")) start_sweep();
        ImGui::EndDisabled();
        ImGui::SameLine();
        caption(st_.model ? "on the loaded model, text %s (evaluation text only), no passkey; rows resume from the directory"
                          : "load a model in Source first",
                st_.text_spec.c_str());
        ImGui::EndChild();
    }

    void start_sweep() {
        if (!st_.model || !st_.tok) {
            error_ = "sweep: load a model first";
            return;
        }
        auto model = st_.model;
        auto tok = st_.tok;
        std::string methods = run_methods_, dens = run_densities_, dir = run_dir_, text = st_.text_spec;
        if (text == "typed") text = "kjv:eval";
        int ctx = run_ctx_, max_tokens = run_max_tokens_;
        const bool gpu = run_gpu_ && attnlab::llama_gpu::available();
        auto live = std::make_shared<live_rows>();
        live_ = live;
        live_seen_ = 0;
        load(dir);
        error_.clear();
        st_.tasks.submit("sweep " + methods + " ctx " + std::to_string(ctx) + (gpu ? " (GPU)" : ""), "sweep",
                         [=](attnlab::job_progress & p) {
                             using namespace attnlab;
                             p.report(0.0, "loading text");
                             auto split = [](const std::string & s) {
                                 std::vector<std::string> out;
                                 size_t a = 0;
                                 while (a <= s.size()) {
                                     size_t b = s.find(',', a);
                                     if (b == std::string::npos) b = s.size();
                                     std::string t = s.substr(a, b - a);
                                     if (!t.empty()) out.push_back(t);
                                     a = b + 1;
                                 }
                                 return out;
                             };
                             std::vector<double> dv;
                             for (const auto & d : split(dens)) dv.push_back(std::stod(d));
                             text_source src = text_load(text);
                             sweep_require_evaluation(src, "the sweep");
                             std::vector<int32_t> ids = tok->encode(src.text);
                             if (max_tokens > 0 && int64_t(ids.size()) > max_tokens) ids.resize(size_t(max_tokens));
                             std::vector<sweep_task> tasks = sweep_plan(split(methods), dv, {ctx}, src.sha256,
                                                                        model->source_sha256, max_tokens, "softmax",
                                                                        gpu ? "cuda" : "cpu");
                             sweep_model_options opt;
                             std::unique_ptr<llama_gpu> g;   // weights uploaded on this worker thread
                             if (gpu) {
                                 p.report(0.0, "uploading the model to the GPU");
                                 g = llama_gpu::create(*model);
                                 opt.gpu = g.get();
                             }
                             sweep_model_runner runner(*model, tok.get(), src, ids, opt);
                             sweep_execute(tasks, dir,
                                           [&](const sweep_task & t, job_progress * jp) {
                                               sweep_row r = runner(t, jp);
                                               std::lock_guard<std::mutex> lock(live->mu);
                                               live->rows.push_back(r);
                                               return r;
                                           },
                                           &p);
                             return apply_fn([this, dir]() {
                                 if (dir == dir_) load(dir);
                             });
                         });
    }

    void build_groups() {
        ctxs_.clear();
        for (const auto & r : rows_) {
            if (std::find(ctxs_.begin(), ctxs_.end(), r.ctx) == ctxs_.end()) ctxs_.push_back(r.ctx);
        }
        std::sort(ctxs_.begin(), ctxs_.end());
        ctx_sel_ = std::min(ctx_sel_, int(ctxs_.size()) - 1);
        const int ctx = ctxs_.empty() ? 0 : ctxs_[ctx_sel_];
        std::map<std::string, int> idx;
        groups_.clear();
        for (size_t i = 0; i < rows_.size(); ++i) {
            const auto & r = rows_[i];
            if (r.ctx != ctx) continue;
            // One colour per method name; a fixed pattern with several
            // parameter sets still forms one group (its points are its rows).
            auto it = idx.find(r.method_name);
            if (it == idx.end()) {
                it = idx.emplace(r.method_name, int(groups_.size())).first;
                groups_.push_back({r.method_name, series_color(groups_.size()), {}, {}, {}, {}});
            }
            groups_[it->second].rows.push_back(int(i));
        }
        for (auto & g : groups_) {
            std::sort(g.rows.begin(), g.rows.end(),
                      [&](int a, int b) { return rows_[a].block_density < rows_[b].block_density; });
            for (int i : g.rows) {
                g.bd.push_back(rows_[i].block_density);
                g.ks.push_back(rows_[i].kernel_s);
                for (int m = 0; m < 4; ++m) g.val[m].push_back(k_metrics[m].get(rows_[i]));
            }
        }
    }

    // The group's point at the slider: status 0 measured, 1 interpolated, -1 none.
    double at_slider(const group & g, const std::vector<double> & v, int * status) const {
        return interp_measured(g.bd, v, density_, 0.01, status);
    }

    void draw_plot(int m, ImVec2 size) {
        const metric_def & md = k_metrics[m];
        std::vector<series> ss;
        order_.assign(groups_.size(), {});
        std::vector<double> all_x, all_y;
        std::vector<int> all_row;
        double ylo = INFINITY, yhi = -INFINITY, xlo = INFINITY, xhi = -INFINITY;
        for (size_t gi = 0; gi < groups_.size(); ++gi) {
            const group & g = groups_[gi];
            series s{g.name, {}, {}, g.color, true, 1.5f};
            for (size_t k = 0; k < g.rows.size(); ++k) {
                double xv = x_time_ ? g.ks[k] : g.bd[k], yv = g.val[m][k];
                s.x.push_back(xv);
                s.y.push_back(yv);
                if (std::isfinite(yv)) {
                    all_x.push_back(xv);
                    all_y.push_back(md.maximise ? -yv : yv);
                    all_row.push_back(g.rows[k]);
                    ylo = std::min(ylo, yv);
                    yhi = std::max(yhi, yv);
                    xlo = std::min(xlo, xv);
                    xhi = std::max(xhi, xv);
                }
            }
            if (x_time_) {
                // Joined in the order of the x axis, not of density.
                std::vector<size_t> o(s.x.size());
                for (size_t k = 0; k < o.size(); ++k) o[k] = k;
                std::sort(o.begin(), o.end(), [&](size_t a, size_t b) { return s.x[a] < s.x[b]; });
                series t = s;
                for (size_t k = 0; k < o.size(); ++k) { t.x[k] = s.x[o[k]]; t.y[k] = s.y[o[k]]; }
                s = t;
                order_[gi] = o;
            } else {
                order_[gi].resize(s.x.size());
                for (size_t k = 0; k < s.x.size(); ++k) order_[gi][k] = k;
            }
            ss.push_back(s);
        }
        // The Pareto front over every method (x minimised; y minimised or maximised).
        series front{"Pareto front", {}, {}, IM_COL32(255, 255, 255, 200), false, 2.0f};
        for (int i : attnlab::pareto_front(all_x, all_y)) {
            front.x.push_back(all_x[i]);
            front.y.push_back(md.maximise ? -all_y[i] : all_y[i]);
        }
        size_t n_groups = ss.size();
        ss.insert(ss.begin(), front);   // drawn first, under the methods
        // Slider points: rings in the method's colour.
        for (const group & g : groups_) {
            int st_y = -1, st_x = -1;
            double yv = at_slider(g, g.val[m], &st_y);
            double xv = x_time_ ? at_slider(g, g.ks, &st_x) : density_;
            if (st_y < 0 || !std::isfinite(yv) || !std::isfinite(xv)) continue;
            series s{"", {xv}, {yv}, g.color, true, 0.0f, st_y == 0 ? 8.0f : 6.5f, true};
            ss.push_back(s);
        }
        if (!std::isfinite(ylo)) { ylo = 0; yhi = 1; }
        if (!std::isfinite(xlo)) { xlo = 0; xhi = 1; }
        // Fractions: at least [lo - 0.05, 1.02]; perplexity change: at least 1 percentage point of padding.
        double pad = md.maximise ? std::max(0.05, (yhi - ylo) * 0.08) : std::max(1.0, (yhi - ylo) * 0.08);
        axis_spec xa = x_time_ ? axis_spec{0.0, xhi * 1.05, false, "measured kernel time, s (kernel_s, sum over layers)"}
                               : axis_spec{0.0, 1.05, false, "block density"};
        axis_spec ya{md.maximise ? std::max(0.0, ylo - pad) : std::min(0.0, ylo - pad), md.maximise ? 1.02 : yhi + pad,
                     false, md.name};
        std::vector<vline> marks;
        if (!x_time_) marks.push_back({double(density_), "slider", IM_COL32(255, 255, 255, 110)});
        ImGui::PushID(m);
        static const char * ids[4] = {"ppl_change", "mass_recall", "passkey", "top1_agreement"};   // k_metrics order
        plot_hit hit = scatter_plot(ids[m], size, ss, xa, ya, marks, m == 0);
        ImGui::PopID();
        if (hit.series >= 1 && hit.series <= int(n_groups)) {
            const group & g = groups_[hit.series - 1];
            row_tooltip(rows_[g.rows[order_[hit.series - 1][hit.point]]]);
        }
    }

    void row_tooltip(const attnlab::sweep_row & r) {
        ImGui::BeginTooltip();
        ImGui::Text("%s (measured row)", r.method.c_str());
        ImGui::Text("ctx %d, %lld tokens of %s, %d windows", r.ctx, (long long) r.tokens, r.text_spec.c_str(), r.windows);
        ImGui::Text("ppl %.4g (dense %.4g), change %+.2f%%", r.ppl, r.ppl_dense, 100 * r.delta_ppl_rel);
        ImGui::Text("block density %.3f, token density %.3f", r.block_density, r.token_density);
        ImGui::Text("mass recall %s, top-1 agreement %.3f", r.mass_recall < 0 ? "not measured" : std::to_string(r.mass_recall).c_str(),
                    r.top1_agreement);
        if (r.passkey_accuracy >= 0) ImGui::Text("passkey %.2f (%d trials)", r.passkey_accuracy, r.passkey_trials);
        else ImGui::Text("passkey not measured");
        ImGui::Text("kernel %.3f s (dense %.3f s), predictor %.3f s, row took %.1f s", r.kernel_s, r.dense_kernel_s,
                    r.predictor_s, r.seconds);
        ImGui::EndTooltip();
    }

    void draw_table() {
        char hdr[64];
        std::snprintf(hdr, sizeof hdr, "each method at block density %.3f", density_);
        ImGui::TextUnformatted(hdr);
        if (!ImGui::BeginTable("at", 8, ImGuiTableFlags_Borders | ImGuiTableFlags_RowBg | ImGuiTableFlags_SizingStretchProp |
                                             ImGuiTableFlags_ScrollY))
            return;
        ImGui::TableSetupScrollFreeze(0, 1);
        for (const char * c : {"method", "value at the slider", "ppl change %", "mass recall", "passkey", "top-1 agr.",
                               "kernel_s", "measured densities"})
            ImGui::TableSetupColumn(c);
        ImGui::TableHeadersRow();
        for (const group & g : groups_) {
            ImGui::TableNextRow();
            ImGui::TableNextColumn();
            ImVec4 c = ImGui::ColorConvertU32ToFloat4(g.color);
            ImGui::TextColored(c, "%s", g.name.c_str());
            int st = -1;
            at_slider(g, g.bd, &st);
            ImGui::TableNextColumn();
            if (st == 0) ImGui::TextUnformatted("measured row");
            else if (st == 1) ImGui::TextColored(ImVec4(1, 0.85f, 0.4f, 1), "interpolated between measured rows");
            else if (g.rows.size() == 1) ImGui::TextDisabled("one row (fixed pattern), at its own density %.2f", g.bd[0]);
            else ImGui::TextDisabled("outside the measured range");
            // A fixed pattern's single row is shown dimmed, at its own density.
            const bool own = st < 0 && g.rows.size() == 1;
            for (int m = 0; m < 4; ++m) {
                ImGui::TableNextColumn();
                int s2 = -1;
                double v = own ? g.val[m][0] : at_slider(g, g.val[m], &s2);
                if (own && std::isfinite(v)) ImGui::TextDisabled(m == 0 ? "%+.1f" : "%.3f", v);
                else if (s2 >= 0 && std::isfinite(v)) ImGui::Text(m == 0 ? "%+.1f" : "%.3f", v);
                else ImGui::TextDisabled("-");
            }
            ImGui::TableNextColumn();
            int s3 = -1;
            double ks = own ? g.ks[0] : at_slider(g, g.ks, &s3);
            if (own) ImGui::TextDisabled("%.2f", ks);
            else if (s3 >= 0) ImGui::Text("%.2f", ks);
            else ImGui::TextDisabled("-");
            ImGui::TableNextColumn();
            std::string ds;
            for (double d : g.bd) {
                char b[16];
                std::snprintf(b, sizeof b, "%s%.2f", ds.empty() ? "" : " ", d);
                ds += b;
            }
            ImGui::TextDisabled("%s", ds.c_str());
        }
        ImGui::EndTable();
    }

    file_browser browser_;
    bool show_browser_ = false, show_run_ = false, loaded_ = false;
    std::string dir_, error_;
    std::vector<attnlab::sweep_row> rows_;
    std::vector<group> groups_;
    std::vector<int> ctxs_;
    std::vector<std::vector<size_t>> order_;   // per group: plotted point -> index in the group
    int ctx_sel_ = 0;
    float density_ = 0.2f;
    int x_time_ = 0;
    // small sweep
    std::string run_methods_ = "dense,window,block_topk", run_densities_ = "0.2,0.4", run_dir_ = "out/gui_sweep";
    int run_ctx_ = 256, run_max_tokens_ = 512;
    bool run_gpu_ = true;   // when a GPU is present
    std::shared_ptr<live_rows> live_;
    size_t live_seen_ = 0;
};

} // namespace

std::unique_ptr<view> make_tradeoffs_view(app_state & s) { return std::make_unique<tradeoffs_view>(s); }

} // namespace attnlab_gui
