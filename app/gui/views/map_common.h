#pragma once
// Shared by the Attention map and Masks views: computing a head's map (and a
// method's selection) as a task, and drawing one zoomable map panel.
#include <memory>
#include <string>

#include "../app_state.h"
#include "../head_map.h"
#include "../plot.h"

namespace attnlab_gui {

// The selection of st.method_spec for one head, timed. Throws input_error for a bad spec.
struct timed_selection {
    std::shared_ptr<const attnlab::selection> sel;
    std::string method;
    double seconds = 0.0;
};
timed_selection compute_selection(const attnlab::qkv_capture & cap, size_t layer_index, int head,
                                  const std::string & method_spec);

// The visible token rectangle, shared by all panels of a view.
struct map_viewport {
    double x0 = 0, x1 = 1, y0 = 0, y1 = 1;  // keys (columns) and queries (rows)
    void fit(int L) { x0 = y0 = 0; x1 = y1 = L; }
};

struct map_style {
    bool log = true;
    double log_floor = 1e-4;
    double lin_max = 1.0;          // fraction of the map's max weight
    pool_mode pool = pool_mode::max;
    colormap cm = colormap::magma;
};

// One panel: the texture, its cache key and the hover result.
struct map_panel {
    gl_texture tex;
    std::vector<float> buf, buf2;
    std::vector<uint32_t> rgba;
    std::string key;
    std::string source;   // which LOD level / window fed the last image
    int hover_i = -1, hover_j = -1;
    float hover_pooled = 0.0f;
};

// Draws `which` of map m (and window w when it covers the view) in a panel of
// `size`; handles zoom (wheel), pan (drag), fit (double click). Returns true
// when the view needs exact values it does not have (the caller requests a window).
bool draw_map_panel(const char * id, const char * title, map_layer which, const head_map & m, const map_window * w,
                    map_viewport & vp, const map_style & st, map_panel & p, ImVec2 size);

} // namespace attnlab_gui
