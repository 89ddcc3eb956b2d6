#pragma once
// Window PNGs, taken after a frame is rendered and before it is swapped, so
// they hold exactly what the user sees: scripted screenshots (script.h) and
// the every-view-as-PNG jobs views ask for (request_view_shots, views/view.h).
#include <memory>
#include <string>

#include "view_registry.h"

namespace attnlab_gui {

// Reads the back buffer (w x h) into an RGB PNG. false (and a message on
// stderr) when it cannot be written.
bool screenshot_save(const std::string & path, int w, int h);

class screenshot_taker {
public:
    // Saves the whole window to `path` once `frames` more frames are drawn
    // (layout and textures settle); prints "screenshot: PATH".
    void request(const std::string & path, int frames = 3);
    bool pending() const { return !path_.empty(); }
    // After rendering, each frame: the due screenshot, then one step of the
    // view-shot job (shows each view until its tasks finish, at most ~10 s,
    // then saves it). Returns false when a requested screenshot failed.
    bool after_render(int fb_w, int fb_h, double now, view_set & views, const app_state & st);

private:
    std::string path_;
    int frames_ = 0;
};

} // namespace attnlab_gui
