#pragma once
// Selections: which (query, key) pairs of one head are computed.
//
// A selection always carries a block mask (block size B in {16,32,64,128};
// per query block I, the sorted kept key blocks J, FlexAttention's kv_indices
// idea): these are the tiles a kernel visits. A token-level selection also
// carries the exact kept keys of every query row (sorted, CSR layout); the
// block mask is then its cover (a block is kept when any of its pairs is) and
// the kernel masks the rest inside each tile.
//
// Causality is implicit: with causal = true a pair (i, j) with j > i is never
// selected, even inside a kept diagonal block. Queries and keys are the same
// L tokens (self-attention), so query and key blocks share one grid.
#include <cstdint>
#include <string>
#include <vector>

namespace attnlab {

struct selection {
    int n_tokens = 0;           // L
    int block = 64;             // B
    bool causal = true;
    bool token_level = false;   // true: tok_* hold the exact mask, blk_* its cover

    // Block mask, nb = ceil(L/B) query blocks: kept key blocks of query block I
    // are blk_cols[blk_ptr[I] .. blk_ptr[I+1]), strictly increasing, J <= I if causal.
    std::vector<int32_t> blk_ptr;
    std::vector<int32_t> blk_cols;

    // Token mask (token_level only): kept keys of row i are
    // tok_cols[tok_ptr[i] .. tok_ptr[i+1]), strictly increasing, j <= i if causal.
    std::vector<int64_t> tok_ptr;
    std::vector<int32_t> tok_cols;

    int n_blocks() const { return (n_tokens + block - 1) / block; }
    int64_t n_kept_blocks() const { return blk_cols.size(); }
};

bool block_size_valid(int b);  // one of 16, 32, 64, 128

// Pairs a dense causal (or full) head computes: L(L+1)/2 or L^2.
int64_t causal_pairs(int L, bool causal);
// Blocks holding at least one such pair: nb(nb+1)/2 or nb^2.
int64_t causal_blocks(int L, int B, bool causal);
// Causal pairs inside block (I, J): what a block kernel computes there.
int64_t block_pairs(int L, int B, bool causal, int I, int J);

// Builders. Inputs may be unsorted and hold duplicates or out-of-range /
// non-causal entries; these are sorted, de-duplicated and dropped, so the
// result always satisfies the invariants above. Throw std::invalid_argument
// on a bad shape (B not valid, ptr of the wrong size).
selection selection_dense(int L, int B, bool causal);
selection selection_from_blocks(int L, int B, bool causal, std::vector<int32_t> blk_ptr,
                                std::vector<int32_t> blk_cols);
selection selection_from_tokens(int L, int B, bool causal, std::vector<int64_t> tok_ptr,
                                std::vector<int32_t> tok_cols);
// Per-row key lists, for methods that build a row at a time.
selection selection_from_rows(int L, int B, bool causal, const std::vector<std::vector<int32_t>> & rows);

// Conversions. to_tokens expands a block mask into its causal pairs (O(pairs)
// memory: for tests and small L); to_blocks drops the token refinement and
// keeps the cover (a block is kept if any of its pairs is).
selection selection_to_tokens(const selection & s);
selection selection_to_blocks(const selection & s);

// Selected pairs, counted without expanding a block mask.
int64_t selection_pairs(const selection & s);
// Causal pairs inside kept blocks: what the block kernel pays for.
int64_t selection_block_pairs(const selection & s);
double selection_token_density(const selection & s);  // selected pairs / causal pairs
double selection_block_density(const selection & s);  // kept blocks / causal blocks

// Kept keys of query row i, sorted, appended to `out` after clearing it.
void selection_row_keys(const selection & s, int i, std::vector<int32_t> & out);
bool selection_contains(const selection & s, int i, int j);

// Checks the invariants; returns "" or a description of the first violation.
std::string selection_check(const selection & s);

} // namespace attnlab
