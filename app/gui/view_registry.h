#pragma once
// The app's views, one table: id (the script and scenario name), title,
// factory and help text, in menu order (keys 1-9). The ids must be exactly
// attnlab_app::view_ids() (app/view_ids.h), the list the CLI and the scenario
// parser check scenarios against; the app refuses to start otherwise. A new
// view: its class in views/, one row here, its id in app/view_ids.h.
#include <algorithm>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "views/view.h"

namespace attnlab_gui {

// A view window's place on screen (window pixels), from the last frame.
struct view_rect {
    float x = 0, y = 0, w = 0, h = 0;
};

struct view_entry {
    const char * id;
    const char * title;
    std::unique_ptr<view> (*make)(app_state & s);
    const char * help;   // F1: what the view shows and how to read it
};

const std::vector<view_entry> & view_registry();

// "" when the table's ids equal attnlab_app::view_ids() in order, else what differs.
std::string view_registry_check();

// The views made from the table. Each is a dockable window (frame_ui.cpp):
// open or closed, and one is current, the last focused (or asked for): it
// gets the keyboard shortcuts and a script's view commands.
class view_set {
public:
    explicit view_set(app_state & s);
    size_t size() const { return views_.size(); }
    const view_entry & entry(size_t i) const { return view_registry()[i]; }
    view & at(size_t i) { return *views_[i]; }
    size_t current() const { return current_; }
    // Opens view i and brings it to the front on the next frame.
    void show(size_t i);
    view & shown() { return *views_[current_]; }
    const char * shown_id() const { return view_registry()[current_].id; }
    const char * shown_title() const { return view_registry()[current_].title; }
    // Shows the view with this id; false when there is none.
    bool select(const std::string & id);
    // Makes it current without bringing it to the front (a restored session:
    // the saved layout decides which tabs are in front).
    void set_current(const std::string & id) {
        if (int i = index_of(id); i >= 0) current_ = size_t(i);
        focus_request_ = -1;
    }

    bool & open(size_t i) { return open_[i]; }
    // The window title: "Title###id" (ImGui's id stays the view id, so a
    // saved layout survives a renamed title).
    std::string window_name(size_t i) const;
    // The view to bring to the front this frame, once; -1: none.
    int take_focus_request();
    // The frame loop reports which view window has focus, and which were
    // drawn (visible: a selected tab or an undocked window) and where.
    void focused(size_t i) { current_ = i; }
    void frame_begin() { std::fill(visible_.begin(), visible_.end(), false); }
    void drawn(size_t i, view_rect r) { visible_[i] = true; rect_[i] = r; }
    bool visible(size_t i) const { return visible_[i]; }
    view_rect rect(size_t i) const { return rect_[i]; }
    int index_of(const std::string & id) const;

private:
    std::vector<std::unique_ptr<view>> views_;
    std::deque<bool> open_;   // deque: open(i) hands out a bool& for ImGui::Begin
    std::vector<bool> visible_;
    std::vector<view_rect> rect_;
    size_t current_ = 0;
    int focus_request_ = 0;   // the first view in front at a first start
};

} // namespace attnlab_gui
