#include "view_registry.h"

#include "../view_ids.h"

namespace attnlab_gui {

const std::vector<view_entry> & view_registry() {
    static const std::vector<view_entry> t = {
        {"source", "Source", make_source_view,
         "Open a model (GGUF, Hugging Face checkpoint directory) or a captured trace, pick the text (kjv:eval, kjv:calib, "
         "a file, or typed text) and the context length, and capture: one forward pass that keeps every layer's "
         "post-RoPE queries, keys and values. Every other view reads that capture. The facts table is read from the "
         "file's header, as `attnlab-cli info` prints it."},
        {"attention_map", "Attention map", make_attention_map_view,
         "One head's attention weights (query rows, key columns; causal, so the upper triangle is empty). Colour is the "
         "weight on a log scale; zoom with the wheel or +/-, F or 0 fits. With 'compare' on, the method's mask is "
         "applied: the sparse map is renormalised over the kept keys, and the difference map shows what the method "
         "moves. Row recall is the share of each row's attention mass the method keeps. Every number is measured on "
         "the capture."},
        {"masks", "Masks", make_masks_view,
         "What a method keeps for the selected head: its token mask and block mask at the method's block size, with "
         "the kept fraction (token density) and the share of blocks a block kernel would compute (block density). "
         "Fixed patterns do not look at the data; top-k methods do, so their masks change from head to head."},
        {"layers_heads", "Layers x heads", make_layers_heads_view,
         "A grid with one cell per layer and head: entropy, attention-mass recall of the method, and the density a "
         "layer-adaptive budget gives each head. Click a cell to select that head in every view. The adaptive "
         "allocation is calibrated on calibration text only."},
        {"hyperbolic", "Hyperbolic", make_hyperbolic_view,
         "The head's keys and queries embedded in the Poincare disk (distances follow attention), and the attention "
         "graph: which tokens are reachable from which in a few hops under the method's mask. Points near the rim are "
         "far from everything; hubs (sinks) sit near the centre."},
        {"tradeoffs", "Trade-offs", make_tradeoffs_view,
         "A sweep's rows: perplexity change against dense (same windows) versus block density or time, one point per "
         "method and density. Lower left is better. Open a sweep directory or run a small sweep on the loaded model; "
         "rows computed on the GPU say so and carry their peak GPU memory."},
        {"kernels", "Kernels", make_kernels_view,
         "Times the dense and block-sparse attention kernels on the CPU or the GPU on random inputs of the chosen "
         "length, head dim and heads: seconds, GFLOP/s, and the speed-up at the method's measured density."},
        {"quadratic", "Quadratic lesson", make_quadratic_view,
         "Why attention is the bottleneck: pairs, score-matrix bytes and FLOPs grow with the square of the context. "
         "Exact counts are computed; time and memory rows are SIMULATED from a hardware preset (roofline) and say so. "
         "A naive kernel materialises the L x L score matrix; a flash kernel never does."},
        {"snapshots", "Snapshots", make_snapshots_view,
         "Reproducible experiments: export the current state (model and text sha256, settings, metrics on screen, "
         "figures) into a snapshot directory, verify one, restore it, or run a scenario file headless as "
         "`attnlab-cli run` does."},
    };
    return t;
}

std::string view_registry_check() {
    const std::vector<std::string> & want = attnlab_app::view_ids();
    const std::vector<view_entry> & have = view_registry();
    std::string table, ids;
    for (const view_entry & e : have) table += (table.empty() ? "" : ",") + std::string(e.id);
    for (const std::string & id : want) ids += (ids.empty() ? "" : ",") + id;
    if (table == ids) return "";
    return "the view table (app/gui/view_registry.cpp: " + table + ") differs from app/view_ids.h (" + ids + ")";
}

view_set::view_set(app_state & s) {
    for (const view_entry & e : view_registry()) {
        views_.push_back(e.make(s));
        open_.push_back(true);
    }
    visible_.assign(views_.size(), false);
    rect_.assign(views_.size(), view_rect{});
}

int view_set::index_of(const std::string & id) const {
    for (size_t i = 0; i < views_.size(); ++i)
        if (id == view_registry()[i].id) return int(i);
    return -1;
}

void view_set::show(size_t i) {
    if (i >= views_.size()) return;
    current_ = i;
    open_[i] = true;
    focus_request_ = int(i);
}

bool view_set::select(const std::string & id) {
    for (size_t i = 0; i < views_.size(); ++i) {
        if (id == view_registry()[i].id) {
            show(i);
            return true;
        }
    }
    return false;
}

std::string view_set::window_name(size_t i) const {
    return std::string(view_registry()[i].title) + "###" + view_registry()[i].id;
}

int view_set::take_focus_request() {
    const int r = focus_request_;
    focus_request_ = -1;
    return r;
}

} // namespace attnlab_gui
