#pragma once
// One head's attention map, kept small enough to draw at any zoom: instead of
// the L x L weights (268 MB at L = 8192) it keeps, per query row, the softmax
// max and 1/sum (any single weight is then one dot product away), and a
// pyramid of pooled levels (attention/lod_level.h: max and sum per f x f cell)
// whose finest level has at most k_lod_finest_cells cells a side. Views finer
// than that ask for an exact window (head_map_window).
//
// With a selection (a sparse method's mask) the same pass also builds the
// sparse map (weights kept by the mask, renormalised per row) and the kept
// fraction per cell; the difference sparse - dense is the difference of their
// means, so it needs no pyramid of its own.
//
// Two implementations of one definition: head_map_compute on the CPU (here)
// and head_map_compute_gpu through the GPU backend (attention/gpu_backend.h,
// kernels/head_map.cu), from a capture kept on the GPU (gpu_capture). The
// cuda tests hold the second to the first.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attention/gpu_backend.h"
#include "attention/lod_level.h"
#include "attention/selection.h"
#include "io/trace.h"

namespace attnlab {

class job_progress;

constexpr int k_lod_finest_cells = 2048;

struct head_map {
    std::shared_ptr<const qkv_capture> cap;
    std::shared_ptr<const selection> sel;  // null: dense only
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
    double seconds = 0.0;           // wall time of the whole computation (measured)
    std::string device = "CPU";     // what computed it: "CPU" or the GPU's name
    double kernel_seconds = 0.0;    // GPU only: the kernels alone (CUDA events)

    bool has_sparse() const { return sel != nullptr; }
    int finest_factor() const { return dense.empty() ? 1 : dense.front().factor; }
    size_t bytes() const;
};

// Cells of f x f tokens, f the smallest power of 2 with ceil(L / f) <= k_lod_finest_cells.
int head_map_finest_factor(int L);

// Computes row statistics and the pyramids on the CPU. Runs on a worker
// thread; OpenMP over query tiles. job_cancelled when progress is cancelled;
// std::invalid_argument for a head out of range or a selection of another length.
std::shared_ptr<head_map> head_map_compute(std::shared_ptr<const qkv_capture> cap, size_t layer_index, int head,
                                           std::shared_ptr<const selection> sel, job_progress * progress);

// A capture's Q and K kept on the GPU, one device copy per layer (V is not
// needed for maps), so that a head's map uploads nothing.
struct gpu_capture {
    std::shared_ptr<const qkv_capture> cap;
    gpu_attention_backend * backend = nullptr;
    std::vector<std::shared_ptr<gpu_floats>> q, k;   // per captured layer
    size_t bytes = 0;
    double upload_seconds = 0.0;
};
std::shared_ptr<const gpu_capture> gpu_capture_upload(gpu_attention_backend & backend,
                                                      std::shared_ptr<const qkv_capture> cap);

// The same map as head_map_compute, computed by the GPU backend from the
// capture kept there. Throws what the backend throws (no fallback to the CPU).
std::shared_ptr<head_map> head_map_compute_gpu(const gpu_capture & g, size_t layer_index, int head,
                                               std::shared_ptr<const selection> sel);

// Exact weights of rows [r0, r1) x cols [c0, c1) as factor-1 levels (dense,
// and sparse/kept when the map has a selection).
struct map_window {
    lod_level dense, sparse, kept;
    double seconds = 0.0;
};
std::shared_ptr<map_window> head_map_window(const head_map & m, int r0, int r1, int c0, int c1);

// One weight, exact (0 above the diagonal).
float head_map_weight(const head_map & m, int i, int j);

// Shared by both implementations: copies one query head (pre-scaled) and the
// K head it reads into contiguous rows, and fills max_weight / mean_entropy
// from the row statistics.
void head_map_extract(const qkv_capture & cap, size_t layer_index, int head, std::vector<float> & q,
                      std::vector<float> & k, float & scale);
void head_map_finish(head_map & m);

} // namespace attnlab
