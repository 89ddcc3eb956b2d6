#pragma once
// The app's views, one table: id (the script and scenario name), sidebar
// title and factory, in sidebar order (keys 1-9). The ids must be exactly
// attnlab_app::view_ids() (app/view_ids.h), the list the CLI and the scenario
// parser check scenarios against; the app refuses to start otherwise. A new
// view: its class in views/, one row here, its id in app/view_ids.h.
#include <memory>
#include <string>
#include <vector>

#include "views/view.h"

namespace attnlab_gui {

struct view_entry {
    const char * id;
    const char * title;
    std::unique_ptr<view> (*make)(app_state & s);
};

const std::vector<view_entry> & view_registry();

// "" when the table's ids equal attnlab_app::view_ids() in order, else what differs.
std::string view_registry_check();

// The views made from the table, and which one is shown.
class view_set {
public:
    explicit view_set(app_state & s);
    size_t size() const { return views_.size(); }
    const view_entry & entry(size_t i) const { return view_registry()[i]; }
    view & at(size_t i) { return *views_[i]; }
    size_t current() const { return current_; }
    void show(size_t i) { current_ = i < views_.size() ? i : current_; }
    view & shown() { return *views_[current_]; }
    const char * shown_id() const { return view_registry()[current_].id; }
    const char * shown_title() const { return view_registry()[current_].title; }
    // Shows the view with this id; false when there is none.
    bool select(const std::string & id);

private:
    std::vector<std::unique_ptr<view>> views_;
    size_t current_ = 0;
};

} // namespace attnlab_gui
