#pragma once
// Kernels of one head's attention map on the GPU (metrics/head_map.h defines
// the map; kernels/head_map_run.cpp drives these). Callable from host C++
// compiled without nvcc: device pointers, the stream as void*; every launcher
// returns 0 or a CUDA error code (cudaError_t as int); launches are async.
//
// The L x L weights never reach global memory: query rows go in blocks of
// k_hm_tile = 64, key columns in tiles of 64, each 64 x 64 logit tile lives in
// registers (then one shared-memory tile while it is pooled).
#include <cstdint>

namespace attnlab::cuda {

constexpr int k_hm_tile = 64;

struct hm_args {
    // Row t of the head: q + t * q_stride (logits use fl(q * scale) . k).
    const float * q = nullptr;
    const float * k = nullptr;
    long long q_stride = 0, k_stride = 0;
    int L = 0, d = 0;
    float scale = 1.0f;
    // The selection as 64 x 64 tiles (null: dense only): tile_map[I * n64 + J]
    // is -2 (tile not kept), -1 (every causal pair kept) or the number of its
    // token mask in masks, core's tile_list layout (attention/tile_list.h)
    // with tiles of mask_block (64 or 128) and mask_block / 64 words a row.
    const int32_t * tile_map = nullptr;
    const unsigned long long * masks = nullptr;
    int mask_block = 64;
    // Outputs: row statistics [L] (row_recall only with a selection) ...
    float * row_max = nullptr, * row_inv_sum = nullptr, * row_entropy = nullptr, * row_recall = nullptr;
    // ... and the finest level (cells of f0 x f0, f0 a power of 2 <= 64), n0 x n0
    // with n0 = ceil(L / f0), max and sum per map (sparse/kept only with a selection).
    int f0 = 1;
    float * dense_max = nullptr, * dense_sum = nullptr;
    float * sparse_max = nullptr, * sparse_sum = nullptr;
    float * kept_max = nullptr, * kept_sum = nullptr;
};

// Per query row: max logit, 1/sum exp, entropy and (with a selection) the
// kept attention mass. Two sweeps over the key tiles (max, then sums).
int hm_rows(const hm_args & a, void * stream);

// Weights of every causal tile, pooled into the finest level (tiles above the
// diagonal are left alone: zero the levels first).
int hm_pool(const hm_args & a, void * stream);

// One coarser level (2x2 cells) for n_maps maps at once: map m reads
// src_max[m]/src_sum[m] (sn x sn) and writes dst_max[m]/dst_sum[m]
// (dn = ceil(sn / 2) a side), in lod_downsample2's order.
struct hm_level_maps {
    const float * src_max[3];
    const float * src_sum[3];
    float * dst_max[3];
    float * dst_sum[3];
};
int hm_downsample(const hm_level_maps & m, int n_maps, int sn, void * stream);

} // namespace attnlab::cuda
