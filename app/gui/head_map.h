#pragma once
// The app's view of a head's attention map: the map itself is core's
// (metrics/head_map.h: computed on the CPU, or on the GPU from a capture kept
// there); this adds only which layer of it a panel draws.
#include "metrics/head_map.h"
#include "plot_math.h"

namespace attnlab_gui {

using attnlab::head_map;
using attnlab::head_map_compute;
using attnlab::head_map_compute_gpu;
using attnlab::head_map_weight;
using attnlab::head_map_window;
using attnlab::k_lod_finest_cells;
using attnlab::map_window;

enum class map_layer { dense, sparse, diff, kept };

} // namespace attnlab_gui
