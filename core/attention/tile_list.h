#pragma once
// The GPU kernels' view of a layer's selections (kernels/attnlab_cuda.h):
// per head and query block the kept key blocks (FlexAttention's kv_num_blocks
// / kv_indices) and, where a block is kept only in part, a bit mask of its
// kept pairs (FlexAttention's mask_mod, precomputed). Host arrays, built here
// so that every GPU path (the layer backend, the model's forward pass) lays
// them out the same way, and testable without a GPU.
//
// Any selection runs this way: block masks of block 64 or 128 become plain
// lists; token-level selections, and block masks of other block sizes, are
// covered by tiles of 64 (or the selection's 128) with exact token masks.
#include <cstdint>
#include <vector>

#include "attention/selection.h"

namespace attnlab {

struct tile_list {
    int block = 0;      // tile size, 64 or 128 (query and key blocks alike)
    int n_tokens = 0;
    bool causal = true;
    int n_heads = 0, nqb = 0, max_kv = 0;
    std::vector<int32_t> kv_num;       // [n_heads][nqb]
    std::vector<int32_t> kv_idx;       // [n_heads][nqb][max_kv], ascending, unused tail 0
    std::vector<int32_t> mask_index;   // same shape; -1: every causal pair; empty: no masks at all
    std::vector<uint64_t> masks;       // [n_masks][block rows][block / 64 words]
    int words_per_row() const { return block / 64; }
    int64_t n_masks() const { return block ? (int64_t)masks.size() / ((int64_t)block * words_per_row()) : 0; }
    int64_t n_kept_blocks() const;
    // Host and device bytes of the arrays (what the GPU path uploads).
    int64_t bytes() const;
};

// Throws std::invalid_argument when heads differ in length or causality, or
// a selection breaks its invariants' shape (ptr sizes).
tile_list tile_list_build(const selection * sels, int n_heads);

// Whether the tiles keep pair (i, j) of head h, read back from the arrays as
// the kernel reads them (causality and the sequence end included): for tests.
bool tile_list_keeps(const tile_list & t, int h, int i, int j);

} // namespace attnlab
