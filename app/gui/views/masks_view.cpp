// Masks: the blocks a method keeps for the selected head, against the oracle
// at the same budget (per query block, the key blocks holding the most true
// attention mass): hits, misses and false alarms, precision/recall, and the
// keys-per-query histogram with the max_keys guard.
#include <algorithm>
#include <cmath>
#include <numeric>

#include <imgui.h>
#include <imgui_stdlib.h>

#include "metrics/head_metrics.h"
#include "methods/method.h"
#include "map_common.h"
#include "view.h"
#include "data/capture.h"

namespace attnlab_gui {

namespace {

enum cell_kind : uint8_t { k_none, k_hit, k_false_alarm, k_miss, k_masked };

struct mask_result {
    int L = 0, B = 64, nb = 0, layer = 0, head = 0;
    std::string method;
    std::vector<uint8_t> kind;      // nb x nb
    std::vector<float> mass;        // nb x nb, true attention mass per block (sum over the block)
    std::vector<int> keys_per_row;  // L
    int64_t hits = 0, false_alarms = 0, misses = 0;
    double mass_pred = 0, mass_oracle = 0;  // total mass kept by each
    double select_s = 0, token_density = 0, block_density = 0;
    double map_s = 0;             // the dense map behind the block masses (measured)
    std::string map_device;       // and what computed it
    attnlab::head_metrics hm;
    std::shared_ptr<const attnlab::qkv_capture> cap;
};

std::shared_ptr<mask_result> compute_masks(std::shared_ptr<const attnlab::qkv_capture> cap,
                                           std::shared_ptr<const attnlab::gpu_capture> gcap, size_t li, int h,
                                           const std::string & spec, attnlab::job_progress & p) {
    auto r = std::make_shared<mask_result>();
    r->cap = cap;
    p.report(0.0, "selection");
    timed_selection ts = compute_selection(*cap, li, h, spec);
    const attnlab::selection & sel = *ts.sel;
    r->method = ts.method;
    r->select_s = ts.seconds;
    r->L = sel.n_tokens;
    r->B = sel.block;
    r->nb = sel.n_blocks();
    r->layer = cap->layers[li].layer;
    r->head = h;
    r->token_density = attnlab::selection_token_density(sel);
    r->block_density = attnlab::selection_block_density(sel);
    p.report(0.2, "dense attention mass per block");
    // On the GPU when the capture is kept there (a failure fails the task, shown in Tasks).
    auto m = gcap ? head_map_compute_gpu(*gcap, li, h, nullptr) : head_map_compute(cap, li, h, nullptr, &p);
    r->map_s = m->seconds;
    r->map_device = m->device;
    // Block masses from the pyramid level whose cells are B x B (f0 divides B).
    const lod_level * lv = nullptr;
    for (const auto & l : m->dense) {
        if (l.factor == r->B) lv = &l;
    }
    lod_level tmp;
    if (!lv) {
        tmp = m->dense.front();
        while (tmp.factor < r->B) tmp = lod_downsample2(tmp);
        lv = &tmp;
    }
    const int nb = r->nb;
    r->mass.assign(size_t(nb) * nb, 0.0f);
    for (int I = 0; I < nb; ++I)
        for (int J = 0; J < nb; ++J) r->mass[size_t(I) * nb + J] = lv->sum[size_t(I) * lv->n_cols + J];
    r->kind.assign(size_t(nb) * nb, k_masked);
    std::vector<int> order;
    for (int I = 0; I < nb; ++I) {
        const int n_causal = I + 1;
        for (int J = 0; J < n_causal; ++J) r->kind[size_t(I) * nb + J] = k_none;
        std::vector<char> pred(n_causal, 0), orc(n_causal, 0);
        int budget = 0;
        for (int32_t p2 = sel.blk_ptr[I]; p2 < sel.blk_ptr[I + 1]; ++p2) {
            pred[sel.blk_cols[p2]] = 1;
            ++budget;
        }
        order.resize(n_causal);
        std::iota(order.begin(), order.end(), 0);
        const float * mrow = &r->mass[size_t(I) * nb];
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return mrow[a] > mrow[b]; });
        for (int t = 0; t < budget && t < n_causal; ++t) orc[order[t]] = 1;
        for (int J = 0; J < n_causal; ++J) {
            uint8_t & k = r->kind[size_t(I) * nb + J];
            if (pred[J] && orc[J]) { k = k_hit; ++r->hits; }
            else if (pred[J]) { k = k_false_alarm; ++r->false_alarms; }
            else if (orc[J]) { k = k_miss; ++r->misses; }
            if (pred[J]) r->mass_pred += mrow[J];
            if (orc[J]) r->mass_oracle += mrow[J];
        }
    }
    p.report(0.7, "keys per query");
    r->keys_per_row.resize(r->L);
    std::vector<int32_t> keys;
    for (int i = 0; i < r->L; ++i) {
        attnlab::selection_row_keys(sel, i, keys);
        r->keys_per_row[i] = int(keys.size());
    }
    p.report(0.8, "head metrics vs dense and oracle_topk");
    attnlab::attention_layer_io io = capture_layer_io(*cap, li);
    attnlab::head_inputs hi = attnlab::head_inputs_of(io, h);
    const int g = io.kv_head_of(h);
    r->hm = attnlab::head_metrics_compute(hi, io.v + int64_t(g) * io.head_dim, int64_t(io.n_head_kv) * io.head_dim, sel);
    return r;
}

