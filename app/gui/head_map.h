#pragma once
// One head's attention map, kept small enough to draw at any zoom: instead of
// the L x L weights (268 MB at L = 8192) it keeps, per query row, the softmax
// max and 1/sum (any single weight is then one dot product away), and a
// pyramid of pooled levels (max and sum per f x f cell) whose finest level has
// at most k_lod_finest_cells cells a side. Views finer than that ask for an
// exact window (head_map_window), computed on a worker thread.
//
// With a selection (a sparse method's mask) the same pass also builds the
// sparse map (weights kept by the mask, renormalised per row) and the kept
// fraction per cell; the difference sparse - dense is the difference of their
// means, so it needs no pyramid of its own.
#include <cstdint>
#include <memory>
#include <vector>

#include "attention/selection.h"
#include "io/trace.h"
#include "plot_math.h"

namespace attnlab {
class job_progress;
}

namespace attnlab_gui {

constexpr int k_lod_finest_cells = 2048;

enum class map_layer { dense, sparse, diff, kept };

struct head_map {
    std::shared_ptr<const attnlab::qkv_capture> cap;
    std::shared_ptr<const attnlab::selection> sel;  // null: dense only
    size_t layer_index = 0;   // index into cap->layers
    int layer = 0, head = 0, L = 0, head_dim = 0;
    float scale = 0.0f;
    std::vector<float> q, k;        // the head's Q (pre-scaled) and K rows, contiguous L x d
    std::vector<float> row_max;     // of the logits s·q·k over j <= i
    std::vector<float> row_inv_sum; // 1 / sum exp(logit - max)
    std::vector<float> row_recall;  // sparse only: kept attention mass per row
    std::vector<float> row_entropy; // nats
    std::vector<lod_level> dense, sparse, kept; // fine to coarse
    float max_weight = 0.0f;        // off the first rows (their single key has weight 1)
    double mean_entropy = 0.0;
    double seconds = 0.0;           // wall time of head_map_compute

    bool has_sparse() const { return sel != nullptr; }
    int finest_factor() const { return dense.empty() ? 1 : dense.front().factor; }
    size_t bytes() const;
};

// Computes row statistics and the pyramids. Runs on a worker thread; OpenMP
// over query tiles. job_cancelled when progress is cancelled.
std::shared_ptr<head_map> head_map_compute(std::shared_ptr<const attnlab::qkv_capture> cap, size_t layer_index,
                                           int head, std::shared_ptr<const attnlab::selection> sel,
                                           attnlab::job_progress * progress);

// Exact weights of rows [r0, r1) x cols [c0, c1) as factor-1 levels (dense,
// and sparse/kept when the map has a selection).
struct map_window {
    lod_level dense, sparse, kept;
    double seconds = 0.0;
};
std::shared_ptr<map_window> head_map_window(const head_map & m, int r0, int r1, int c0, int c1);

// One weight, exact (0 above the diagonal).
float head_map_weight(const head_map & m, int i, int j);

} // namespace attnlab_gui
