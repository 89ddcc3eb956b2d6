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
    // The selection as keep bits (null: dense only), one 64-bit word per row
    // of each causal 64 x 64 tile: tile (I, J), J <= I, at words
    // (I (I + 1) / 2 + J) * 64 .. + 63, bit c = key J * 64 + c. Built on the
    // GPU by hm_bits_from_rows / hm_bits_from_blocks; L^2 / 16 bytes.
    const unsigned long long * keep_bits = nullptr;
    // Outputs: row statistics [L] (row_recall only with a selection) ...
    float * row_max = nullptr, * row_inv_sum = nullptr, * row_entropy = nullptr, * row_recall = nullptr;
    // ... and the finest level (cells of f0 x f0, f0 a power of 2 <= 64), n0 x n0
    // with n0 = ceil(L / f0), max and sum per map (sparse/kept only with a selection).
    int f0 = 1;
    float * dense_max = nullptr, * dense_sum = nullptr;
    float * sparse_max = nullptr, * sparse_sum = nullptr;
    float * kept_max = nullptr, * kept_sum = nullptr;
};

// Words of the keep bits for L tokens.
inline long long hm_bits_words(int L) {
    const long long n64 = (L + k_hm_tile - 1) / k_hm_tile;
    return n64 * (n64 + 1) / 2 * k_hm_tile;
}

// Keep bits (zeroed before) from a token-level selection's kept keys, CSR
// over rows (core's selection::tok_ptr / tok_cols), or from a block mask of
// block B (16, 32, 64 or 128; blk_ptr / blk_cols): every pair of a kept block.
// Pairs above the diagonal or past L are left out (the kernels test j <= i).
int hm_bits_from_rows(const long long * tok_ptr, const int32_t * tok_cols, int L, unsigned long long * bits,
                      void * stream);
int hm_bits_from_blocks(const int32_t * blk_ptr, const int32_t * blk_cols, int L, int B, unsigned long long * bits,
                        void * stream);

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
