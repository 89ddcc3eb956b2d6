// Source: what is loaded (model file, checkpoint or trace), the text and
// context to capture, and the capture job itself.
#include <filesystem>

#include <imgui.h>
#include <imgui_stdlib.h>

#include "../file_browser.h"
#include "base/data_path.h"
#include "../plot.h"
#include "view.h"

namespace attnlab_gui {

namespace {

class source_view : public view {
public:
    explicit source_view(app_state & s) : view(s), browser_(attnlab::data_path("assets/models")) {}

    void drawContent() override {
        const float w = ImGui::GetContentRegionAvail().x;
        ImGui::BeginChild("open", ImVec2(w * 0.42f, 0), true);
        draw_open();
        ImGui::EndChild();
        ImGui::SameLine();
        ImGui::BeginChild("facts", ImVec2(0, 0), true);
        draw_facts();
        ImGui::Separator();
        draw_capture();
        ImGui::EndChild();
    }

private:
    void draw_open() {
        ImGui::TextUnformatted("Open a model or a trace");
        caption("GGUF file, Hugging Face checkpoint directory (config.json + *.safetensors) or an AttnLab trace. "
                "You can also drop a file onto the window.");
        if (path_.empty()) path_ = st_.source_path;
        ImGui::SetNextItemWidth(-70);
        bool enter = ImGui::InputText("##path", &path_, ImGuiInputTextFlags_EnterReturnsTrue);
        ImGui::SameLine();
        if (ImGui::Button("Open") || enter) st_.open_path(path_);
        if (!st_.load_error.empty()) ImGui::TextColored(ImVec4(1, 0.45f, 0.4f, 1), "%s", st_.load_error.c_str());
        ImGui::Spacing();
        if (browser_.draw(ImGui::GetContentRegionAvail().y * 0.62f)) {
            path_ = browser_.picked();
            st_.open_path(path_);
        } else if (!browser_.picked().empty() && browser_.picked() != last_pick_) {
            last_pick_ = path_ = browser_.picked();
        }
        ImGui::Spacing();
        ImGui::TextUnformatted("Recent");
        if (st_.recent.empty()) caption("(none yet)");
        for (const auto & r : st_.recent) {
            if (ImGui::Selectable(r.c_str(), r == st_.source_path)) {
                path_ = r;
                st_.open_path(r);
            }
        }
    }

    void row(const char * k, const std::string & v) {
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(k);
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(v.c_str());
    }

    void draw_facts() {
        const attnlab::model_info & f = st_.facts;
        ImGui::Text("Model facts");
        if (!f.valid()) {
            caption(st_.tasks.busy("load") ? "loading..." : "nothing loaded");
            return;
        }
        caption("%s", f.path.c_str());
        if (ImGui::BeginTable("facts", 4, ImGuiTableFlags_SizingStretchProp)) {
            ImGui::TableSetupColumn("k1", ImGuiTableColumnFlags_WidthFixed, 140);
            ImGui::TableSetupColumn("v1");
            ImGui::TableSetupColumn("k2", ImGuiTableColumnFlags_WidthFixed, 150);
            ImGui::TableSetupColumn("v2");
            auto cell = [](const char * k, const std::string & v) {
                ImGui::TableNextColumn();
                ImGui::TextDisabled("%s", k);
                ImGui::TableNextColumn();
                ImGui::TextWrapped("%s", v.c_str());
            };
            ImGui::TableNextRow();
            cell("name", f.name);
            cell("format", attnlab::model_info_format_line(f));
            ImGui::TableNextRow();
            cell("architecture", f.arch);
            cell("parameters", format_si(double(f.parameters), "") + " (" + std::to_string(f.parameters) + ")");
            ImGui::TableNextRow();
            cell("layers", std::to_string(f.layers));
            cell("query heads", std::to_string(f.heads));
            ImGui::TableNextRow();
            int64_t group = f.kv_heads > 0 ? f.heads / f.kv_heads : 0;
            cell("KV heads (GQA)", std::to_string(f.kv_heads) + "  (" + std::to_string(group) + " query heads per KV head)");
            cell("head dim", std::to_string(f.head_dim));
            ImGui::TableNextRow();
            cell("embedding / FFN", std::to_string(f.embedding) + " / " + std::to_string(f.ffn));
            cell("trained context", std::to_string(f.context) + " tokens");
            ImGui::TableNextRow();
            char rt[32];
            std::snprintf(rt, sizeof rt, "%.0f", f.rope_theta);
            cell("RoPE theta", rt);
            cell("file size", format_si(double(f.file_bytes), "B"));
            ImGui::TableNextRow();
            std::string types;
            for (auto & [t, n] : f.tensor_types) {
                types += t + " x" + std::to_string(n);
                auto it = f.type_bytes.find(t);
                if (it != f.type_bytes.end()) types += " (" + format_si(double(it->second), "B") + ")";
                types += "  ";
            }
            cell("tensor types", types);
            cell("weights in RAM (f32)", f.parameters ? format_si(double(f.parameters) * 4, "B") + "  (dequantised at load)" : "-");
            ImGui::TableNextRow();
            double kv_per_tok = double(f.layers) * 2 * f.kv_heads * f.head_dim * 2;
            cell("KV cache / token", format_si(kv_per_tok, "B") + " (fp16)");
            cell("KV cache at context", format_si(kv_per_tok * f.context, "B") + " (fp16, " + std::to_string(f.context) + " tok)");
            ImGui::EndTable();
        }
        if (st_.model) {
            ImGui::TextColored(ImVec4(0.5f, 0.9f, 0.5f, 1), "model loaded: %s", st_.model->model_id.c_str());
        } else if (st_.cap) {
            caption("trace loaded: analysis runs on its captured Q/K/V (no model to run)");
        }
    }

