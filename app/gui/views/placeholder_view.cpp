// Views whose engine part is not in core yet: they say what they need.
#include <imgui.h>

#include "view.h"

namespace attnlab_gui {

namespace {

class placeholder_view : public view {
public:
    placeholder_view(app_state & s, const char * id, const char * title, const char * what)
        : view(s), id_(id), title_(title), what_(what) {}
    const char * id() const override { return id_; }
    const char * title() const override { return title_; }
    void drawContent() override {
        ImGui::TextColored(ImVec4(1.0f, 0.8f, 0.3f, 1.0f), "%s: not available yet", title_);
        ImGui::Spacing();
        ImGui::TextWrapped("%s", what_);
    }

private:
    const char * id_, * title_, * what_;
};

} // namespace

std::unique_ptr<view> make_placeholder_view(app_state & s, const char * id, const char * title, const char * what) {
    return std::make_unique<placeholder_view>(s, id, title, what);
}

} // namespace attnlab_gui
