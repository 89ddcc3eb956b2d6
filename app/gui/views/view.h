#pragma once
// One class per view (ImHex style): a view draws itself in drawContent() from
// app_state and talks to other views only through the event bus. Its id and
// title live in the app's view table (view_registry.h), not in the class.
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../app_state.h"
#include "../plot.h"

namespace attnlab_gui {

class view {
public:
    explicit view(app_state & s) : st_(s) {}
    virtual ~view() = default;
    virtual void drawContent() = 0;
    // Keyboard shortcuts while this view is shown (not while typing).
    virtual void on_keys() {}
    // Scripted mode: view-specific commands ("compare on", "zoom 0 64 0 64").
    // Returns false for a command the view does not know.
    virtual bool on_script(const std::string & cmd, const std::vector<std::string> & args) { return false; }
    // The view's own settings in the session (session.h): folders, sizes,
    // choices. settings_load gets what settings_save wrote, possibly from an
    // older version: read what is there, with types checked.
    virtual void settings_save(nlohmann::json & j) const { (void) j; }
    virtual void settings_load(const nlohmann::json & j) { (void) j; }

protected:
    app_state & st_;
};

// Task rows every view draws alike (view_widgets.cpp): a progress bar
// ("stage NN%") per running task of these groups, with a cancel button
// labelled `cancel` (none when null); and the newest finished task of these
// groups, if it failed, as a red line (prefixed with the task's name when asked).
void task_progress_bars(app_state & st, std::initializer_list<const char *> groups, float width,
                        const char * cancel = "Cancel");
void task_failure_line(const app_state & st, std::initializer_list<const char *> groups, bool with_name = false);

// The factories of the view table (view_registry.cpp).
std::unique_ptr<view> make_source_view(app_state & s);
std::unique_ptr<view> make_attention_map_view(app_state & s);
std::unique_ptr<view> make_masks_view(app_state & s);
std::unique_ptr<view> make_layers_heads_view(app_state & s);
std::unique_ptr<view> make_kernels_view(app_state & s);
std::unique_ptr<view> make_quadratic_view(app_state & s);
std::unique_ptr<view> make_hyperbolic_view(app_state & s);
std::unique_ptr<view> make_tradeoffs_view(app_state & s);
std::unique_ptr<view> make_snapshots_view(app_state & s);

// Every view as a PNG, taken by the frame loop (screenshot.cpp) with the same code
// as scripted screenshots: each view is shown until its tasks finish (at most
// ~10 s), saved as DIR/<id>.png, and `done` gets the paths written, on the
// main thread, after the view that asked is shown again. ids empty: all views.
struct view_shot_request {
    std::vector<std::string> ids;
    std::string dir;
    std::function<void(const std::vector<std::string> & paths, const std::string & error)> done;
};
void request_view_shots(view_shot_request r);
bool view_shots_running();

} // namespace attnlab_gui