class masks_view : public view {
public:
    explicit masks_view(app_state & s) : view(s) {
        auto stale = [this](const event &) { dirty_ = true; };
        st_.bus.subscribe(event_kind::capture_loaded, stale);
        st_.bus.subscribe(event_kind::head_selected, stale);
        st_.bus.subscribe(event_kind::method_changed, [this](const event & e) {
            dirty_ = true;
            method_edit_ = e.text;
        });
    }

    bool on_script(const std::string & cmd, const std::vector<std::string> & a) override {
        if (cmd == "max_keys" && a.size() == 1) { max_keys_ = std::stoi(a[0]); return true; }
        return false;
    }

    void drawContent() override {
        if (!st_.cap) {
            caption("no capture yet");
            return;
        }
        if (dirty_ && !st_.tasks.busy("masks")) request();
        ImGui::SetNextItemWidth(300);
        if (method_edit_.empty()) method_edit_ = st_.method_spec;
        if (ImGui::InputText("method (Enter)", &method_edit_, ImGuiInputTextFlags_EnterReturnsTrue)) st_.set_method(method_edit_);
        ImGui::SameLine();
        ImGui::SetNextItemWidth(160);
        ImGui::SliderInt("max_keys guard", &max_keys_, 16, 4096, "%d", ImGuiSliderFlags_Logarithmic);
        for (const auto & t : st_.tasks.snapshot()) {
            if (t.group != "masks") continue;
            ImGui::ProgressBar(float(t.fraction), ImVec2(300, 0), t.stage.c_str());
        }
        task_failure_line(st_, {"masks"});
        if (!res_) return;
        const mask_result & r = *res_;
        ImGui::Text("layer %d head %d, L = %d, B = %d (%d x %d blocks): %s", r.layer, r.head, r.L, r.B, r.nb, r.nb,
                    r.method.c_str());
        double prec = r.hits + r.false_alarms ? double(r.hits) / (r.hits + r.false_alarms) : 0;
        double rec = r.hits + r.misses ? double(r.hits) / (r.hits + r.misses) : 0;
        ImGui::Text("blocks vs oracle at the same per-row budget: precision %.3f, recall %.3f  |  mass kept %.3f vs oracle %.3f "
                    "(of %d query rows)", prec, rec, r.mass_pred / r.L, r.mass_oracle / r.L, r.L);
        ImGui::Text("token level (head_metrics vs oracle_topk at token density %.3f): precision %.3f, recall %.3f, mass recall "
                    "%.3f, output rel. error %.4f  |  block density %.3f",
                    r.hm.token_density, r.hm.oracle_precision, r.hm.oracle_recall, r.hm.mass_recall, r.hm.output_rel_error,
                    r.block_density);
        ImGui::Text("predictor %.2f ms, dense map (block masses) %.1f ms on %s (measured)", r.select_s * 1e3,
                    r.map_s * 1e3, r.map_device.c_str());
        ImVec2 av = ImGui::GetContentRegionAvail();
        draw_blocks(r, ImVec2(av.y - 10, av.y - 10));
        ImGui::SameLine();
        ImGui::BeginGroup();
        draw_hist(r, ImVec2(ImGui::GetContentRegionAvail().x, av.y * 0.55f));
        ImGui::EndGroup();
    }

private:
    void draw_blocks(const mask_result & r, ImVec2 size) {
        ImVec2 o = ImGui::GetCursorScreenPos();
        ImGui::InvisibleButton("blocks", size);
        bool hovered = ImGui::IsItemHovered();
        ImDrawList * dl = ImGui::GetWindowDrawList();
        const float fh = ImGui::GetFontSize();
        float side = std::min(size.x, size.y) - 2 * fh - 60;
        ImVec2 p0(o.x + 50, o.y + 2 * fh + 8), p1(p0.x + side, p0.y + side);
        const float c = side / r.nb;
        // Background intensity: log10 of the block's mean weight, so the structure under the mask shows.
        const ImU32 cols[] = {0, IM_COL32(70, 200, 110, 255), IM_COL32(255, 170, 40, 255), IM_COL32(230, 60, 70, 255),
                              IM_COL32(16, 16, 20, 255)};
        for (int I = 0; I < r.nb; ++I) {
            for (int J = 0; J < r.nb; ++J) {
                uint8_t k = r.kind[size_t(I) * r.nb + J];
                ImVec2 a(p0.x + J * c, p0.y + I * c), b(p0.x + (J + 1) * c - (c > 5 ? 1 : 0), p0.y + (I + 1) * c - (c > 5 ? 1 : 0));
                ImU32 col = cols[k];
                if (k == k_none) {
                    double mean = r.mass[size_t(I) * r.nb + J] / double(r.B * r.B);
                    double t = std::max(0.0, std::min(1.0, (std::log10(std::max(mean, 1e-9)) + 6) / 6));
                    int v = int(30 + 90 * t);
                    col = IM_COL32(v, v, v + 10, 255);
                }
                dl->AddRectFilled(a, b, col);
            }
        }
        axis_spec ax{0, double(r.L), false, "key position"}, ay{0, double(r.L), false, "query position"};
        draw_axes(dl, p0, p1, ax, ay, true, false);
        float lx = p0.x;
        const char * names[] = {"hit", "false alarm", "miss (oracle only)", "skipped (shade: log weight)"};
        ImU32 lc[] = {cols[1], cols[2], cols[3], IM_COL32(100, 100, 110, 255)};
        for (int i = 0; i < 4; ++i) {
            dl->AddRectFilled(ImVec2(lx, o.y + 2), ImVec2(lx + 12, o.y + 14), lc[i]);
            dl->AddText(ImVec2(lx + 16, o.y), ImGui::GetColorU32(ImGuiCol_Text), names[i]);
            lx += 26 + ImGui::CalcTextSize(names[i]).x;
        }
        if (hovered) {
            ImVec2 mp = ImGui::GetIO().MousePos;
            int J = int((mp.x - p0.x) / c), I = int((mp.y - p0.y) / c);
            if (I >= 0 && J >= 0 && I < r.nb && J < r.nb && mp.x >= p0.x && mp.y >= p0.y) {
                const char * kn[] = {"skipped", "hit", "false alarm", "miss", "masked (causal)"};
                ImGui::SetTooltip("block (%d, %d): queries %d..%d, keys %d..%d\n%s, attention mass %.4f (sum over the block)",
                                  I, J, I * r.B, std::min(r.L, (I + 1) * r.B) - 1, J * r.B, std::min(r.L, (J + 1) * r.B) - 1,
                                  kn[r.kind[size_t(I) * r.nb + J]], r.mass[size_t(I) * r.nb + J]);
            }
        }
    }