    void draw_capture() {
        ImGui::Text("Text and capture");
        caption("Runs the model on the first ctx tokens of the text and keeps every layer's post-RoPE Q, K, V.");
        const char * texts[] = {"kjv:eval", "kjv:calib", "kjv", "typed", "file"};
        int cur = 4;
        for (int i = 0; i < 4; ++i) {
            if (st_.text_spec == texts[i]) cur = i;
        }
        ImGui::SetNextItemWidth(160);
        if (ImGui::Combo("text", &cur, texts, 5)) {
            st_.text_spec = cur == 4 ? file_text_ : texts[cur];
        }
        if (cur == 4) {
            ImGui::SameLine();
            ImGui::SetNextItemWidth(-1);
            if (ImGui::InputText("##textfile", &file_text_)) st_.text_spec = file_text_;
        }
        if (cur == 3) ImGui::InputTextMultiline("##typed", &st_.typed_text, ImVec2(-1, 70));
        caption("kjv:eval = New Testament (metrics), kjv:calib = Old Testament (fitting), per the corpus split.");
        ImGui::SetNextItemWidth(160);
        ImGui::InputInt("ctx (tokens)", &st_.ctx, 256, 1024);
        int lim = st_.facts.context > 0 ? int(st_.facts.context) : 1 << 20;
        st_.ctx = std::max(2, std::min(st_.ctx, lim));
        for (int c : {256, 512, 1024, 2048, 4096, 8192}) {
            ImGui::SameLine();
            if (ImGui::SmallButton(std::to_string(c).c_str())) st_.ctx = std::min(c, lim);
        }
        ImGui::SetNextItemWidth(160);
        ImGui::InputText("layers (e.g. 0,3,10-12; empty = all)", &st_.layers_spec);
        if (st_.facts.valid()) {
            int nl = int(st_.facts.layers);
            double per = double(st_.ctx) * (st_.facts.heads + 2 * st_.facts.kv_heads) * st_.facts.head_dim * 4;
            caption("capture memory: %s per layer, %s for all %d layers (f32)", format_si(per, "B").c_str(),
                    format_si(per * nl, "B").c_str(), nl);
        }
        bool running = st_.tasks.busy("capture");
        if (running) {
            for (const auto & t : st_.tasks.snapshot()) {
                if (t.group != "capture") continue;
                char buf[128];
                std::snprintf(buf, sizeof buf, "%s  %.0f%%  (%.1f s)", t.stage.c_str(), t.fraction * 100, t.seconds);
                ImGui::ProgressBar(float(t.fraction), ImVec2(-90, 0), buf);
            }
            ImGui::SameLine();
            if (ImGui::Button("Cancel", ImVec2(80, 0))) st_.cancel_capture();
        } else {
            ImGui::BeginDisabled(!st_.model);
            if (ImGui::Button("Capture", ImVec2(120, 0))) st_.start_capture();
            ImGui::EndDisabled();
        }
        if (!st_.capture_error.empty()) ImGui::TextColored(ImVec4(1, 0.45f, 0.4f, 1), "%s", st_.capture_error.c_str());
        for (const auto & h : st_.tasks.history()) {
            if (h.group != "capture") continue;
            if (h.state == task_state::failed) ImGui::TextColored(ImVec4(1, 0.45f, 0.4f, 1), "capture failed: %s", h.error.c_str());
            if (h.state == task_state::cancelled) ImGui::TextColored(ImVec4(1, 0.8f, 0.3f, 1), "last capture cancelled after %.1f s", h.seconds);
            break;
        }
        if (const auto & c = st_.cap) {
            ImGui::Spacing();
            const auto & in = c->info;
            size_t bytes = 0;
            for (const auto & l : c->layers) bytes += (l.q.size() + l.k.size() + l.v.size()) * sizeof(float);
            ImGui::TextColored(ImVec4(0.5f, 0.9f, 0.5f, 1), "capture: %d tokens x %zu layers, %s in memory",
                               in.n_tokens(), c->layers.size(), format_si(double(bytes), "B").c_str());
            caption("text %s  sha256 %.16s...  model %s  %s", in.text_spec.c_str(), in.text_sha256.c_str(),
                    in.model_id.c_str(), st_.capture_seconds > 0 ? ("captured in " + std::to_string(st_.capture_seconds).substr(0, 5) + " s").c_str() : "");
            std::string preview;
            for (int t = 0; t < std::min(in.n_tokens(), 60); ++t) preview += st_.token_text(t) + "|";
            ImGui::TextWrapped("tokens: %s...", preview.c_str());
        }
    }

    file_browser browser_;
    std::string path_, last_pick_, file_text_ = "assets/text/kjv.txt:eval";
};

} // namespace

std::unique_ptr<view> make_source_view(app_state & s) { return std::make_unique<source_view>(s); }

} // namespace attnlab_gui
