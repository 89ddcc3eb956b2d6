#pragma once
// One class per view (ImHex style): a view draws itself in drawContent() from
// app_state and talks to other views only through the event bus.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../app_state.h"
#include "../plot.h"

namespace attnlab_gui {

class view {
public:
    explicit view(app_state & s) : st_(s) {}
    virtual ~view() = default;
    virtual const char * id() const = 0;      // script name, e.g. "attention_map"
    virtual const char * title() const = 0;   // sidebar label
    virtual void drawContent() = 0;
    // Keyboard shortcuts while this view is shown (not while typing).
    virtual void on_keys() {}
    // Scripted mode: view-specific commands ("compare on", "zoom 0 64 0 64").
    // Returns false for a command the view does not know.
    virtual bool on_script(const std::string & cmd, const std::vector<std::string> & args) { return false; }

protected:
    app_state & st_;
};

std::unique_ptr<view> make_source_view(app_state & s);
std::unique_ptr<view> make_attention_map_view(app_state & s);
std::unique_ptr<view> make_masks_view(app_state & s);
std::unique_ptr<view> make_layers_heads_view(app_state & s);
std::unique_ptr<view> make_kernels_view(app_state & s);
std::unique_ptr<view> make_quadratic_view(app_state & s);
std::unique_ptr<view> make_hyperbolic_view(app_state & s);
std::unique_ptr<view> make_tradeoffs_view(app_state & s);
std::unique_ptr<view> make_snapshots_view(app_state & s);

// Every view as a PNG, taken by the frame loop (main.cpp) with the same code
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
