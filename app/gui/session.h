#pragma once
// What the app restores at the next start (~/.config/attnlab/session.json,
// written atomically at exit): the source, text, context, layers, method,
// selected layer and head, the current and closed views, the UI scale and
// each view's own settings (view::settings_save). The dock layout is Dear
// ImGui's layout.ini in the same folder. A session file that cannot be read
// is reported and ignored, never fatal.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace attnlab_gui {

class app_state;
class view_set;

// $HOME/.config/attnlab (created when missing; "." without HOME).
std::string session_dir();

struct session {
    std::string source, text_spec, typed_text, layers_spec, method_spec, view;
    int ctx = 0, layer_index = 0, head = 0;
    float ui_scale = 1.0f;
    std::vector<std::string> closed_views;
    nlohmann::json view_settings = nlohmann::json::object();   // view id -> its settings
};

session session_take(const app_state & st, view_set & views, float ui_scale);
// Settings into the state and views (not the source: the caller opens it).
void session_apply(const session & s, app_state & st, view_set & views);

// Throws attnlab::input_error naming the file and field.
session session_read(const std::string & path);
void session_write(const std::string & path, const session & s);

} // namespace attnlab_gui
