// The session <-> the app's state and views (session.h); apart from
// session.cpp so the file format is testable without the GUI.
#include "app_state.h"
#include "session.h"
#include "view_registry.h"

namespace attnlab_gui {

session session_take(const app_state & st, view_set & views, float ui_scale) {
    session s;
    s.source = st.source_path;
    s.text_spec = st.text_spec;
    s.typed_text = st.typed_text;
    s.layers_spec = st.layers_spec;
    s.method_spec = st.method_spec;
    s.ctx = st.ctx;
    s.layer_index = st.layer_index;
    s.head = st.head;
    s.view = views.shown_id();
    s.ui_scale = ui_scale;
    for (size_t i = 0; i < views.size(); ++i) {
        if (!views.open(i)) s.closed_views.push_back(views.entry(i).id);
        nlohmann::json j = nlohmann::json::object();
        views.at(i).settings_save(j);
        if (!j.empty()) s.view_settings[views.entry(i).id] = j;
    }
    return s;
}

void session_apply(const session & s, app_state & st, view_set & views) {
    if (!s.text_spec.empty()) st.text_spec = s.text_spec;
    if (!s.typed_text.empty()) st.typed_text = s.typed_text;
    st.layers_spec = s.layers_spec;
    if (!s.method_spec.empty()) st.method_spec = s.method_spec;
    if (s.ctx > 0) st.ctx = s.ctx;
    for (size_t i = 0; i < views.size(); ++i) {
        const std::string id = views.entry(i).id;
        for (const auto & c : s.closed_views)
            if (c == id) views.open(i) = false;
        if (s.view_settings.contains(id)) views.at(i).settings_load(s.view_settings.at(id));
    }
    if (!s.view.empty()) views.set_current(s.view);
}

} // namespace attnlab_gui
