#pragma once
// Scripted mode (attnlab --script FILE --screenshot-dir DIR): one command per
// line, run one at a time between frames so every step is drawn exactly as a
// user would see it. Commands:
//   open PATH | text SPEC | ctx N | layers SPEC | capture | cancel
//   wait [SECONDS]      until no task runs (default limit 600 s)
//   sleep SECONDS       keep drawing for a while
//   view ID | layer N | head N | method SPEC
//   mouse X Y           move the pointer (window pixels), e.g. off a plot before a screenshot
//   screenshot FILE     PNG of the whole window into the screenshot dir
//   export_charts DIR   every chart of the next frame as PNG + CSV into the screenshot dir's DIR
//   signal NAME         creates DIR/NAME.signal (DIR: the screenshot dir), for a driver sending real input
//   await NAME [S]      waits until DIR/NAME.go exists (default limit 120 s), then removes it
//   wait_method_box [S] waits until the Ctrl+M method box is open and takes keys (default limit 30 s)
//   dump_layout FILE    the view windows' tabs and rectangles (window pixels) as JSON, for that driver
//   expect view ID | expect head N | expect layer N | expect method SPEC | expect visible ID
//   expect side_by_side ID ID | expect display W H
//   expect capture_tokens N | expect last capture cancelled | expect no_failed_tasks
//   quit
// Anything else goes to the current view (view::on_script), e.g. "zoom 0 64 0 64".
#include <functional>
#include <string>
#include <vector>

namespace attnlab_gui {

class app_state;
class view_set;
class screenshot_taker;

struct script_line {
    int line_no = 0;
    std::string cmd;
    std::vector<std::string> args;
    std::string rest;   // everything after the command, trimmed
};

// Reads FILE; '#' starts a comment. Throws std::runtime_error if unreadable.
std::vector<script_line> script_load(const std::string & path);

// What a script drives.
struct script_context {
    app_state & st;
    view_set & views;
    screenshot_taker & shots;
    std::string shot_dir;
    std::function<void(double x, double y)> move_mouse;
};

// Runs a loaded script between frames: at most one command per frame (the
// next frame shows its effect); wait, sleep and screenshots hold it. A failed
// command or expectation prints "script FILE:LINE: CMD: why" and makes the
// exit code 1; the script goes on.
class script_runner {
public:
    script_runner(std::string path, std::vector<script_line> lines);
    bool active() const { return !lines_.empty(); }
    // Once per frame, after the frame is drawn; now in seconds.
    void step(double now, script_context & cx);
    // Every command run and nothing pending, or quit: the app should close.
    bool finished(const script_context & cx) const;
    int exit_code() const { return exit_code_; }

private:
    bool ready(double now, script_context & cx);
    void run(const script_line & l, double now, script_context & cx);
    void expect(const script_line & l, script_context & cx);
    void fail(const script_line & l, const std::string & msg);

    std::string path_;
    std::vector<script_line> lines_;
    size_t pc_ = 0;
    bool waiting_ = false, quit_ = false;
    double wait_until_ = 0, wait_limit_ = 0;
    std::string await_path_;   // "await": the file that ends the wait
    bool await_box_ = false;   // "wait_method_box"
    int exit_code_ = 0;
};

} // namespace attnlab_gui
