#pragma once
// The desktop app's view ids. The app owns them, core does not: the GUI's
// view table (app/gui) holds exactly these views, and both front ends pass
// this list to the scenario parser, which refuses a scenario naming a view
// that is not in it. Add a view here and in the GUI's table together.
#include <string>
#include <vector>

namespace attnlab_app {

inline const std::vector<std::string> & view_ids() {
    static const std::vector<std::string> v = {"source", "attention_map", "masks", "layers_heads", "hyperbolic",
                                               "tradeoffs", "kernels", "quadratic", "snapshots"};
    return v;
}

} // namespace attnlab_app
