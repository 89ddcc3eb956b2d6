#include <cstdio>
#include <cstring>

#include <imgui.h>

#include "view.h"

namespace attnlab_gui {

namespace {

bool in_groups(const std::string & g, std::initializer_list<const char *> groups) {
    for (const char * x : groups) {
        if (g == x) return true;
    }
    return false;
}

} // namespace

void task_progress_bars(app_state & st, std::initializer_list<const char *> groups, float width, const char * cancel) {
    for (const auto & t : st.tasks.snapshot()) {
        if (!in_groups(t.group, groups)) continue;
        char buf[160];
        std::snprintf(buf, sizeof buf, "%s %.0f%%", t.stage.c_str(), t.fraction * 100);
        ImGui::ProgressBar(float(t.fraction), ImVec2(width, 0), buf);
        if (!cancel) continue;
        ImGui::SameLine();
        ImGui::PushID(t.id);
        if (ImGui::SmallButton(cancel)) st.tasks.cancel(t.id);
        ImGui::PopID();
    }
}

void task_failure_line(const app_state & st, std::initializer_list<const char *> groups, bool with_name) {
    for (const auto & h : st.tasks.history()) {
        if (!in_groups(h.group, groups)) continue;
        if (h.state != task_state::failed) break;
        if (with_name) ImGui::TextColored(ImVec4(1, 0.45f, 0.4f, 1), "%s: %s", h.name.c_str(), h.error.c_str());
        else ImGui::TextColored(ImVec4(1, 0.45f, 0.4f, 1), "%s", h.error.c_str());
        break;
    }
}

} // namespace attnlab_gui