    void draw_hist(const mask_result & r, ImVec2 size) {
        int kmax = *std::max_element(r.keys_per_row.begin(), r.keys_per_row.end());
        int nbins = 40;
        double w = std::max(1.0, std::ceil((kmax + 1) / double(nbins)));
        std::vector<double> edges, counts(nbins, 0);
        for (int b = 0; b <= nbins; ++b) edges.push_back(b * w);
        int over = 0;
        for (int k : r.keys_per_row) {
            counts[std::min(nbins - 1, int(k / w))] += 1;
            if (k > max_keys_) ++over;
        }
        ImGui::Text("keys per query (kept keys of each row)");
        char lab[64];
        std::snprintf(lab, sizeof lab, "max_keys = %d", max_keys_);
        histogram_plot("kpq", size, edges, counts, {0, edges.back(), false, "kept keys per query row"}, "query rows",
                       {{double(max_keys_), lab, IM_COL32(255, 90, 90, 255)}});
        std::vector<int> s = r.keys_per_row;
        std::sort(s.begin(), s.end());
        ImGui::Text("rows over the guard: %d of %d (%.1f%%)   median %d, p95 %d, max %d keys", over, r.L, 100.0 * over / r.L,
                    s[s.size() / 2], s[size_t(0.95 * (s.size() - 1))], s.back());
        caption("The guard caps keys per query; rows over it are where a production kernel would truncate or spill "
                "(the latency spread the max_keys claim is about).");
    }

    void request() {
        dirty_ = false;
        auto cap = st_.cap;
        size_t li = size_t(st_.layer_index);
        int h = st_.head;
        std::string spec = st_.method_spec;
        method_edit_ = spec;
        auto gcap = st_.gpu_cap && st_.gpu_cap->cap == cap ? st_.gpu_cap : nullptr;
        st_.tasks.submit("masks " + spec, "masks", [this, cap, gcap, li, h, spec](attnlab::job_progress & p) {
            auto r = compute_masks(cap, gcap, li, h, spec, p);
            return apply_fn([this, r]() {
                if (r->cap == st_.cap) res_ = r;
            });
        });
    }

    std::shared_ptr<mask_result> res_;
    bool dirty_ = true;
    int max_keys_ = 256;
    std::string method_edit_;
};

} // namespace

std::unique_ptr<view> make_masks_view(app_state & s) { return std::make_unique<masks_view>(s); }

} // namespace attnlab_gui
