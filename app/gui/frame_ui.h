#pragma once
// The app's frame around the views: the main menu, a dock space over the
// window where every view is a dockable window (tabs by default; any two can
// sit side by side), the Tasks window, the status bar, F1 help and the About
// box. The layout is Dear ImGui's (saved in ~/.config/attnlab/layout.ini);
// everything else a session holds is session.h's.
#include <string>

namespace attnlab_gui {

class app_state;
class view_set;

struct frame_info {
    std::string device;          // "GPU: NVIDIA H100 ..." or "CPU only (...)"
    std::string versions;        // AttnLab, Dear ImGui, ImPlot, GLFW, OpenGL
    double work_ms = 0.0;        // mean frame work (UI + render), idle waiting excluded
    float ui_scale = 1.0f;       // View > UI scale; applied by the frame loop
    bool reset_layout = false;   // View > Reset layout (or no saved layout): build the default one
    bool show_help = false, show_about = false, quit = false;
};

// One frame's UI. Keys (not while typing): 1-9 show a view, Up/Down the
// layer, Left/Right the head, F1 help; the current view gets the rest.
void frame_draw(app_state & st, view_set & views, frame_info & fi);

// The view windows as JSON (script dump_layout): per view id, open, visible,
// the window rectangle and its tab's, in window pixels; and the display size.
std::string frame_layout_json(view_set & views);

// The Ctrl+M method box is open with its field taking keys (script wait_method_box).
bool frame_method_box_ready();

} // namespace attnlab_gui
