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
//   expect capture_tokens N | expect last capture cancelled | expect no_failed_tasks
//   quit
// Anything else goes to the current view (view::on_script), e.g. "zoom 0 64 0 64".
#include <string>
#include <vector>

namespace attnlab_gui {

struct script_line {
    int line_no = 0;
    std::string cmd;
    std::vector<std::string> args;
    std::string rest;   // everything after the command, trimmed
};

// Reads FILE; '#' starts a comment. Throws std::runtime_error if unreadable.
std::vector<script_line> script_load(const std::string & path);

} // namespace attnlab_gui
