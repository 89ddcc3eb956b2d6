#include "view_registry.h"

#include "../view_ids.h"

namespace attnlab_gui {

const std::vector<view_entry> & view_registry() {
    static const std::vector<view_entry> t = {
        {"source", "Source", make_source_view},
        {"attention_map", "Attention map", make_attention_map_view},
        {"masks", "Masks", make_masks_view},
        {"layers_heads", "Layers x heads", make_layers_heads_view},
        {"hyperbolic", "Hyperbolic", make_hyperbolic_view},
        {"tradeoffs", "Trade-offs", make_tradeoffs_view},
        {"kernels", "Kernels", make_kernels_view},
        {"quadratic", "Quadratic lesson", make_quadratic_view},
        {"snapshots", "Snapshots", make_snapshots_view},
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
    for (const view_entry & e : view_registry()) views_.push_back(e.make(s));
}

bool view_set::select(const std::string & id) {
    for (size_t i = 0; i < views_.size(); ++i) {
        if (id == view_registry()[i].id) {
            current_ = i;
            return true;
        }
    }
    return false;
}

} // namespace attnlab_gui
