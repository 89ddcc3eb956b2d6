#include "frame_ui.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include <imgui.h>
#include <imgui_stdlib.h>
#include <imgui_internal.h>   // DockBuilder*, BeginViewportSideBar: the docking branch's layout API

#include "app_state.h"
#include "view_registry.h"
#include "views/view.h"

namespace attnlab_gui {
namespace {

const char * k_tasks = "Tasks###tasks";
const char * k_help = "Help###help";
const char * k_about = "About AttnLab###about";

// Running tasks with progress and cancel, then the last finished ones.
void tasks_draw(app_state & st) {
    for (const auto & t : st.tasks.snapshot()) {
        ImGui::PushID(t.id);
        ImGui::TextWrapped("%s", t.name.c_str());
        char b[96];
        std::snprintf(b, sizeof b, "%.0f%% %.1fs", t.fraction * 100, t.seconds);
        ImGui::ProgressBar(float(t.fraction), ImVec2(-28, 0), b);
        ImGui::SameLine();
        if (ImGui::SmallButton("x")) st.tasks.cancel(t.id);
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("cancel this task");
        ImGui::PopID();
    }
    if (st.tasks.snapshot().empty()) ImGui::TextDisabled("no task running");
    ImGui::Separator();
    int shown = 0;
    for (const auto & h : st.tasks.history()) {
        if (shown++ >= 8) break;
        ImVec4 c = h.state == task_state::failed      ? ImVec4(1, 0.45f, 0.4f, 1)
                   : h.state == task_state::cancelled ? ImVec4(1, 0.8f, 0.3f, 1)
                                                      : ImVec4(0.6f, 0.6f, 0.65f, 1);
        ImGui::TextColored(c, "%s %s %.2fs", task_state_name(h.state), h.name.c_str(), h.seconds);
        if (!h.error.empty() && ImGui::IsItemHovered()) ImGui::SetTooltip("%s", h.error.c_str());
    }
}

void status_bar_draw(const app_state & st, const frame_info & fi) {
    ImGuiViewport * vp = ImGui::GetMainViewport();
    const ImGuiWindowFlags fl = ImGuiWindowFlags_NoScrollbar | ImGuiWindowFlags_NoSavedSettings | ImGuiWindowFlags_MenuBar;
    if (ImGui::BeginViewportSideBar("##status", vp, ImGuiDir_Down, ImGui::GetFrameHeight(), fl)) {
        if (ImGui::BeginMenuBar()) {
            const std::string model = st.facts.valid() ? st.facts.name : "no model";
            const std::string cap = st.cap ? std::to_string(st.cap->info.n_tokens()) + " tokens x " +
                                                 std::to_string(st.cap->layers.size()) + " layers (" + st.capture_device +
                                                 (st.gpu_cap ? ", Q/K kept on the GPU)" : ")")
                                           : "no capture";
            const std::string dev = fi.device + (st.map_status.empty() ? "" : "  |  " + st.map_status);
            ImGui::Text("%s  |  %s  |  layer %d head %d  |  method %s  |  %s  |  %.1f ms/frame work  |  %d task(s)",
                        model.c_str(), cap.c_str(), st.layer_id(), st.head, st.method_spec.c_str(), dev.c_str(),
                        fi.work_ms, int(st.tasks.snapshot().size()));
            if (ImGui::IsItemHovered())
                ImGui::SetTooltip("ms/frame work: building and drawing the frame, measured; waiting for input is not counted");
            ImGui::EndMenuBar();
        }
    }
    ImGui::End();
}

// Tasks on the left, every view a tab on the right.
void layout_build_default(ImGuiID ds, view_set & views) {
    ImGui::DockBuilderRemoveNode(ds);
    ImGui::DockBuilderAddNode(ds, ImGuiDockNodeFlags_DockSpace);
    ImGui::DockBuilderSetNodeSize(ds, ImGui::GetMainViewport()->WorkSize);
    ImGuiID left = 0, main = 0;
    ImGui::DockBuilderSplitNode(ds, ImGuiDir_Left, 0.15f, &left, &main);
    ImGui::DockBuilderDockWindow(k_tasks, left);
    for (size_t i = 0; i < views.size(); ++i) ImGui::DockBuilderDockWindow(views.window_name(i).c_str(), main);
    ImGui::DockBuilderFinish(ds);
}

const char * k_method_tip =
    "the method every view compares with dense (Enter applies; Ctrl+M opens a box to type one)\n"
    "name:key=value,...  e.g. block_topk:rho=0.2,B=64  sinks_window:g=4,w=256\n"
    "oracle_topk:rho=0.1  mask:expr=k < 4 || q - k < 256";

// The method spec, shared by every view, editable in the menu bar.
void method_field_draw(app_state & st) {
    static std::string edit;
    ImGui::TextDisabled("method");
    ImGui::SetNextItemWidth(320);
    const ImGuiID id = ImGui::GetID("##method_spec");
    if (ImGui::GetActiveID() != id) edit = st.method_spec;   // follows changes made elsewhere
    if (ImGui::InputText("##method_spec", &edit, ImGuiInputTextFlags_EnterReturnsTrue)) st.set_method(edit);
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", k_method_tip);
}

bool g_method_box_ready = false;   // open, and its field has keyboard focus

// Ctrl+M: a box with the method spec, focused for typing; Enter applies,
// Escape cancels.
void method_box_draw(app_state & st) {
    g_method_box_ready = false;
    static std::string edit;
    const ImGuiIO & io = ImGui::GetIO();
    if (io.KeyCtrl && ImGui::IsKeyPressed(ImGuiKey_M, false)) {
        edit = st.method_spec;
        ImGui::OpenPopup("Method###method_box");
    }
    if (ImGui::BeginPopupModal("Method###method_box", nullptr, ImGuiWindowFlags_AlwaysAutoResize)) {
        ImGui::TextUnformatted(k_method_tip);
        if (ImGui::IsWindowAppearing()) ImGui::SetKeyboardFocusHere();
        ImGui::SetNextItemWidth(480);
        if (ImGui::InputText("##method_box_spec", &edit, ImGuiInputTextFlags_EnterReturnsTrue)) {
            st.set_method(edit);
            ImGui::CloseCurrentPopup();
        }
        g_method_box_ready = ImGui::IsItemActive();
        if (ImGui::IsKeyPressed(ImGuiKey_Escape) || ImGui::Button("Cancel")) ImGui::CloseCurrentPopup();
        ImGui::EndPopup();
    }
}

void menu_draw(app_state & st, view_set & views, frame_info & fi, bool & tasks_open) {
    if (!ImGui::BeginMainMenuBar()) return;
    if (ImGui::BeginMenu("File")) {
        if (ImGui::MenuItem("Open...")) views.select("source");
        if (ImGui::BeginMenu("Recent", !st.recent.empty())) {
            std::string pick;   // a copy: opening reorders the list
            for (const auto & r : st.recent)
                if (ImGui::MenuItem(r.c_str())) pick = r;
            ImGui::EndMenu();
            if (!pick.empty()) st.open_path(pick);
        }
        ImGui::Separator();
        if (ImGui::MenuItem("Quit", "Ctrl+Q")) fi.quit = true;
        ImGui::EndMenu();
    }
    if (ImGui::BeginMenu("View")) {
        for (size_t i = 0; i < views.size(); ++i) {
            char key[24];
            std::snprintf(key, sizeof key, "%zu", i + 1);
            if (ImGui::MenuItem(views.entry(i).title, key, views.open(i))) {
                if (views.open(i)) views.open(i) = false;
                else views.show(i);
            }
        }
        ImGui::MenuItem("Tasks", nullptr, &tasks_open);
        ImGui::Separator();
        ImGui::SetNextItemWidth(120);
        ImGui::SliderFloat("UI scale", &fi.ui_scale, 0.75f, 2.5f, "%.2f");
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("font and widget size; saved with the session");
        if (ImGui::MenuItem("Reset layout")) fi.reset_layout = true;
        ImGui::EndMenu();
    }
    if (ImGui::BeginMenu("Help")) {
        if (ImGui::MenuItem("This view", "F1")) fi.show_help = true;
        if (ImGui::MenuItem("About")) fi.show_about = true;
        ImGui::EndMenu();
    }
    ImGui::Separator();
    method_field_draw(st);
    ImGui::EndMainMenuBar();
}

void help_draw(view_set & views, frame_info & fi) {
    if (!fi.show_help) return;
    ImGui::SetNextWindowSize(ImVec2(560, 420), ImGuiCond_FirstUseEver);
    if (ImGui::Begin(k_help, &fi.show_help)) {
        const view_entry & e = views.entry(views.current());
        ImGui::TextColored(ImVec4(0.55f, 0.8f, 1.0f, 1), "%s", e.title);
        ImGui::Separator();
        ImGui::TextWrapped("%s", e.help);
        ImGui::Separator();
        ImGui::TextWrapped("Keys (not while typing): 1-9 show a view; Up/Down change the layer and Left/Right the head "
                           "in every view; F1 this help; Ctrl+Q quit. Views dock anywhere: drag a tab to a side of "
                           "another view to see both. The layout and the session are restored at the next start.");
        ImGui::Separator();
        ImGui::TextWrapped("Method specs: name:key=value,... e.g. block_topk:rho=0.2,B=64 | sinks_window:g=4,w=256 | "
                           "oracle_topk:rho=0.1 | mask:expr=k < 4 || q - k < 256. `attnlab-cli methods` lists every "
                           "method and key.");
    }
    ImGui::End();
}

void about_draw(const app_state & st, frame_info & fi) {
    if (!fi.show_about) return;
    ImGui::SetNextWindowSize(ImVec2(620, 260), ImGuiCond_FirstUseEver);
    if (ImGui::Begin(k_about, &fi.show_about)) {
        ImGui::TextUnformatted("AttnLab: a lab for sparse attention in transformers");
        ImGui::Separator();
        ImGui::TextWrapped("%s", fi.versions.c_str());
        ImGui::Text("device: %s", fi.device.c_str());
        ImGui::Text("source: %s", st.source_path.empty() ? "(none)" : st.source_path.c_str());
        ImGui::Text("sha256: %s", st.source_sha256.empty() ? "(computing or none)" : st.source_sha256.c_str());
    }
    ImGui::End();
}

void keys_handle(app_state & st, view_set & views, frame_info & fi) {
    ImGuiIO & io = ImGui::GetIO();
    if (io.KeyCtrl && ImGui::IsKeyPressed(ImGuiKey_Q)) fi.quit = true;
    if (ImGui::IsKeyPressed(ImGuiKey_F1)) fi.show_help = !fi.show_help;
    if (io.WantTextInput || io.KeyCtrl || io.KeyAlt) return;
    for (int k = 0; k < int(views.size()) && k < 9; ++k)
        if (ImGui::IsKeyPressed(ImGuiKey(ImGuiKey_1 + k))) views.show(size_t(k));
    if (st.cap) {
        if (ImGui::IsKeyPressed(ImGuiKey_UpArrow)) st.select_head(st.layer_index - 1, st.head);
        if (ImGui::IsKeyPressed(ImGuiKey_DownArrow)) st.select_head(st.layer_index + 1, st.head);
        if (ImGui::IsKeyPressed(ImGuiKey_LeftArrow)) st.select_head(st.layer_index, st.head - 1);
        if (ImGui::IsKeyPressed(ImGuiKey_RightArrow)) st.select_head(st.layer_index, st.head + 1);
    }
    views.shown().on_keys();
}

} // namespace

bool frame_method_box_ready() { return g_method_box_ready; }

std::string frame_layout_json(view_set & views) {
    std::string j = "{\n  \"display\": [" + std::to_string(int(ImGui::GetIO().DisplaySize.x)) + ", " +
                    std::to_string(int(ImGui::GetIO().DisplaySize.y)) + "],\n  \"font_size\": " +
                    std::to_string(ImGui::GetFontSize()) + ",\n  \"views\": {";
    auto rect = [](float a, float b, float c, float d) {
        char t[96];
        std::snprintf(t, sizeof t, "[%.0f, %.0f, %.0f, %.0f]", a, b, c, d);
        return std::string(t);
    };
    for (size_t i = 0; i < views.size(); ++i) {
        ImGuiWindow * w = ImGui::FindWindowByName(views.window_name(i).c_str());
        const view_rect r = views.rect(i);
        j += std::string(i ? "," : "") + "\n    \"" + views.entry(i).id + "\": {\"open\": " +
             (views.open(i) ? "true" : "false") + ", \"visible\": " + (views.visible(i) ? "true" : "false") +
             ", \"rect\": " + rect(r.x, r.y, r.x + r.w, r.y + r.h);
        ImGuiTabBar * bar = w && w->DockIsActive && w->DockNode ? w->DockNode->TabBar : nullptr;
        if (ImGuiTabItem * t = bar ? ImGui::TabBarFindTabByID(bar, w->TabId) : nullptr) {
            const float x0 = bar->BarRect.Min.x + t->Offset - bar->ScrollingAnim;
            j += ", \"tab\": " + rect(x0, bar->BarRect.Min.y, x0 + t->Width, bar->BarRect.Max.y);
        }
        j += "}";
    }
    return j + "\n  }\n}\n";
}

void frame_draw(app_state & st, view_set & views, frame_info & fi) {
    static bool tasks_open = true;
    menu_draw(st, views, fi, tasks_open);
    status_bar_draw(st, fi);
    const ImGuiID ds = ImGui::GetID("attnlab_dockspace");
    if (fi.reset_layout || !ImGui::DockBuilderGetNode(ds)) {
        layout_build_default(ds, views);
        fi.reset_layout = false;
    }
    ImGui::DockSpaceOverViewport(ds, ImGui::GetMainViewport());
    if (tasks_open) {
        if (ImGui::Begin(k_tasks, &tasks_open, ImGuiWindowFlags_NoFocusOnAppearing)) tasks_draw(st);
        ImGui::End();
    }
    const int focus = views.take_focus_request();
    views.frame_begin();
    for (size_t i = 0; i < views.size(); ++i) {
        if (!views.open(i)) continue;
        if (int(i) == focus) ImGui::SetNextWindowFocus();
        bool open = true;
        // NoFocusOnAppearing: a window appearing (every view at start) must not
        // take focus and bring its tab to the front over the saved layout's.
        if (ImGui::Begin(views.window_name(i).c_str(), &open,
                         ImGuiWindowFlags_NoScrollWithMouse | ImGuiWindowFlags_NoFocusOnAppearing)) {
            if (ImGui::IsWindowFocused(ImGuiFocusedFlags_RootAndChildWindows) && focus < 0) views.focused(i);
            const ImVec2 p = ImGui::GetWindowPos(), sz = ImGui::GetWindowSize();
            views.drawn(i, view_rect{p.x, p.y, sz.x, sz.y});
            views.at(i).drawContent();
        }
        ImGui::End();
        if (!open) views.open(i) = false;
    }
    help_draw(views, fi);
    about_draw(st, fi);
    method_box_draw(st);
    keys_handle(st, views, fi);
}

} // namespace attnlab_gui
