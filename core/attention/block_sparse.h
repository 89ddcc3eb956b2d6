#pragma once
// Block-sparse attention on the CPU, flash-style: for one (query head, query
// block) it streams only the kept key blocks of the selection, keeping the
// online-softmax state (running max, denominator, unnormalised output) per
// row, so memory stays O(L·d). Consecutive kept blocks are merged into key
// chunks of up to 128 keys (the dense kernel's key tile). With a full
// selection and B equal to the dense kernel's query tile (128 x 128 tiles at
// the time of writing) the kernel runs exactly the dense kernel's tiles in
// the same order: bit-identical output. Other B differ only by float rounding
// (different online-softmax chunking and GEMM panel shapes), within 1e-6.
//
// Causal pairs above the diagonal and, for token-level selections, the pairs
// a block keeps but the token mask does not, are masked inside the tile. Rows
// with no selected key produce zeros.
#include <cstdint>

#include "attention/attention.h"
#include "attention/score.h"
#include "attention/selection.h"

namespace attnlab {

struct block_sparse_stats {
    int64_t blocks = 0;        // kept blocks visited, all heads
    int64_t tile_pairs = 0;    // (query, key) pairs evaluated in tiles, masked ones included
    double flops() const;      // 4·d per evaluated pair (QKᵀ and PV), set by the kernel
    int head_dim = 0;
};

// sels: one selection per query head (io.n_head of them), each with
// n_tokens == io.n_tokens and causal == io.causal; block sizes may differ
// between heads. Writes io.out. Throws std::invalid_argument on a mismatch.
block_sparse_stats attention_block_sparse(const attention_layer_io & io, const selection * sels,
                                          const score_fn & score = score_fn());

} // namespace attnlab
